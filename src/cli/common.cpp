#include "common.hpp"
#include "progress.hpp"

#include <ferry/bundle.hpp>
#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/trust_material.hpp>
#include <ferry/util/file.hpp>
#include <ferry/util/reader.hpp>
#include <ferry/version.hpp>

#include <regex>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <stdlib.h>
#include <filesystem>
#include <iostream>

namespace ferry::cli {

void RegistryFlags::add_to(CLI::App& cmd)
{
  cmd.add_flag("--plain-http", options.plain_http, "Use plain HTTP instead of HTTPS (for loopback registries)");
  cmd.add_flag("--insecure", options.insecure, "Use TLS without verifying the registry's certificate");
  cmd.add_option("--ca-file", options.ca_file, "CA certificates (PEM) to verify registries with")->check(CLI::ExistingFile);
  cmd.add_option("--registry-config", options.config_path,
                 "Docker config.json with credentials (default: $DOCKER_CONFIG/config.json, ~/.docker/config.json)");
  cmd.add_option("-u,--username", options.username, "Registry user name (with --password-stdin)");
  cmd.add_flag("--password-stdin", password_stdin, "Read the registry password or token from stdin");
  cmd.add_option("--concurrency", concurrency, "Transfers run at once")->check(CLI::Range(1, 64))->capture_default_str();
  cmd.add_option("--timeout", timeout_s,
                 "Seconds a connection, or a transfer moving no data, may take before it fails and is retried "
                 "(default 60); also caps a registry's Retry-After (default 30)")
      ->check(CLI::Range(1L, 86400L));
}

void RegistryFlags::finish()
{
  if (timeout_s > 0) options.timeout_s = timeout_s;
  if (password_stdin) {
    std::string line;
    std::getline(std::cin, line);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    options.password = line;
    if (options.password.empty()) throw Error(Errc::invalid_argument, "--password-stdin: no password on standard input");
  }
  if (!options.username.empty() && !password_stdin)
    throw Error(Errc::invalid_argument, "--username needs --password-stdin");
  if (password_stdin && options.username.empty()) throw Error(Errc::invalid_argument, "--password-stdin needs --username");
}

void LimitFlags::add_to(CLI::App& cmd, bool problems)
{
  cmd.add_option_function<std::size_t>(
         "--max-lines",
         [this](const std::size_t& n) {
           max_lines = n;
           set_line_limit(n);
         },
         "Print at most this many lines of detail, then say the rest was cut (default 100000; --json is never cut)")
      ->check(CLI::Range(std::size_t(1), std::size_t(1) << 40));
  cmd.add_option("--max-entries", limits.max_entries,
                 "Refuse a bundle with more entries than this (archive entries or directory files)")
      ->check(CLI::Range(std::uint64_t(1), std::uint64_t(1) << 40))
      ->capture_default_str();
  if (problems)
    cmd.add_option("--max-problems", limits.max_problems, "List at most this many integrity problems (all are counted)")
        ->check(CLI::Range(std::size_t(1), std::size_t(1) << 30))
        ->capture_default_str();
}

void CosignFlags::add_to(CLI::App& cmd, bool carry)
{
  const std::string how = carry ? "Carry in the bundle's trust material: " : "";
  cmd.add_option("--trusted-root", trusted_root,
                 how + "Sigstore trusted root (trusted_root.json: Fulcio CAs, Rekor and CT log keys, TSAs) for cosign signatures");
  cmd.add_option("--cosign-key", keys, how + "cosign public key (PEM) for keyed cosign signatures (repeatable)")
      ->allow_extra_args(false);
  cmd.add_option("--certificate-identity", policy.identity,
                 how + "cosign keyless: the signer's identity, an exact match of the certificate's SAN (email or URI)");
  cmd.add_option("--certificate-identity-regexp", policy.identity_regexp,
                 how + "cosign keyless: a regular expression the certificate's SAN must match (unanchored, as cosign)");
  cmd.add_option("--certificate-oidc-issuer", policy.issuer,
                 how + "cosign keyless: the OIDC issuer in the certificate (exact match)");
  cmd.add_option("--certificate-oidc-issuer-regexp", policy.issuer_regexp,
                 how + "cosign keyless: a regular expression the certificate's OIDC issuer must match");
  cmd.add_flag("--insecure-ignore-tlog", policy.ignore_tlog,
               how + "cosign: accept signatures without a transparency log entry (as cosign's flag)");
  cmd.add_flag("--insecure-ignore-sct", policy.ignore_sct,
               how + "cosign keyless: accept certificates without an embedded SCT (as cosign's flag)");
  cmd.add_flag("--use-signed-timestamps", policy.use_signed_timestamps,
               how + "cosign: take the signing time from RFC 3161 timestamps (required) instead of the log's integrated time");
}

void CosignFlags::check() const
{
  for (const auto& [flag, re] : {std::pair{"--certificate-identity-regexp", &policy.identity_regexp},
                                 std::pair{"--certificate-oidc-issuer-regexp", &policy.issuer_regexp}}) {
    if (re->empty()) continue;
    try {
      std::regex compiled(*re);
    } catch (const std::regex_error& e) {
      throw Error(Errc::invalid_argument, std::string("invalid ") + flag + " \"" + *re + "\": " + e.what());
    }
  }
  if (!policy.identity.empty() && !policy.identity_regexp.empty())
    throw Error(Errc::invalid_argument, "give --certificate-identity or --certificate-identity-regexp, not both");
  if (!policy.issuer.empty() && !policy.issuer_regexp.empty())
    throw Error(Errc::invalid_argument, "give --certificate-oidc-issuer or --certificate-oidc-issuer-regexp, not both");
}

void TrustFlags::add_to(CLI::App& cmd)
{
  cmd.add_option("--trust-policy", trust_policy, "Notation trust policy (trustpolicy.json or trustpolicy.oci.json)");
  cmd.add_option("--trust-store", trust_store,
                 "Notation trust store directory (holds x509/{ca,signingAuthority,tsa}/<name>/)");
  cmd.add_option("--crl", crls, "CRL file (DER or PEM) or directory of CRLs (repeatable)")->allow_extra_args(false);
  cmd.add_option("--trust-pin", trust_pin,
                 "Use the trust material carried in the bundle, if its manifest has this digest (printed by ferry save)");
  cmd.add_option("--scope", scope, "Repository used to select the trust policy statement (registry/repo)");
  cmd.add_option("--verification-time", time, "Verify as of this RFC 3339 time instead of now (audits, reproducible tests)");
  cmd.add_flag("--require-referrer-signatures", require_referrer_signatures,
               "Fail verification (exit 3) when a referrer (SBOM, attestation, ...) or another signed manifest of an "
               "artifact's graph is unsigned or its signatures fail the trust policy; without it they are reported, "
               "not fatal");
  cosign.add_to(cmd, false);
  cmd.add_option("--require", require,
                 "Signature kinds that must each verify: notation, cosign, or notation,cosign (default: any kind whose "
                 "trust material is given)");
}

namespace {

std::vector<verify::SignatureKind> parse_require(const std::string& text)
{
  std::vector<verify::SignatureKind> out;
  if (text.empty() || text == "any") return out;
  std::size_t start = 0;
  for (;;) {
    auto comma = text.find(',', start);
    std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (part == "notation") out.push_back(verify::SignatureKind::notation);
    else if (part == "cosign") out.push_back(verify::SignatureKind::cosign);
    else throw Error(Errc::invalid_argument, "invalid --require \"" + text + "\": want notation, cosign, notation,cosign or any");
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

} // namespace

void TrustFlags::check(const std::filesystem::path& bundle, BundleFormat format, bool integrity_only) const
{
  if (!scope.empty()) {
    auto slash = scope.find('/');
    if (slash == std::string::npos || !Reference::is_valid_repository(scope.substr(slash + 1)))
      throw Error(Errc::invalid_argument, "invalid --scope \"" + scope + "\": want registry/repository");
  }
  if (!trust_pin.empty() && !Digest::is_valid(trust_pin))
    throw Error(Errc::invalid_argument, "invalid --trust-pin \"" + trust_pin + "\": want sha256:<hex>");
  if (!time.empty()) verify::parse_rfc3339(time, "--verification-time");
  cosign.check();
  auto kinds = parse_require(require);
  bool notation_local = !trust_policy.empty() && !trust_store.empty();
  bool cosign_local = !cosign.trusted_root.empty() || !cosign.keys.empty();
  if (!integrity_only && trust_pin.empty()) {
    if (!trust_policy.empty() != !trust_store.empty() && cosign_local)
      throw Error(Errc::invalid_argument, std::string("Notation verification needs --trust-policy and --trust-store: ") +
                                              (trust_policy.empty() ? "--trust-policy" : "--trust-store") + " is missing");
    for (auto k : kinds) {
      bool have = k == verify::SignatureKind::notation ? notation_local : cosign_local;
      if (!have)
        throw Error(Errc::invalid_argument,
                    std::string("--require ") + verify::signature_kind_name(k) + ": no " +
                        (k == verify::SignatureKind::notation ? "Notation trust material (--trust-policy and --trust-store)"
                                                              : "cosign trust material (--trusted-root or --cosign-key)") +
                        " is given");
    }
    if (cosign_local && cosign.keys.empty()) {
      // cosign: "--certificate-identity or --certificate-identity-regexp is required for
      // verification in keyless mode" (and the issuer likewise).
      if (!cosign.policy.has_identity())
        throw Error(Errc::invalid_argument, "keyless cosign verification needs --certificate-identity or "
                                            "--certificate-identity-regexp (as cosign)");
      if (!cosign.policy.has_issuer())
        throw Error(Errc::invalid_argument, "keyless cosign verification needs --certificate-oidc-issuer or "
                                            "--certificate-oidc-issuer-regexp (as cosign)");
    }
    if (cosign_local && cosign.trusted_root.empty() && !cosign.policy.ignore_tlog)
      throw Error(Errc::invalid_argument, "checking cosign signatures' transparency log entries needs the log's key: give "
                                          "--trusted-root (trusted_root.json), or --insecure-ignore-tlog");
  }
  if (integrity_only || !trust_pin.empty() || notation_local || cosign_local) return;
  // A usage error, said before the bundle is read; what the bundle carries (its head only,
  // for the message) tells which way forward to suggest.
  std::string have;
  try {
    LayoutReader::Options head;
    head.depth = ReadDepth::head;
    auto reader = LayoutReader::open(bundle, format, head);
    if (auto t = classify(*reader).trust) have = t->digest.str();
  } catch (const Error&) {
  }
  if (!have.empty())
    throw Error(Errc::invalid_argument,
                "the bundle carries trust material (" + have +
                    "), but a bundle cannot vouch for itself: pass the pin you received out of band with --trust-pin "
                    "(ferry save printed it), or give --trust-policy and --trust-store");
  throw Error(Errc::invalid_argument, "verifying signatures needs trust material: --trust-policy and --trust-store "
                                      "(Notation), --trusted-root or --cosign-key (cosign), or --trust-pin for trust "
                                      "material carried in the bundle (or --integrity-only)");
}

verify::VerifyOptions TrustFlags::build(const LayoutReader* bundle, bool integrity_only) const
{
  namespace fs = std::filesystem;
  using namespace ferry::verify;
  VerifyOptions opts;
  opts.integrity_only = integrity_only;
  opts.now = time.empty() ? std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now())
                          : parse_rfc3339(time, "--verification-time");
  if (!scope.empty()) opts.scope = Reference::normalise_scope(scope);
  // Malformed trust material is malformed input (exit 1), not a usage error.
  auto as_input_error = [](const Error& e) {
    return Error(e.code() == Errc::invalid_argument ? Errc::invalid_manifest : e.code(), e.what());
  };
  if (integrity_only) return opts;

  opts.require_referrer_signatures = require_referrer_signatures;
  // Local trust material overrides what the bundle carries; the bundle's own is used only
  // when pinned (design §3: a bundle must not vouch for itself), and only as read and
  // checked in the bundle's one scan. The report names carried files by their titles.
  carried.clear();
  carried_policy.clear();
  carried_store = false;
  carried_crls.clear();
  policy_digest.clear();
  opts.require = parse_require(require);
  cosign_root_used.clear();
  cosign_keys_used.clear();
  cosign_policy_source.clear();
  cosign_policy_used = {};
  std::string policy_path = trust_policy, store_path = trust_store;
  std::vector<std::string> crl_paths = crls;
  std::vector<TrustFile> files;
  auto carried_file = [&](std::string_view title) -> const TrustFile* {
    auto it = std::find_if(files.begin(), files.end(), [&](const TrustFile& f) { return f.title == title; });
    return it == files.end() ? nullptr : &*it;
  };
  auto use = [&](const TrustFile& f) { carried.push_back({f.title, f.media_type, Digest::of(f.bytes).str()}); };
  if (!trust_pin.empty()) {
    if (!bundle) throw Error(Errc::invalid_argument, "--trust-pin names trust material carried in a bundle; give --trust-policy and --trust-store here");
    files = carried_trust_files(*bundle, Digest::parse(trust_pin));
    auto dir = std::make_shared<TempDir>(fs::path(), "ferry-trust-");
    materialise_trust_files(files, dir->path());
    bundled = dir;
    if (policy_path.empty())
      for (const char* name : {"trustpolicy.oci.json", "trustpolicy.json"})
        if (carried_file(name)) {
          carried_policy = name;
          break;
        }
    if (store_path.empty() && fs::exists(dir->path() / "truststore")) {
      store_path = (dir->path() / "truststore").string();
      carried_store = true;
    }
  }
  // Notation: a policy and a store, given or carried.
  const bool notation = (!policy_path.empty() || !carried_policy.empty()) && !store_path.empty();
  if (notation && !trust_pin.empty()) {
    bool use_crls = crl_paths.empty();
    for (const auto& f : files) {
      bool used = (!carried_policy.empty() && f.title == carried_policy) ||
                  (carried_store && f.title.rfind("truststore/", 0) == 0) || (use_crls && f.title.rfind("crl/", 0) == 0);
      if (!used) continue;
      use(f);
      if (use_crls && f.title.rfind("crl/", 0) == 0) carried_crls.push_back(f.title);
    }
  }
  // cosign: the trusted root and keys given, else carried; the identity policy from the
  // flags when any is given, else carried.
  try {
    cosign::Policy cp;
    bool any = false;
    if (!cosign.trusted_root.empty()) {
      FileReader r(cosign.trusted_root);
      cp.trusted_root = std::make_shared<const sigstore::TrustedRoot>(
          sigstore::TrustedRoot::parse(read_all(r, 16 << 20, cosign.trusted_root), cosign.trusted_root));
      cosign_root_used = cosign.trusted_root;
      any = true;
    } else if (const TrustFile* f = carried_file(k_title_trusted_root)) {
      cp.trusted_root = std::make_shared<const sigstore::TrustedRoot>(
          sigstore::TrustedRoot::parse(f->bytes, f->title + " (carried in the bundle)"));
      cosign_root_used = f->title;
      use(*f);
      any = true;
    }
    if (!cosign.keys.empty()) {
      for (const auto& k : cosign.keys) {
        FileReader r(k);
        cp.keys.push_back({fs::path(k).filename().string(), sigstore::parse_public_key(read_all(r, 1 << 20, k), k)});
        cosign_keys_used.push_back(k);
      }
      any = true;
    } else {
      for (const auto& f : files)
        if (f.title.rfind(k_title_cosign_keys, 0) == 0) {
          cp.keys.push_back({f.title.substr(k_title_cosign_keys.size()), sigstore::parse_public_key(f.bytes, f.title)});
          cosign_keys_used.push_back(f.title);
          use(f);
          any = true;
        }
    }
    CosignIdentityPolicy ip = cosign.policy;
    if (!cosign.policy.empty()) {
      cosign_policy_source = "flags";
    } else if (const TrustFile* f = carried_file(k_title_cosign_policy); f && any) {
      ip = CosignIdentityPolicy::parse(f->bytes, f->title + " (carried in the bundle)");
      cosign_policy_source = f->title;
      use(*f);
    }
    if (any) {
      if (cp.keys.empty() && (!ip.has_identity() || !ip.has_issuer()))
        throw Error(Errc::invalid_argument,
                    std::string("keyless cosign verification needs ") +
                        (!ip.has_identity() ? "--certificate-identity or --certificate-identity-regexp"
                                            : "--certificate-oidc-issuer or --certificate-oidc-issuer-regexp") +
                        (trust_pin.empty() ? "" : " (the pinned trust material carries no cosign/policy.json that says it)") +
                        ", as cosign does");
      if (!cp.trusted_root && !ip.ignore_tlog)
        throw Error(Errc::invalid_argument, "checking cosign signatures' transparency log entries needs the log's key: give "
                                            "--trusted-root (trusted_root.json), or --insecure-ignore-tlog");
      static_cast<cosign::PolicyFlags&>(cp) = ip;
      cosign_policy_used = ip;
      opts.cosign = std::move(cp);
    }
  } catch (const Error& e) {
    if (e.code() == Errc::invalid_argument) throw;
    throw as_input_error(e);
  }
  if (!notation && !opts.cosign) {
    if (!trust_pin.empty())
      throw Error(Errc::invalid_argument, "the pinned trust material has no " +
                                              std::string(store_path.empty() ? "trust store" : "trust policy") +
                                              " and no cosign material; give --trust-policy and --trust-store, or "
                                              "--trusted-root / --cosign-key");
    throw Error(Errc::invalid_argument, "verifying signatures needs trust material: --trust-policy and --trust-store "
                                        "(Notation), --trusted-root or --cosign-key (cosign)");
  }
  for (auto k : opts.require) {
    bool have = k == SignatureKind::notation ? notation : opts.cosign.has_value();
    if (!have)
      throw Error(Errc::invalid_argument, std::string("--require ") + signature_kind_name(k) + ": no " +
                                              signature_kind_name(k) + " trust material is given or carried");
  }
  if (!notation) return opts;
  try {
    if (!carried_policy.empty()) {
      opts.policy = TrustPolicyDocument::parse(carried_file(carried_policy)->bytes, carried_policy + " (carried in the bundle)");
      policy_digest = Digest::of(carried_file(carried_policy)->bytes).str();
    } else {
      opts.policy = TrustPolicyDocument::load(policy_path);
      FileReader r(policy_path);
      policy_digest = Digest::of(read_all(r, 16 << 20, policy_path)).str();
    }
  } catch (const Error& e) {
    throw as_input_error(e);
  }
  fs::path store = store_path;
  if (!fs::is_directory(store)) throw Error(Errc::not_found, store.string() + ": no such trust store directory");
  if (carried_store) {
    opts.trust_store.emplace(store, "truststore (carried in the bundle)");
  } else {
    if (!fs::exists(store / "x509") && fs::exists(store / "truststore" / "x509")) store /= "truststore";
    opts.trust_store.emplace(store);
  }
  try {
    for (const auto& c : crl_paths) opts.crls.add_path(c);
    // Carried CRLs are read from the bundle's bytes and named by their titles there.
    for (const auto& f : files)
      if (std::find(carried_crls.begin(), carried_crls.end(), f.title) != carried_crls.end()) opts.crls.add_bytes(f.bytes, f.title);
  } catch (const Error& e) {
    throw as_input_error(e);
  }
  return opts;
}

nlohmann::json TrustFlags::report_json(bool integrity_only) const
{
  if (integrity_only) return nullptr;
  auto cosign_json = [&]() -> nlohmann::json {
    if (cosign_root_used.empty() && cosign_keys_used.empty()) return nullptr;
    nlohmann::json identity = nlohmann::json::parse(cosign_policy_used.to_json());
    return {{"trustedRoot", cosign_root_used.empty() ? nlohmann::json(nullptr) : nlohmann::json(cosign_root_used)},
            {"keys", cosign_keys_used},
            {"policy", identity},
            {"policySource", cosign_policy_source.empty() ? nlohmann::json(nullptr) : nlohmann::json(cosign_policy_source)}};
  };
  auto str_or_null = [](const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); };
  nlohmann::json crl_list = crls;
  for (const auto& c : carried_crls) crl_list.push_back(c);
  nlohmann::json files = nullptr;
  if (!trust_pin.empty()) {
    files = nlohmann::json::array();
    for (const auto& f : carried) files.push_back({{"title", f.title}, {"mediaType", f.media_type}, {"digest", f.digest}});
  }
  return {{"source", trust_pin.empty() ? "files" : "bundle"},
          {"pin", str_or_null(trust_pin)},
          {"trustPolicy", carried_policy.empty() ? str_or_null(trust_policy) : nlohmann::json(carried_policy)},
          {"trustPolicyDigest", str_or_null(policy_digest)},
          {"trustStore", carried_store ? nlohmann::json("truststore") : str_or_null(trust_store)},
          {"crls", crl_list},
          {"carried", files},
          {"scope", str_or_null(scope)},
          {"cosign", cosign_json()},
          {"require", require.empty() ? "any" : require}};
}

nlohmann::json delta_json(const std::optional<DeltaRecord>& delta)
{
  if (!delta) return nullptr;
  return {{"base", delta->base.str()},
          {"baseKind", delta->base_kind},
          {"baseSource", delta->base_source},
          {"leftOutBlobs", delta->left_out.size()},
          {"leftOutBytes", delta->left_out_bytes()}};
}

nlohmann::json verify_report_json(const verify::VerifyReport& r)
{
  using namespace ferry::verify;
  nlohmann::json problems = nlohmann::json::array();
  for (const auto& p : r.problems.listed) {
    nlohmann::json j = {{"message", p.message}};
    if (!p.digest.empty()) j["digest"] = p.digest;
    problems.push_back(j);
  }
  auto signatures_json = [](const std::vector<SignatureVerdict>& list) {
    nlohmann::json sigs = nlohmann::json::array();
    for (const auto& s : list) {
      nlohmann::json checks = nlohmann::json::array();
      for (const auto& c : s.checks)
        checks.push_back({{"name", c.name}, {"action", action_name(c.action)}, {"result", check_result_name(c.result)},
                          {"reason", c.reason}});
      nlohmann::json j = {{"digest", s.manifest.digest.str()},
                          {"kind", s.kind},
                          {"envelope", s.envelope_media_type},
                          {"verified", s.verified},
                          {"reason", s.reason},
                          {"checks", checks}};
      if (s.kind == "cosign") {
        j["format"] = s.format;
        j["detail"] = s.detail;
        j["layer"] = s.layer ? nlohmann::json(*s.layer) : nlohmann::json(nullptr);
        j["signer"] = s.signer;
        j["signingTime"] = s.signing_time ? nlohmann::json(format_rfc3339(*s.signing_time)) : nlohmann::json(nullptr);
      }
      sigs.push_back(std::move(j));
    }
    return sigs;
  };
  nlohmann::json artifacts = nlohmann::json::array();
  for (const auto& a : r.artifacts) {
    nlohmann::json referrers = nlohmann::json::array();
    for (const auto& x : a.referrers)
      referrers.push_back({{"digest", x.desc.digest.str()},
                           {"mediaType", x.desc.media_type},
                           {"artifactType", x.artifact_type},
                           {"subject", x.subject ? nlohmann::json(x.subject->str()) : nlohmann::json(nullptr)},
                           {"verified", x.verified},
                           {"reason", x.reason},
                           {"signatures", signatures_json(x.signatures)}});
    artifacts.push_back({{"reference", a.reference},
                         {"digest", a.desc.digest.str()},
                         {"mediaType", a.desc.media_type},
                         {"scope", a.scope},
                         {"policy", a.policy ? nlohmann::json(*a.policy) : nlohmann::json(nullptr)},
                         {"level", a.signatures_checked ? nlohmann::json(level_name(a.level)) : nlohmann::json(nullptr)},
                         {"signaturesChecked", a.signatures_checked},
                         {"verified", a.verified},
                         {"reason", a.reason},
                         {"signatures", signatures_json(a.signatures)},
                         {"referrers", referrers}});
  }
  nlohmann::json crls = nlohmann::json::array();
  for (const auto& c : r.crls)
    crls.push_back({{"source", c.source},
                    {"issuer", c.issuer},
                    {"thisUpdate", format_rfc3339(c.this_update)},
                    {"nextUpdate", c.next_update ? nlohmann::json(format_rfc3339(*c.next_update)) : nlohmann::json(nullptr)},
                    {"fresh", c.fresh}});
  return {{"schemaVersion", 1},
          {"command", "verify"},
          {"ferryVersion", FERRY_VERSION},
          {"ferry", version_json()},
          {"bundle", r.bundle.string()},
          {"format", format_name(r.format)},
          {"bundleDigest", r.bundle_digest ? nlohmann::json(r.bundle_digest->str()) : nlohmann::json(nullptr)},
          {"verified", r.verified},
          {"verificationTime", format_rfc3339(r.time)},
          {"integrity",
           {{"ok", r.problems.empty()},
            {"blobs", r.blobs},
            {"bytes", r.bytes},
            {"problems", problems},
            {"problemsTotal", r.problems.total}}},
          {"delta", r.delta ? [&] {
             auto j = delta_json(r.delta);
             j["checkedAgainst"] = r.delta_base.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.delta_base);
             return j;
           }()
                            : nlohmann::json(nullptr)},
          {"artifacts", artifacts},
          {"crls", crls}};
}



namespace {

std::string vstrprintf(const char* fmt, std::va_list args)
{
  std::va_list again;
  va_copy(again, args);
  int n = std::vsnprintf(nullptr, 0, fmt, args);
  std::string out(n > 0 ? static_cast<std::size_t>(n) : 0, '\0');
  if (n > 0) std::vsnprintf(out.data(), out.size() + 1, fmt, again);
  va_end(again);
  return out;
}

} // namespace

std::string strprintf(const char* fmt, ...)
{
  std::va_list args;
  va_start(args, fmt);
  std::string out = vstrprintf(fmt, args);
  va_end(args);
  return out;
}

namespace {

std::atomic<std::size_t> g_line_limit{100'000};
std::atomic<std::size_t> g_lines{0};
std::atomic<bool> g_cut{false};

void write_line(std::FILE* out, std::string_view line)
{
  std::string text = escape_for_terminal(line);
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), out);
}

} // namespace

void set_line_limit(std::size_t limit) { g_line_limit = limit; }

bool take_line(std::FILE* out)
{
  if (g_lines.fetch_add(1) < g_line_limit) return true;
  if (!g_cut.exchange(true))
    write_line(out, "... further output cut after " + std::to_string(g_line_limit.load()) +
                        " lines (--max-lines raises the limit; --json has everything)");
  return false;
}

void print_line(std::FILE* out, std::string_view line)
{
  if (line.rfind("ferry: error: ", 0) == 0 || take_line(out)) write_line(out, line);
}

void summary_line(const char* fmt, ...)
{
  std::va_list args;
  va_start(args, fmt);
  std::string line = vstrprintf(fmt, args);
  va_end(args);
  write_line(stdout, line);
}

void out_line(const char* fmt, ...)
{
  std::va_list args;
  va_start(args, fmt);
  std::string line = vstrprintf(fmt, args);
  va_end(args);
  print_line(stdout, line);
}

void err_line(const char* fmt, ...)
{
  std::va_list args;
  va_start(args, fmt);
  std::string line = vstrprintf(fmt, args);
  va_end(args);
  print_line(stderr, line);
}

std::string ignored_entries_note(const LayoutReader& bundle)
{
  const auto& names = bundle.ignored_entries();
  if (names.empty()) return {};
  constexpr std::size_t k_listed = 5;
  std::string list;
  for (std::size_t i = 0; i < names.size() && i < k_listed; ++i) list += (i ? ", " : "") + quote_name(names[i]);
  if (names.size() > k_listed) list += " and " + std::to_string(names.size() - k_listed) + " more";
  return "note: " + bundle.path().string() + ": ignored " + std::to_string(names.size()) +
         (names.size() == 1 ? " file" : " files") + " beside the OCI layout (not part of it, never pushed): " + list;
}

std::string referrer_verdict_line(const verify::ReferrerVerdict& x, bool name_subject)
{
  std::string line = std::string(x.verified ? "✓ " : "✗ ") + (x.subject ? "referrer " : "manifest ") + x.desc.digest.str();
  if (!x.artifact_type.empty()) line += " (" + x.artifact_type + ")";
  if (name_subject && x.subject) line += " of " + x.subject->str();
  line += x.verified ? ": verified" : ": NOT verified";
  if (!x.verified && !x.reason.empty()) line += ": " + x.reason;
  return line;
}

std::string referrer_count(const verify::VerifyReport& r)
{
  std::size_t referrers = 0, verified = 0;
  for (const auto& a : r.artifacts)
    for (const auto& x : a.referrers) {
      ++referrers;
      verified += x.verified ? 1 : 0;
    }
  if (referrers == 0) return {};
  return ", " + std::to_string(verified) + " of " + counted(referrers, "referrer") + " verified";
}

Logger make_logger(const GlobalOptions& global)
{
  bool quiet = global.quiet;
  auto progress = global.progress;
  return [quiet, progress](const std::string& line) {
    if (quiet) return;
    if (progress) progress->log(line);  // above the bars (escaped there)
    else print_line(stderr, line);
  };
}

std::string time_and_rate(const GlobalOptions& global, std::uint64_t bytes)
{
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - global.started).count();
  char buf[64];
  std::snprintf(buf, sizeof buf, " in %.1f s", s);
  std::string out = buf;
  if (bytes > 0 && s > 0) out += " (" + human_bytes(static_cast<std::uint64_t>(static_cast<double>(bytes) / s)) + "/s)";
  return out;
}

void print_json(const nlohmann::json& j)
{
  std::cout << j.dump(2, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace) << std::endl;
}

nlohmann::json platform_json(const Platform& p)
{
  nlohmann::json j = {{"os", p.os}, {"architecture", p.architecture}};
  if (!p.variant.empty()) j["variant"] = p.variant;
  if (!p.os_version.empty()) j["os.version"] = p.os_version;
  return j;
}

nlohmann::json plan_json(const std::vector<PlanStep>& plan)
{
  nlohmann::json out = nlohmann::json::array();
  for (const auto& step : plan) {
    nlohmann::json j = {{"action", step.action},
                        {"repository", step.repository},
                        {"digest", step.desc.digest.str()},
                        {"mediaType", step.desc.media_type},
                        {"size", step.desc.size}};
    if (!step.tag.empty()) j["tag"] = step.tag;
    if (step.previous) j["previousDigest"] = step.previous->str();
    out.push_back(std::move(j));
  }
  return out;
}

void print_plan(const std::vector<PlanStep>& plan)
{
  for (const auto& step : plan)
    out_line("%-9s %s %s%s%s (%s, %s)", step.action.c_str(), step.repository.c_str(), step.desc.digest.str().c_str(),
             step.tag.empty() ? "" : (" as :" + step.tag).c_str(),
             step.previous ? (", moved from " + step.previous->str()).c_str() : "", step.desc.media_type.c_str(),
             human_bytes(step.desc.size).c_str());
}

ImageSet load_image_set(const std::string& path, remote::RegistryOptions& registry)
{
  ImageSet set;
  try {
    set = ImageSet::load(path);
  } catch (const Error& e) {
    // A file whose content is wrong is bad input (exit 1), as a bad trust policy file is,
    // not a usage error (exit 2); an unreadable one was exit 1 already.
    throw Error(e.code() == Errc::invalid_argument ? Errc::invalid_manifest : e.code(), e.what());
  }
  for (const auto& r : set.registries) {
    auto& host = registry.hosts[r.host];
    if (r.tls_verify) host.tls_verify = r.tls_verify;
    if (!r.cert_dir.empty()) host.cert_dir = r.cert_dir;
    if (!r.username.empty() || !r.password.empty()) {
      host.username = r.username;
      host.password = r.password;
    }
  }
  return set;
}

RepositoryOpener shared_opener(remote::Registries& registries)
{
  struct Shared {
    std::mutex mutex;
    std::map<std::pair<std::string, std::string>, std::shared_ptr<remote::Repository>> repos;
  };
  auto shared = std::make_shared<Shared>();
  return [shared, &registries](const std::string& registry, const std::string& repository) {
    std::lock_guard lock(shared->mutex);
    auto& repo = shared->repos[{registry, repository}];
    if (!repo) repo = registries.open(registry, repository);
    return repo;
  };
}

nlohmann::json imageset_json(const ImageSetExpansion& expansion) { return nlohmann::json::parse(expansion.record_json()); }

void print_imageset(const ImageSetExpansion& expansion)
{
  auto doc = imageset_json(expansion);
  std::size_t total = expansion.references().size();
  out_line("image set %s (%s): %s", expansion.set->file.c_str(), doc["format"].get<std::string>().c_str(),
           counted(total, "reference").c_str());
  for (const auto& e : doc["entries"]) {
    std::string rule = e["rule"].get<std::string>();
    std::string what = e.contains("pattern") ? " \"" + e["pattern"].get<std::string>() + "\"" : "";
    std::string listed = e.contains("listed") ? " of " + std::to_string(e["listed"].get<std::size_t>()) + " listed" : "";
    out_line("  line %zu: %s%s %s/%s: %s%s", e["line"].get<std::size_t>(), rule.c_str(), what.c_str(),
             e["registry"].get<std::string>().c_str(), e["repository"].get<std::string>().c_str(),
             counted(e["references"].size(), "reference").c_str(), listed.c_str());
    for (const auto& r : e["references"]) out_line("    %s", r.get<std::string>().c_str());
  }
}

} // namespace ferry::cli

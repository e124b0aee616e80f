// cosign / Sigstore signature verification of one image, offline, as cosign v3 decides
// (issue 15). Contract: include/ferry/verify/cosign.hpp. Decisions read from cosign
// (pkg/cosign/verify.go: VerifyImageSignatures, VerifyBundle, VerifyRFC3161Timestamp,
// IntotoSubjectClaimVerifier, CheckCertificatePolicy) and sigstore-go (pkg/bundle validate,
// pkg/verify: tlog.go, certificate.go, signed_entity.go, sct.go); the Sigstore trust
// primitives themselves are in sigstore.cpp.
#include <ferry/verify/cosign.hpp>

#include <ferry/error.hpp>
#include <ferry/util/base64.hpp>
#include <ferry/verify/x509.hpp>
#include <ferry/util/json.hpp>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <functional>
#include <regex>

namespace ferry::verify::cosign {

namespace {

using json = nlohmann::json;
using sigstore::RekorBody;
using sigstore::TlogEntry;
using sigstore::TrustedRoot;

// Bounds on hostile input (design §8): sizes and counts a bundle or layer may carry.
constexpr std::size_t k_max_json = 4u << 20;        // a bundle, envelope or payload
constexpr std::size_t k_max_annotation = 1u << 20;  // one annotation value
constexpr std::size_t k_max_items = 32;             // tlog entries, timestamps, signatures, certificates
constexpr std::size_t k_max_depth = 64;                     // JSON nesting
constexpr std::size_t k_max_regex_input = 4096;     // a SAN or issuer matched against a regexp

const std::string k_intoto_v01 = "https://in-toto.io/Statement/v0.1";
const std::string k_intoto_v1 = "https://in-toto.io/Statement/v1";
const std::string k_simple_signing_type = "cosign container image signature";

[[noreturn]] void bad(const std::string& message) { throw Error(Errc::invalid_manifest, message); }

void check_depth(std::string_view bytes, const std::string& where)
{
  if (json_depth(bytes) > k_max_depth) bad(where + ": JSON nested deeper than 64 levels");
}

json parse_object(std::string_view bytes, const std::string& where, std::size_t max = k_max_json)
{
  if (bytes.size() > max) bad(where + ": larger than " + std::to_string(max >> 10) + " KiB");
  check_depth(bytes, where);
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded()) bad(where + ": not valid JSON");
  if (!j.is_object()) bad(where + ": not a JSON object");
  return j;
}

/// The member `key` of object `o` when present and not null, else nullptr.
const json* find(const json& o, const char* key)
{
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return nullptr;
  return &*it;
}

const json& need(const json& o, const char* key, const std::string& where)
{
  const json* v = find(o, key);
  if (!v) bad(where + ": \"" + key + "\" is missing");
  return *v;
}

const json& need_object(const json& o, const char* key, const std::string& where)
{
  const json& v = need(o, key, where);
  if (!v.is_object()) bad(where + ": \"" + key + "\" is not an object");
  return v;
}

std::string need_string(const json& o, const char* key, const std::string& where)
{
  const json& v = need(o, key, where);
  if (!v.is_string()) bad(where + ": \"" + key + "\" is not a string");
  return v.get<std::string>();
}

std::string opt_string(const json& o, const char* key, const std::string& where)
{
  const json* v = find(o, key);
  if (!v) return {};
  if (!v->is_string()) bad(where + ": \"" + key + "\" is not a string");
  return v->get<std::string>();
}

std::string decode_b64(std::string_view text, const std::string& what)
{
  try {
    return base64_decode(text);
  } catch (const Error&) {
    bad(what + " is not valid base64");
  }
}

std::string need_b64(const json& o, const char* key, const std::string& where)
{
  return decode_b64(need_string(o, key, where), where + ": \"" + key + "\"");
}

/// An array member with at most k_max_items elements (absent or null: empty).
const json* bounded_array(const json& o, const char* key, const std::string& where)
{
  const json* v = find(o, key);
  if (!v) return nullptr;
  if (!v->is_array()) bad(where + ": \"" + key + "\" is not an array");
  if (v->size() > k_max_items)
    bad(where + ": \"" + key + "\" has " + std::to_string(v->size()) + " elements (at most " +
        std::to_string(k_max_items) + ")");
  return v;
}

std::string sha256_raw(std::string_view data)
{
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &n, EVP_sha256(), nullptr) != 1)
    throw Error(Errc::internal, "sha256: " + openssl_error());
  return std::string(reinterpret_cast<const char*>(md.data()), n);
}

std::string to_hex(std::string_view raw)
{
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) { return to_hex(sha256_raw(data)); }

std::string from_hex(std::string_view text, const std::string& what)
{
  auto nibble = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    bad(what + " is not hex");
  };
  if (text.size() % 2) bad(what + " is not hex (odd length)");
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 2)
    out += static_cast<char>(nibble(text[i]) * 16 + nibble(text[i + 1]));
  return out;
}

std::string lower(std::string s)
{
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ---------------------------------------------------------------------------------------
// The eight checks, in report order.

enum Idx { k_format, k_subject, k_signature, k_tlog, k_timestamp, k_certificate, k_sct, k_identity, k_count };
constexpr std::array<const char*, k_count> k_names = {"format",      "subject", "signature", "tlog",
                                                       "timestamp",   "certificate", "sct", "identity"};

class Report {
public:
  explicit Report(std::string format)
  {
    m_v.format = std::move(format);
    for (const char* n : k_names) m_v.checks.push_back(Check{n, Action::enforce, CheckResult::skipped, "not reached"});
  }
  void pass(Idx i, std::string reason = {}) { set(i, CheckResult::pass, std::move(reason)); }
  void fail(Idx i, std::string reason) { set(i, CheckResult::fail, std::move(reason)); }
  void skip(Idx i, std::string reason) { set(i, CheckResult::skipped, std::move(reason)); }
  bool failed(Idx i) const { return m_v.checks[i].result == CheckResult::fail; }
  bool passed(Idx i) const { return m_v.checks[i].result == CheckResult::pass; }
  Verdict& verdict() { return m_v; }

  Verdict finish()
  {
    m_v.verified = passed(k_format) && passed(k_subject) && passed(k_signature);
    for (const auto& c : m_v.checks) {
      if (c.result == CheckResult::fail) {
        m_v.verified = false;
        if (m_v.reason.empty()) m_v.reason = c.name + ": " + c.reason;
      }
    }
    if (!m_v.verified && m_v.reason.empty()) m_v.reason = "internal: a required check did not run";
    return std::move(m_v);
  }

private:
  void set(Idx i, CheckResult r, std::string reason)
  {
    m_v.checks[i].result = r;
    m_v.checks[i].reason = std::move(reason);
  }
  Verdict m_v;
};

// ---------------------------------------------------------------------------------------
// What every kind of signature gives the shared checks (signature, tlog, timestamp,
// certificate, sct, identity).

struct Evidence {
  /// Keyless: the leaf from the bundle / certificate annotation (null: none given).
  X509Ptr leaf;
  /// Untrusted intermediates offered next to the leaf (the legacy chain annotation).
  std::vector<X509Ptr> untrusted;
  /// Verifies the signature(s) with a key; true when one verifies.
  std::function<bool(EVP_PKEY*)> verify;
  /// The raw signature bytes a tlog body must name (any one of them).
  std::vector<std::string> signatures;
  /// RFC 3161 timestamps (DER) and the bytes their message imprint covers.
  std::vector<std::string> timestamps;
  std::string timestamp_bytes;
  /// Transparency log entries; for legacy layers, the one from the bundle annotation.
  std::vector<TlogEntry> entries;
  /// Checks a parsed body against the signed content (hashes); "" when it matches.
  std::function<std::string(const RekorBody&)> body_content;
  /// Rekor kinds this content may be logged as.
  std::vector<std::string> kinds;
  std::string tlog_missing = "no transparency log entry";
};

/// Is `pem` (a Rekor body verifier: PEM of a certificate or public key) this verifier?
bool same_verifier(std::string_view pem, X509* leaf, EVP_PKEY* key)
{
  try {
    if (pem.find("CERTIFICATE") != std::string_view::npos) {
      if (!leaf) return false;
      Chain certs = parse_certificates(pem, "tlog body verifier");
      return !certs.empty() && der_equal(certs.front().get(), leaf);
    }
    if (!key) return false;
    auto k = sigstore::parse_public_key(pem, "tlog body verifier");
    return k && sigstore::spki_der(k.get()) == sigstore::spki_der(key);
  } catch (const Error&) {
    return false;
  }
}

std::string time_str(TimePoint t) { return format_rfc3339(t); }

TimePoint from_unix(std::int64_t s) { return TimePoint{std::chrono::seconds{s}}; }

/// Go's x509 EKU rule for one certificate: no EKU extension, anyExtendedKeyUsage or codeSigning.
bool allows_code_signing(X509* cert)
{
  std::uint32_t eku = X509_get_extended_key_usage(cert);
  return (eku & (XKU_CODE_SIGN | XKU_ANYEKU)) != 0;
}

struct ChainOutcome {
  bool ok = false;
  std::string reason;
  X509Ptr issuer;  ///< the certificate that issued the leaf, when the chain verified
  std::string authority;
};

/// The leaf chains to a certificate authority of the trusted root whose validFor holds `t`,
/// every certificate valid at `t`, EKU codeSigning through the chain (sigstore-go
/// VerifyLeafCertificate with x509.VerifyOptions{CurrentTime: t, KeyUsages: CodeSigning}).
ChainOutcome chain_to_root(X509* leaf, const std::vector<X509Ptr>& untrusted, const TrustedRoot& root, TimePoint t)
{
  ChainOutcome out;
  std::string reasons;
  auto note = [&](const std::string& r) {
    if (!reasons.empty()) reasons += "; ";
    reasons += r;
  };
  if (root.certificate_authorities.empty()) {
    out.reason = "the trusted root has no certificate authority";
    return out;
  }
  for (const auto& ca : root.certificate_authorities) {
    std::string name = ca.name.empty() ? ca.uri : ca.name;
    if (ca.chain.empty() || !ca.chain.back()) continue;
    if (!ca.valid_for.contains(t)) {
      note(name + ": not valid at " + time_str(t));
      continue;
    }
    X509StorePtr store(X509_STORE_new());
    X509StackPtr pool(sk_X509_new_null());
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    if (!store || !pool || !ctx) throw Error(Errc::internal, "X509 store: " + openssl_error());
    X509_STORE_add_cert(store.get(), ca.chain.back().get());
    auto push = [&](X509* c) {
      if (c && sk_X509_push(pool.get(), c) > 0) X509_up_ref(c);
    };
    for (std::size_t i = 0; i + 1 < ca.chain.size(); ++i) push(ca.chain[i].get());
    for (const auto& c : untrusted) push(c.get());
    if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf, pool.get()) != 1)
      throw Error(Errc::internal, "X509_STORE_CTX_init: " + openssl_error());
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(t.time_since_epoch().count()));
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_depth(param, 10);
    int rc = X509_verify_cert(ctx.get());
    ERR_clear_error();
    if (rc != 1) {
      note(name + ": " + X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get())));
      continue;
    }
    STACK_OF(X509)* built = X509_STORE_CTX_get0_chain(ctx.get());
    bool eku_ok = true;
    for (int i = 0; built && i < sk_X509_num(built) - 1; ++i)  // the anchor's EKU is not checked (Go)
      if (!allows_code_signing(sk_X509_value(built, i))) eku_ok = false;
    if (!eku_ok) {
      note(name + ": extended key usage does not allow code signing");
      continue;
    }
    out.ok = true;
    out.authority = name;
    if (built && sk_X509_num(built) > 1) out.issuer = clone(sk_X509_value(built, 1));
    return out;
  }
  out.reason = reasons.empty() ? "no certificate authority of the trusted root" : reasons;
  return out;
}

std::vector<std::string> all_sans(X509* cert)
{
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    const ASN1_STRING* s = nullptr;
    if (gn->type == GEN_EMAIL || gn->type == GEN_URI || gn->type == GEN_DNS) s = gn->d.ia5;
    else if (gn->type == GEN_OTHERNAME && gn->d.otherName && gn->d.otherName->value &&
             gn->d.otherName->value->type == V_ASN1_UTF8STRING)
      s = gn->d.otherName->value->value.utf8string;
    if (gn->type == GEN_DNS) continue;  // cosign's identities are emails, URIs and otherNames
    if (s) out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                            static_cast<std::size_t>(ASN1_STRING_length(s)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

const ASN1_OCTET_STRING* extension_data(X509* cert, std::string_view oid)
{
  ASN1_OBJECT* obj = OBJ_txt2obj(std::string(oid).c_str(), 1);
  if (!obj) return nullptr;
  int idx = X509_get_ext_by_OBJ(cert, obj, -1);
  ASN1_OBJECT_free(obj);
  if (idx < 0) return nullptr;
  X509_EXTENSION* ext = X509_get_ext(cert, idx);
  return ext ? X509_EXTENSION_get_data(ext) : nullptr;
}

/// A certificate's value for a message: at most 256 bytes of it.
std::string clip(const std::string& v) { return v.size() <= 256 ? v : v.substr(0, 256) + "..."; }

/// Identity / issuer matching as cosign: exact, or an unanchored ECMAScript regex search.
std::string match(const std::vector<std::string>& values, const std::string& exact, const std::string& pattern,
                  const char* what)
{
  if (exact.empty() && pattern.empty()) return std::string("the policy names no ") + what;
  std::optional<std::regex> re;
  if (!pattern.empty()) {
    try {
      re.emplace(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error&) {
      return std::string("the ") + what + " regular expression does not compile";
    }
  }
  for (const auto& v : values) {
    if (!exact.empty() && v == exact) return {};
    // libstdc++'s std::regex recurses per character: a hostile certificate's megabyte SAN
    // would exhaust the stack. Real identities are far shorter.
    if (re && v.size() <= k_max_regex_input) {
      try {
        if (std::regex_search(v, *re)) return {};
      } catch (const std::regex_error&) {
        return std::string("the ") + what + " regular expression is too complex for the certificate's value";
      }
    }
  }
  std::string shown;
  for (const auto& v : values) shown += (shown.empty() ? "" : ", ") + clip(v);
  if (shown.empty()) shown = "(none)";
  return std::string("certificate ") + what + " " + shown + " does not match " +
         (exact.empty() ? "/" + pattern + "/" : exact);
}

/// Runs the signature, tlog, timestamp, certificate, sct and identity checks (format and
/// subject are the caller's).
void verify_common(Report& rep, Evidence& ev, const Policy& policy, TimePoint now)
{
  const TrustedRoot* root = policy.trusted_root.get();
  Verdict& v = rep.verdict();
  bool keyless = policy.keyless();

  // --- signature
  EVP_PKEY* signer_key = nullptr;
  try {
    if (!keyless) {
      std::string names;
      for (const auto& k : policy.keys) {
        if (k.key && ev.verify(k.key.get())) {
          signer_key = k.key.get();
          v.signer = k.name;
          break;
        }
        names += (names.empty() ? "" : ", ") + k.name;
      }
      if (signer_key) rep.pass(k_signature, "verified with key " + v.signer);
      else rep.fail(k_signature, "the signature does not verify with any --cosign-key (" + names + ")");
    } else if (!ev.leaf) {
      rep.fail(k_signature, "no certificate to verify the signature with (keyless policy; give --cosign-key for keyed signatures)");
    } else {
      EVP_PKEY* k = X509_get0_pubkey(ev.leaf.get());
      if (k && ev.verify(k)) rep.pass(k_signature, "verified with the certificate's key");
      else rep.fail(k_signature, "the signature does not verify with the certificate's key");
    }
  } catch (const std::exception& e) {
    rep.fail(k_signature, e.what());
  }

  // --- tlog
  std::vector<TimePoint> set_times;
  if (policy.ignore_tlog) {
    rep.skip(k_tlog, "--insecure-ignore-tlog");
  } else if (!root) {
    rep.fail(k_tlog, "no trusted root");
  } else {
    std::size_t verified = 0;
    std::string failure, notes;
    for (std::size_t i = 0; i < ev.entries.size() && failure.empty(); ++i) {
      const TlogEntry& e = ev.entries[i];
      std::string where = ev.entries.size() > 1 ? "entry " + std::to_string(i) + ": " : "";
      if (!root->tlog(e.log_id)) {
        notes += (notes.empty() ? "" : "; ") + where + "log " + to_hex(e.log_id).substr(0, 16) + " is not in the trusted root";
        continue;
      }
      bool promise = !e.signed_entry_timestamp.empty();
      if (!promise && !e.inclusion_proof) {
        failure = where + "neither an inclusion promise nor an inclusion proof";
        break;
      }
      try {
        if (promise) {
          if (auto r = sigstore::verify_set(e, *root); !r.empty()) {
            failure = where + "signed entry timestamp: " + r;
            break;
          }
        }
        if (e.inclusion_proof) {
          if (auto r = sigstore::verify_inclusion(e, *root); !r.empty()) {
            failure = where + "inclusion proof: " + r;
            break;
          }
        }
        RekorBody body = RekorBody::parse(e.canonicalized_body, "tlog body");
        if (std::find(ev.kinds.begin(), ev.kinds.end(), body.kind) == ev.kinds.end()) {
          failure = where + "the entry is a " + body.kind + ", not a record of this signature";
          break;
        }
        if (auto r = ev.body_content(body); !r.empty()) {
          failure = where + "the entry is for another signature: " + r;
          break;
        }
        bool bound = false;
        for (const auto& logged : body.signatures) {
          const std::string& pem = logged.second;
          if (std::find(ev.signatures.begin(), ev.signatures.end(), logged.first) == ev.signatures.end()) continue;
          if (keyless ? same_verifier(pem, ev.leaf.get(), nullptr)
                      : signer_key ? same_verifier(pem, nullptr, signer_key)
                                   : std::any_of(policy.keys.begin(), policy.keys.end(), [&](const NamedKey& k) {
                                       return k.key && same_verifier(pem, nullptr, k.key.get());
                                     })) {
            bound = true;
            break;
          }
        }
        if (!bound) {
          failure = where + "the entry is for another signature or verifier";
          break;
        }
        if (promise) {
          TimePoint t = from_unix(e.integrated_time);
          if (keyless && ev.leaf && (t < not_before(ev.leaf.get()) || t > not_after(ev.leaf.get()))) {
            failure = where + "integrated time " + time_str(t) + " is outside the certificate's validity (" +
                      time_str(not_before(ev.leaf.get())) + " to " + time_str(not_after(ev.leaf.get())) + ")";
            break;
          }
          set_times.push_back(t);
        }
        ++verified;
      } catch (const std::exception& ex) {
        failure = where + ex.what();
      }
    }
    if (!failure.empty()) rep.fail(k_tlog, failure);
    else if (verified == 0)
      rep.fail(k_tlog, (ev.entries.empty() ? ev.tlog_missing : "no entry from a log of the trusted root") +
                           (notes.empty() ? "" : " (" + notes + ")") + " (--insecure-ignore-tlog to accept)");
    else
      rep.pass(k_tlog, std::to_string(verified) + (verified == 1 ? " entry" : " entries") + " verified" +
                           (set_times.empty() ? " (no signed entry timestamp)" : ", integrated at " + time_str(set_times.front())));
  }

  // --- timestamp
  std::vector<TimePoint> ts_times;
  {
    std::string reasons, authorities;
    for (std::size_t i = 0; i < ev.timestamps.size() && root; ++i) {
      sigstore::SignedTimestamp st;
      try {
        st = sigstore::verify_rfc3161(ev.timestamps[i], ev.timestamp_bytes, *root);
      } catch (const std::exception& e) {
        st.ok = false;
        st.reason = e.what();
      }
      if (st.ok) {
        ts_times.push_back(st.time);
        authorities += (authorities.empty() ? "" : ", ") + st.authority + " at " + time_str(st.time);
      } else {
        reasons += (reasons.empty() ? "" : "; ") + st.reason;
      }
    }
    if (policy.use_signed_timestamps) {
      if (ev.timestamps.empty()) rep.fail(k_timestamp, "no RFC 3161 timestamp (--use-signed-timestamps)");
      else if (ts_times.empty()) rep.fail(k_timestamp, "no RFC 3161 timestamp verifies: " + reasons);
      else rep.pass(k_timestamp, authorities);
    } else if (ev.timestamps.empty()) {
      rep.skip(k_timestamp, "none");
    } else if (!ts_times.empty()) {
      rep.pass(k_timestamp, authorities + " (not a signing time without --use-signed-timestamps)");
    } else {
      // cosign without --use-signed-timestamps does not look at them.
      rep.skip(k_timestamp, "not used without --use-signed-timestamps; none verifies: " + reasons);
    }
  }

  // --- signing times (sigstore-go observer timestamps as cosign v3 configures them)
  std::vector<TimePoint> times;
  std::string time_source;
  if (policy.use_signed_timestamps) {
    times = ts_times;
    time_source = "a verified RFC 3161 timestamp";
  } else if (!policy.ignore_tlog) {
    times = set_times;
    time_source = "a verified signed entry timestamp";
  } else {
    times = {now};
    time_source = "now";
  }
  // `now` is no signing time to report.
  if (!times.empty() && !(policy.ignore_tlog && !policy.use_signed_timestamps))
    v.signing_time = *std::min_element(times.begin(), times.end());

  // --- certificate, sct, identity
  if (!keyless) {
    rep.skip(k_certificate, "keyed signature");
    rep.skip(k_sct, "keyed signature");
    rep.skip(k_identity, "keyed signature");
    return;
  }
  if (!ev.leaf) {
    rep.fail(k_certificate, "no certificate");
    rep.fail(k_sct, "no certificate");
    rep.fail(k_identity, "no certificate");
    return;
  }
  X509Ptr issuer;
  try {
    if (!root) rep.fail(k_certificate, "no trusted root");
    else if (times.empty())
      rep.fail(k_certificate, "no trusted signing time (" + time_source + " is required)");
    else {
      std::string failure, authority;
      for (TimePoint t : times) {
        ChainOutcome c = chain_to_root(ev.leaf.get(), ev.untrusted, *root, t);
        if (!c.ok) {
          failure = "does not chain to a certificate authority of the trusted root at " + time_str(t) + ": " + c.reason;
          break;
        }
        if (!issuer) issuer = std::move(c.issuer);
        authority = c.authority;
      }
      if (failure.empty()) rep.pass(k_certificate, "chains to " + authority + " at " + time_str(times.front()));
      else rep.fail(k_certificate, failure);
    }
  } catch (const std::exception& e) {
    rep.fail(k_certificate, e.what());
  }

  if (policy.ignore_sct) {
    rep.skip(k_sct, "--insecure-ignore-sct");
  } else if (!root) {
    rep.fail(k_sct, "no trusted root");
  } else {
    try {
      if (!issuer) {  // the chain did not verify: the issuer among the trusted root's CA certificates
        for (const auto& ca : root->certificate_authorities) {
          for (const auto& c : ca.chain)
            if (c && X509_check_issued(c.get(), ev.leaf.get()) == X509_V_OK) {
              issuer = clone(c.get());
              break;
            }
          if (issuer) break;
        }
      }
      if (!issuer) rep.fail(k_sct, "the certificate's issuer is not in the trusted root");
      else if (auto r = sigstore::verify_embedded_scts(ev.leaf.get(), issuer.get(), *root); !r.empty())
        rep.fail(k_sct, r);
      else rep.pass(k_sct, "embedded SCT from a CT log of the trusted root");
    } catch (const std::exception& e) {
      rep.fail(k_sct, e.what());
    }
  }

  try {
    std::string san = certificate_san(ev.leaf.get());
    std::string iss = certificate_issuer(ev.leaf.get());
    v.signer = (san.empty() ? "(no SAN)" : clip(san)) + " (issuer " + (iss.empty() ? "(none)" : clip(iss)) + ")";
    std::string r = match(all_sans(ev.leaf.get()), policy.identity, policy.identity_regexp, "identity");
    if (r.empty()) {
      std::vector<std::string> issuers;
      if (!iss.empty()) issuers.push_back(iss);
      r = match(issuers, policy.issuer, policy.issuer_regexp, "OIDC issuer");
    }
    if (r.empty()) rep.pass(k_identity, v.signer);
    else rep.fail(k_identity, r);
  } catch (const std::exception& e) {
    rep.fail(k_identity, e.what());
  }
}

void not_reached(Report& rep)
{
  for (int i = k_subject; i < k_count; ++i) rep.skip(static_cast<Idx>(i), "not reached");
}

/// In-toto statement subject check (cosign IntotoSubjectClaimVerifier): `_type` in-toto,
/// some subject's digest[<image digest algorithm>] equals the image digest hex. Returns the
/// predicateType through `predicate_type`; "" when it names the image.
std::string statement_names_image(std::string_view payload_type, std::string_view payload, const Descriptor& image,
                                  std::string* predicate_type)
{
  if (payload_type != k_intoto) return "payloadType " + std::string(payload_type) + " is not " + std::string(k_intoto);
  json st;
  try {
    st = parse_object(payload, "in-toto statement");
  } catch (const Error& e) {
    return e.what();
  }
  if (predicate_type) {
    if (const json* p = find(st, "predicateType"); p && p->is_string()) *predicate_type = p->get<std::string>();
  }
  const json* type = find(st, "_type");
  if (!type || !type->is_string()) return "the statement has no _type";
  if (*type != k_intoto_v01 && *type != k_intoto_v1)
    return "statement _type " + type->get<std::string>() + " is not an in-toto statement";
  const json* subjects = find(st, "subject");
  if (!subjects || !subjects->is_array() || subjects->empty()) return "the statement has no subject";
  const std::string& alg = image.digest.algorithm();
  for (const auto& s : *subjects) {
    const json* d = find(s, "digest");
    if (!d || !d->is_object()) continue;
    const json* h = find(*d, alg.c_str());
    if (h && h->is_string() && h->get<std::string>() == image.digest.hex()) return {};
  }
  return "no statement subject names " + image.digest.str();
}

struct DsseEnvelope {
  std::string payload_type;
  std::string payload;
  std::vector<std::string> signatures;
};

DsseEnvelope parse_dsse(const json& env, const std::string& where)
{
  if (!env.is_object()) bad(where + ": not an object");
  DsseEnvelope d;
  d.payload = need_b64(env, "payload", where);
  d.payload_type = need_string(env, "payloadType", where);
  const json* sigs = bounded_array(env, "signatures", where);
  if (!sigs || sigs->empty()) bad(where + ": no signatures");
  for (std::size_t i = 0; i < sigs->size(); ++i) {
    std::string w = where + " signatures[" + std::to_string(i) + "]";
    const json& s = (*sigs)[i];
    if (!s.is_object()) bad(w + ": not an object");
    opt_string(s, "keyid", w);
    d.signatures.push_back(need_b64(s, "sig", w));
  }
  return d;
}

std::function<bool(EVP_PKEY*)> dsse_verifier(const DsseEnvelope& d)
{
  return [pae_bytes = pae(d.payload_type, d.payload), sigs = d.signatures](EVP_PKEY* key) {
    for (const auto& s : sigs)
      if (sigstore::verify_signature(key, pae_bytes, s)) return true;
    return false;
  };
}

/// Body content of a DSSE / in-toto entry: payloadHash is sha256(payload).
std::function<std::string(const RekorBody&)> dsse_body_check(const std::string& payload)
{
  return [h = sha256_hex(payload)](const RekorBody& b) -> std::string {
    if (!b.payload_sha256) return "the body has no payload hash";
    if (lower(*b.payload_sha256) != h) return "payload hash " + *b.payload_sha256 + " is not sha256 of the payload";
    return {};
  };
}

std::function<std::string(const RekorBody&)> hashedrekord_body_check(const std::string& data_hex)
{
  return [data_hex](const RekorBody& b) -> std::string {
    if (!b.data_sha256) return "the body has no data hash";
    if (lower(*b.data_sha256) != data_hex) return "data hash " + *b.data_sha256 + " is not sha256 of the signed bytes";
    return {};
  };
}

std::string annotation(const Descriptor& layer, std::string_view key)
{
  auto it = layer.annotations.find(std::string(key));
  if (it == layer.annotations.end()) return {};
  if (it->second.size() > k_max_annotation) bad("annotation " + std::string(key) + " is larger than 1 MiB");
  return it->second;
}

/// The legacy annotations shared by `.sig` and `.att` layers: certificate + chain, the
/// Rekor bundle (a TlogEntry without proof) and the RFC 3161 timestamp.
void legacy_annotations(const Descriptor& layer, Evidence& ev)
{
  std::string cert = annotation(layer, k_annotation_certificate);
  if (!cert.empty()) {
    Chain c;
    try {
      c = parse_certificates(cert, std::string(k_annotation_certificate));
    } catch (const Error& e) {
      bad(e.what());
    }
    if (c.empty()) bad(std::string(k_annotation_certificate) + ": no certificate");
    if (c.size() > 1) bad(std::string(k_annotation_certificate) + ": more than one certificate");
    ev.leaf = std::move(c.front());
  }
  std::string chain = annotation(layer, k_annotation_chain);
  if (!chain.empty()) {
    Chain c;
    try {
      c = parse_certificates(chain, std::string(k_annotation_chain));
    } catch (const Error& e) {
      bad(e.what());
    }
    if (c.size() > k_max_items) bad(std::string(k_annotation_chain) + ": too many certificates");
    for (auto& x : c) ev.untrusted.push_back(std::move(x));
  }
  std::string rb = annotation(layer, k_annotation_bundle);
  if (!rb.empty()) {
    std::string w(k_annotation_bundle);
    json j = parse_object(rb, w, k_max_annotation);
    const json& p = need_object(j, "Payload", w);
    TlogEntry e;
    e.signed_entry_timestamp = need_b64(j, "SignedEntryTimestamp", w);
    if (e.signed_entry_timestamp.empty()) bad(w + ": empty SignedEntryTimestamp");
    e.canonicalized_body = need_b64(p, "body", w + " Payload");
    auto int_field = [&](const char* key) -> std::int64_t {
      const json& n = need(p, key, w + " Payload");
      if (!n.is_number_integer()) bad(w + " Payload: \"" + key + "\" is not an integer");
      return n.get<std::int64_t>();
    };
    e.integrated_time = int_field("integratedTime");
    e.log_index = int_field("logIndex");
    e.log_id = from_hex(need_string(p, "logID", w + " Payload"), w + " Payload logID");
    try {
      RekorBody b = RekorBody::parse(e.canonicalized_body, w + " body");
      e.kind = b.kind;
      e.kind_version = b.version;
    } catch (const Error&) {
      // reported by the tlog check
    }
    ev.entries.push_back(std::move(e));
  }
  ev.tlog_missing = "no " + std::string(k_annotation_bundle) + " annotation";
  std::string ts = annotation(layer, k_annotation_rfc3161);
  if (!ts.empty()) {
    std::string w(k_annotation_rfc3161);
    json j = parse_object(ts, w, k_max_annotation);
    ev.timestamps.push_back(need_b64(j, "SignedRFC3161Timestamp", w));
  }
}

struct ParsedBundle {
  int minor = 0;  // 1, 2, 3
  Evidence ev;
  bool dsse = false;
  DsseEnvelope envelope;
  std::string digest_algorithm;
  std::string digest;  // raw
  std::string message_signature;
};

int bundle_minor(std::string_view mt)
{
  if (mt == "application/vnd.dev.sigstore.bundle+json;version=0.1") return 1;
  if (mt == "application/vnd.dev.sigstore.bundle+json;version=0.2") return 2;
  if (mt == "application/vnd.dev.sigstore.bundle+json;version=0.3") return 3;
  if (mt == k_bundle_v03) return 3;
  return 0;
}

ParsedBundle parse_bundle(std::string_view bytes)
{
  const std::string w = "bundle";
  json b = parse_object(bytes, w);
  ParsedBundle pb;
  std::string mt = need_string(b, "mediaType", w);
  pb.minor = bundle_minor(mt);
  if (!pb.minor) bad("unsupported bundle mediaType " + mt.substr(0, 200));
  const json& vm = need_object(b, "verificationMaterial", w);
  const std::string wv = "verificationMaterial";
  const json* cert = find(vm, "certificate");
  const json* chain = find(vm, "x509CertificateChain");
  const json* pk = find(vm, "publicKey");
  if ((cert ? 1 : 0) + (chain ? 1 : 0) + (pk ? 1 : 0) != 1)
    bad(wv + ": exactly one of certificate, x509CertificateChain, publicKey is required");
  if (cert) {
    if (!cert->is_object()) bad(wv + ": \"certificate\" is not an object");
    std::string der = need_b64(*cert, "rawBytes", wv + " certificate");
    try {
      pb.ev.leaf = parse_der_certificate(der);
    } catch (const Error& e) {
      bad(wv + " certificate: " + e.what());
    }
  } else if (chain) {
    if (pb.minor >= 3) bad(wv + ": a v0.3 bundle carries a single certificate, not x509CertificateChain");
    if (!chain->is_object()) bad(wv + ": \"x509CertificateChain\" is not an object");
    const json* certs = bounded_array(*chain, "certificates", wv + " x509CertificateChain");
    if (!certs || certs->empty()) bad(wv + " x509CertificateChain: no certificates");
    for (std::size_t i = 0; i < certs->size(); ++i) {
      std::string wc = wv + " x509CertificateChain certificates[" + std::to_string(i) + "]";
      if (!(*certs)[i].is_object()) bad(wc + ": not an object");
      std::string der = need_b64((*certs)[i], "rawBytes", wc);
      X509Ptr c;
      try {
        c = parse_der_certificate(der);
      } catch (const Error& e) {
        bad(wc + ": " + e.what());
      }
      // sigstore-go uses the leaf only; the rest are offered as untrusted intermediates.
      if (i == 0) pb.ev.leaf = std::move(c);
      else pb.ev.untrusted.push_back(std::move(c));
    }
  } else {
    if (!pk->is_object()) bad(wv + ": \"publicKey\" is not an object");
    opt_string(*pk, "hint", wv + " publicKey");  // informational: every policy key is tried
  }
  if (const json* entries = bounded_array(vm, "tlogEntries", wv)) {
    for (std::size_t i = 0; i < entries->size(); ++i) {
      std::string we = wv + " tlogEntries[" + std::to_string(i) + "]";
      TlogEntry e;
      try {
        e = TlogEntry::from_json((*entries)[i], we);
      } catch (const Error&) {
        throw;
      } catch (const std::exception& ex) {
        bad(we + ": " + ex.what());
      }
      if (pb.minor == 1 && e.signed_entry_timestamp.empty()) bad(we + ": an inclusion promise is required in a v0.1 bundle");
      if (pb.minor >= 2 && !e.inclusion_proof) bad(we + ": an inclusion proof is required in a v0.2+ bundle");
      pb.ev.entries.push_back(std::move(e));
    }
  }
  if (const json* tvd = find(vm, "timestampVerificationData")) {
    if (!tvd->is_object()) bad(wv + ": \"timestampVerificationData\" is not an object");
    if (const json* ts = bounded_array(*tvd, "rfc3161Timestamps", wv + " timestampVerificationData")) {
      for (std::size_t i = 0; i < ts->size(); ++i) {
        std::string wt = wv + " rfc3161Timestamps[" + std::to_string(i) + "]";
        if (!(*ts)[i].is_object()) bad(wt + ": not an object");
        pb.ev.timestamps.push_back(need_b64((*ts)[i], "signedTimestamp", wt));
      }
    }
  }
  const json* dsse = find(b, "dsseEnvelope");
  const json* ms = find(b, "messageSignature");
  if ((dsse ? 1 : 0) + (ms ? 1 : 0) != 1) bad("bundle: exactly one of dsseEnvelope, messageSignature is required");
  if (dsse) {
    pb.dsse = true;
    pb.envelope = parse_dsse(*dsse, "dsseEnvelope");
    if (pb.envelope.signatures.size() != 1)
      bad("dsseEnvelope: " + std::to_string(pb.envelope.signatures.size()) +
          " signatures; a Sigstore bundle carries exactly one");
  } else {
    if (!ms->is_object()) bad("bundle: \"messageSignature\" is not an object");
    const json& md = need_object(*ms, "messageDigest", "messageSignature");
    pb.digest_algorithm = need_string(md, "algorithm", "messageSignature messageDigest");
    pb.digest = need_b64(md, "digest", "messageSignature messageDigest");
    pb.message_signature = need_b64(*ms, "signature", "messageSignature");
  }
  return pb;
}

} // namespace

// ---------------------------------------------------------------------------------------

bool is_bundle_media_type(std::string_view mt) { return bundle_minor(mt) != 0; }

std::string pae(std::string_view payload_type, std::string_view payload)
{
  std::string out = "DSSEv1 " + std::to_string(payload_type.size()) + " ";
  out += payload_type;
  out += " " + std::to_string(payload.size()) + " ";
  out += payload;
  return out;
}

std::string certificate_san(X509* cert)
{
  if (!cert) return {};
  auto sans = all_sans(cert);
  return sans.empty() ? std::string() : sans.front();
}

std::string certificate_issuer(X509* cert)
{
  if (!cert) return {};
  if (const ASN1_OCTET_STRING* d = extension_data(cert, k_oid_issuer_v2)) {
    const unsigned char* p = ASN1_STRING_get0_data(d);
    ASN1_UTF8STRING* s = d2i_ASN1_UTF8STRING(nullptr, &p, ASN1_STRING_length(d));
    if (s) {
      std::string out(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s)));
      ASN1_UTF8STRING_free(s);
      return out;
    }
    ERR_clear_error();
  }
  if (const ASN1_OCTET_STRING* d = extension_data(cert, k_oid_issuer_v1))
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(d)), static_cast<std::size_t>(ASN1_STRING_length(d)));
  return {};
}

Verdict verify_bundle(std::string_view bundle_json, const Descriptor& image, const std::string* image_bytes,
                      const Policy& policy, TimePoint now)
{
  Report rep("sigstore-bundle");
  ParsedBundle pb;
  try {
    pb = parse_bundle(bundle_json);
    rep.pass(k_format, "bundle v0." + std::to_string(pb.minor) + (pb.dsse ? ", DSSE" : ", message signature"));
  } catch (const std::exception& e) {
    rep.fail(k_format, e.what());
    not_reached(rep);
    return rep.finish();
  }
  Evidence& ev = pb.ev;
  try {
    if (pb.dsse) {
      std::string predicate;
      std::string r = statement_names_image(pb.envelope.payload_type, pb.envelope.payload, image, &predicate);
      rep.verdict().detail = "DSSE" + (predicate.empty() ? std::string() : " " + predicate);
      if (r.empty()) rep.pass(k_subject, "the in-toto statement names " + image.digest.str());
      else rep.fail(k_subject, r);
      ev.verify = dsse_verifier(pb.envelope);
      ev.signatures = pb.envelope.signatures;
      ev.timestamp_bytes = pb.envelope.signatures.front();
      ev.body_content = dsse_body_check(pb.envelope.payload);
      ev.kinds = {"dsse", "intoto"};
    } else {
      rep.verdict().detail = "message signature";
      if (pb.digest_algorithm != "SHA2_256")
        rep.fail(k_subject, "messageDigest algorithm " + pb.digest_algorithm + " is not SHA2_256");
      else if (image.digest.algorithm() != "sha256" || to_hex(pb.digest) != image.digest.hex())
        rep.fail(k_subject, "messageDigest " + to_hex(pb.digest) + " is not " + image.digest.str());
      else rep.pass(k_subject, "the message digest is " + image.digest.str());
      std::optional<std::string> bytes;
      if (image_bytes && Digest::of(*image_bytes, "sha256").hex() == to_hex(pb.digest)) bytes = *image_bytes;
      ev.verify = [bytes, sig = pb.message_signature](EVP_PKEY* key) {
        return bytes && sigstore::verify_signature(key, *bytes, sig);
      };
      ev.signatures = {pb.message_signature};
      ev.timestamp_bytes = pb.message_signature;
      ev.body_content = hashedrekord_body_check(to_hex(pb.digest));
      ev.kinds = {"hashedrekord"};
    }
  } catch (const std::exception& e) {
    rep.fail(k_subject, e.what());
  }
  verify_common(rep, ev, policy, now);
  if (!pb.dsse && !image_bytes && rep.failed(k_signature))
    rep.fail(k_signature, "the image manifest's bytes are needed to verify a message signature");
  return rep.finish();
}

Verdict verify_simple_signing(const Descriptor& layer, std::string_view payload, const Descriptor& image,
                              const Policy& policy, TimePoint now)
{
  Report rep("cosign-sig");
  rep.verdict().detail = "simple signing";
  Evidence ev;
  json p;
  std::string signature;
  try {
    p = parse_object(payload, "simple-signing payload");
    std::string sig_b64 = annotation(layer, k_annotation_signature);
    if (sig_b64.empty()) bad(std::string(k_annotation_signature) + ": missing or empty");
    signature = decode_b64(sig_b64, std::string(k_annotation_signature));
    legacy_annotations(layer, ev);
    rep.pass(k_format, "simple-signing payload and annotations parse");
  } catch (const std::exception& e) {
    rep.fail(k_format, e.what());
    not_reached(rep);
    return rep.finish();
  }
  try {
    const json* critical = find(p, "critical");
    const json* type = critical ? find(*critical, "type") : nullptr;
    const json* img = critical ? find(*critical, "image") : nullptr;
    const json* d = img ? find(*img, "docker-manifest-digest") : nullptr;
    if (!critical || !critical->is_object()) rep.fail(k_subject, "the payload has no critical object");
    else if (!type || !type->is_string() || *type != k_simple_signing_type)
      rep.fail(k_subject, "critical.type is " + (type ? type->dump() : std::string("missing")) + ", not \"" +
                              k_simple_signing_type + "\"");
    else if (!d || !d->is_string()) rep.fail(k_subject, "critical.image.docker-manifest-digest is missing");
    else if (d->get<std::string>() != image.digest.str())
      rep.fail(k_subject, "critical.image.docker-manifest-digest " + d->get<std::string>() + " is not " + image.digest.str());
    else rep.pass(k_subject, "the payload names " + image.digest.str());
  } catch (const std::exception& e) {
    rep.fail(k_subject, e.what());
  }
  std::string payload_copy(payload);
  ev.verify = [payload_copy, signature](EVP_PKEY* key) { return sigstore::verify_signature(key, payload_copy, signature); };
  ev.signatures = {signature};
  ev.timestamp_bytes = signature;
  ev.body_content = hashedrekord_body_check(sha256_hex(payload));
  ev.kinds = {"hashedrekord"};
  verify_common(rep, ev, policy, now);
  return rep.finish();
}

Verdict verify_attestation(const Descriptor& layer, std::string_view envelope, const Descriptor& image,
                           const Policy& policy, TimePoint now)
{
  Report rep("cosign-att");
  rep.verdict().detail = "DSSE";
  Evidence ev;
  DsseEnvelope d;
  try {
    json env = parse_object(envelope, "DSSE envelope");
    d = parse_dsse(env, "DSSE envelope");
    legacy_annotations(layer, ev);
    rep.pass(k_format, "DSSE envelope and annotations parse");
  } catch (const std::exception& e) {
    rep.fail(k_format, e.what());
    not_reached(rep);
    return rep.finish();
  }
  std::string predicate;
  std::string r = statement_names_image(d.payload_type, d.payload, image, &predicate);
  if (!predicate.empty()) rep.verdict().detail = "DSSE " + predicate;
  if (r.empty()) rep.pass(k_subject, "the in-toto statement names " + image.digest.str());
  else rep.fail(k_subject, r);
  ev.verify = dsse_verifier(d);
  ev.signatures = d.signatures;
  // cosign VerifyRFC3161Timestamp: an attestation has no signature annotation, so the
  // timestamp covers the signed payload (the envelope).
  ev.timestamp_bytes = std::string(envelope);
  ev.body_content = dsse_body_check(d.payload);
  ev.kinds = {"intoto", "dsse"};
  verify_common(rep, ev, policy, now);
  return rep.finish();
}

} // namespace ferry::verify::cosign

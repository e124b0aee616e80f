#include <ferry/verify/verifier.hpp>

#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/verify/dn.hpp>
#include <ferry/verify/envelope.hpp>
#include <ferry/verify/timestamp.hpp>
#include <ferry/verify/x509.hpp>
#include <ferry/util/text.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>
#include <tuple>

namespace ferry::verify {

const char* check_result_name(CheckResult r)
{
  switch (r) {
  case CheckResult::pass: return "pass";
  case CheckResult::fail: return "fail";
  case CheckResult::skipped: return "skipped";
  }
  return "?";
}

namespace {

// Loads the certificates of every store of `type` the statement names (duplicates once).
Chain load_stores(const TrustStore& store, const TrustPolicyStatement& statement, const std::string& type)
{
  Chain out;
  std::vector<std::string> seen;
  for (const auto& [t, name] : statement.trust_stores) {
    if (t != type || std::find(seen.begin(), seen.end(), name) != seen.end()) continue;
    seen.push_back(name);
    for (auto& c : store.load(t, name)) out.push_back(std::move(c));
  }
  return out;
}

/// Go's `%q` of a certificate's subject (pkix.Name.String()).
std::string quoted_subject(X509* cert) { return go_quote(go_name(X509_get_subject_name(cert)).text); }
std::string quoted_time(TimePoint t) { return go_quote(format_rfc1123z(t)); }

/// notation-go verifyTimestamp when no timestamp verification is performed: every certificate
/// of the chain must be valid now (SPEC §6 step 6).
std::string cert_validity_problem(X509* cert, TimePoint t)
{
  if (t < not_before(cert))
    return "verification time is before certificate " + quoted_subject(cert) + " validity period, it will be valid from " +
           quoted_time(not_before(cert));
  if (t > not_after(cert))
    return "verification time is after certificate " + quoted_subject(cert) + " validity period, it was expired at " +
           quoted_time(not_after(cert));
  return {};
}

struct Recorder {
  SignatureVerdict& verdict;
  // Records a check; returns false when an enforced failure ends the signature.
  bool record(const std::string& name, Action action, bool ok, const std::string& reason)
  {
    Check c{name, action, ok ? CheckResult::pass : CheckResult::fail, ok ? std::string() : reason};
    verdict.checks.push_back(c);
    if (!ok && action == Action::enforce) {
      verdict.reason = name + " validation failed: " + reason;
      return false;
    }
    return true;
  }
  void skipped(const std::string& name, Action action, const std::string& reason = {})
  {
    verdict.checks.push_back(Check{name, action, CheckResult::skipped, reason});
  }
};

} // namespace

SignatureVerdict verify_signature(const Descriptor& subject, const Descriptor& manifest_desc, const Manifest& manifest,
                                  const std::string* envelope, const TrustPolicyStatement& statement,
                                  const VerifyOptions& options)
{
  SignatureVerdict verdict;
  verdict.manifest = manifest_desc;
  const VerificationLevel& level = statement.verification;
  Recorder rec{verdict};
  const std::vector<std::string> all = {"integrity", "authenticity", "trustedIdentity", "expiry", "authenticTimestamp", "revocation"};
  if (manifest.layers.size() == 1) verdict.envelope_media_type = manifest.layers[0].media_type;

  // 0. Level skip: notation-go returns success without even parsing the signature (SPEC §6 step 0).
  if (level.level == Level::skip) {
    for (const auto& name : all) rec.skipped(name, Action::skip, "trust policy is configured to skip signature verification");
    verdict.verified = true;
    return verdict;
  }

  const std::vector<std::string> later(all.begin() + 1, all.end());
  auto skip_rest = [&](std::size_t from) {
    for (std::size_t i = from; i < later.size(); ++i) rec.skipped(later[i], Action::enforce, "not reached");
  };

  // 1. Integrity: always enforced.
  SignerInfo info;
  try {
    if (manifest.layers.size() != 1)
      throw IntegrityError("signature manifest requires exactly one signature envelope blob, it has " +
                           std::to_string(manifest.layers.size()));
    if (!envelope) throw IntegrityError("signature envelope " + manifest.layers[0].digest.str() + " is missing from the bundle");
    try {
      info = verify_envelope(manifest.layers[0].media_type, *envelope);
    } catch (const IntegrityError& e) {
      if (e.stage() == IntegrityError::Stage::parse)
        throw IntegrityError(std::string("unable to parse the digital signature, error : ") + e.what());
      throw;
    }
    Descriptor target = parse_payload_target(info.payload);
    if (target.media_type != subject.media_type || target.digest != subject.digest || target.size != subject.size)
      throw IntegrityError("content descriptor mismatch: the signature is for " + target.digest.str() + " (" +
                           target.media_type + ", " + std::to_string(target.size) + " bytes), not for " +
                           subject.digest.str());
    // notation-go fails such a signature at every level when the plugin cannot be run
    // (ngo:verifier/verifier.go processSignature, "error while locating the verification plugin").
    if (!info.verification_plugin.empty())
      throw IntegrityError("the signature requires verification plugin \"" + info.verification_plugin +
                           "\", which ferry cannot run offline");
    if (!info.unknown_critical.empty())
      throw IntegrityError("unknown critical header \"" + info.unknown_critical.front() + "\"");
  } catch (const IntegrityError& e) {
    rec.record("integrity", Action::enforce, false, e.what());
    skip_rest(0);
    return verdict;
  } catch (const Error& e) {
    rec.record("integrity", Action::enforce, false, e.what());
    skip_rest(0);
    return verdict;
  }
  rec.record("integrity", Action::enforce, true, {});

  bool authority = info.scheme == SigningScheme::x509_signing_authority;

  // 2. Authenticity: some certificate of the chain is byte-identical to a trusted one. Trust
  // store load errors are authenticity results (ngo verifyAuthenticity / loadX509TrustStores).
  {
    std::string reason;
    bool ok = false;
    try {
      if (!options.trust_store) throw Error(Errc::invalid_argument, "no trust store given");
      Chain trusted;
      try {
        trusted = load_stores(*options.trust_store, statement, authority ? "signingAuthority" : "ca");
      } catch (const Error& e) {
        throw Error(Errc::invalid_argument, std::string("error while loading the trust store, ") + e.what());
      }
      if (trusted.empty()) reason = "no trusted certificates are found to verify authenticity";
      for (const auto& c : info.chain)
        for (const auto& t : trusted)
          if (der_equal(c.get(), t.get())) ok = true;
      if (!ok && reason.empty()) reason = "the signature's certificate chain does not contain any trusted certificate";
    } catch (const Error& e) {
      reason = e.what();
    }
    if (!rec.record("authenticity", level.authenticity, ok, reason)) {
      skip_rest(1);
      return verdict;
    }
  }
  // 3. Trusted identity (reported with authenticity's action).
  {
    auto failure = trusted_identity_failure(statement.name, statement.trusted_identities, info.chain.front().get());
    if (!rec.record("trustedIdentity", level.authenticity, !failure, failure.value_or(""))) {
      skip_rest(2);
      return verdict;
    }
  }
  // 4. Expiry: expired when now >= expiry (ngo verifyExpiry).
  if (level.expiry == Action::skip) {
    rec.skipped("expiry", Action::skip);
  } else {
    bool ok = !info.expiry || options.now < *info.expiry;
    if (!rec.record("expiry", level.expiry, ok,
                    info.expiry ? "digital signature has expired on " + quoted_time(*info.expiry) : std::string())) {
      skip_rest(3);
      return verdict;
    }
  }
  // 5. Authentic timestamp (ngo verifyAuthenticTimestamp / verifyTimestamp).
  if (level.authentic_timestamp == Action::skip) {
    rec.skipped("authenticTimestamp", Action::skip);
  } else {
    bool ok = true;
    std::string reason;
    if (authority) {
      TimePoint t = *info.authentic_signing_time;
      for (const auto& c : info.chain) {
        if (t < not_before(c.get()) || t > not_after(c.get())) {
          ok = false;
          reason = "certificate " + quoted_subject(c.get()) + " was not valid when the digital signature was produced at " +
                   quoted_time(t) + " (its validity period is " + quoted_time(not_before(c.get())) + " to " +
                   quoted_time(not_after(c.get())) + ")";
          break;
        }
      }
    } else {
      bool has_tsa = std::any_of(statement.trust_stores.begin(), statement.trust_stores.end(),
                                 [](const auto& s) { return s.first == "tsa"; });
      bool expired_cert = std::any_of(info.chain.begin(), info.chain.end(),
                                      [&](const X509Ptr& c) { return options.now > not_after(c.get()); });
      bool perform = has_tsa && (statement.verify_timestamp != "afterCertExpiry" || expired_cert);
      if (!perform) {
        for (const auto& c : info.chain)
          if (auto p = cert_validity_problem(c.get(), options.now); !p.empty()) {
            ok = false;
            reason = p;
            break;
          }
      } else if (info.timestamp_token.empty()) {
        ok = false;
        reason = "no timestamp countersignature was found in the signature envelope";
      } else {
        // notation-go parses and validates the token before loading the tsa stores; with no
        // roots verify_timestamp stops right after those steps.
        Chain roots;
        std::optional<std::string> load_error;
        try {
          if (!options.trust_store) throw Error(Errc::invalid_argument, "no trust store given");
          roots = load_stores(*options.trust_store, statement, "tsa");
        } catch (const Error& e) {
          load_error = std::string("failed to load tsa trust store with error: ") + e.what();
        }
        auto ts = verify_timestamp(info.timestamp_token, info.signature, roots, info.chain, options.crls, options.now);
        ok = ts.ok && !load_error;
        reason = ts.reason;
        if (load_error && reason == "no trusted TSA certificate found in trust store") reason = *load_error;
      }
    }
    if (!rec.record("authenticTimestamp", level.authentic_timestamp, ok, reason)) {
      skip_rest(4);
      return verdict;
    }
  }
  // 6. Revocation, offline from CRLs.
  if (level.revocation == Action::skip) {
    rec.skipped("revocation", Action::skip);
  } else {
    std::optional<TimePoint> signing_time;
    if (authority) signing_time = info.authentic_signing_time;
    auto r = check_revocation(info.chain, options.crls, options.now, signing_time, RevocationPurpose::code_signing);
    if (!rec.record("revocation", level.revocation, r.status == RevocationStatus::ok, r.reason)) return verdict;
  }
  verdict.verified = true;
  return verdict;
}

namespace {

using SignatureList = std::vector<std::pair<Descriptor, Manifest>>;

/// A cosign signature manifest of a subject: a Sigstore bundle referrer, or a `.sig` / `.att`
/// tag attachment (each of its layers is one signature).
struct CosignSignature {
  Descriptor desc;
  Manifest manifest;
};

/// The signatures of `subject` among `all` (subject → signature manifests): those whose
/// subject equals it by mediaType, digest and size (SPEC §1.2), verified against
/// `statement`, at most options.max_signatures. Sets `verified` when one verifies.
std::vector<SignatureVerdict> verify_signatures_of(LayoutReader& bundle, const Descriptor& subject,
                                                   const std::map<Digest, SignatureList>& all,
                                                   const TrustPolicyStatement& statement, const VerifyOptions& options,
                                                   bool& verified)
{
  std::vector<SignatureVerdict> out;
  verified = false;
  auto it = all.find(subject.digest);
  if (it == all.end()) return out;
  std::size_t tried = 0;
  for (const auto& [sd, sm] : it->second) {
    if (sm.subject->media_type != subject.media_type || sm.subject->size != subject.size) continue;
    if (tried++ >= options.max_signatures) break;
    const std::string* envelope = sm.layers.size() == 1 ? bundle.kept(sm.layers[0].digest) : nullptr;
    // notation stops at the first signature that verifies; the verdict is the same, but the
    // auditor's report states every signature.
    auto v = verify_signature(subject, sd, sm, envelope, statement, options);
    if (v.verified) verified = true;
    out.push_back(std::move(v));
  }
  return out;
}

std::string none_verified(const std::vector<SignatureVerdict>& sigs)
{
  return sigs.size() == 1 ? sigs[0].reason : std::to_string(sigs.size()) + " signatures, none verified";
}

/// Every manifest of `root`'s graph that gets a verdict of its own (ReferrerVerdict): a walk
/// through index children and referrers (subject links), each manifest once.
std::vector<ReferrerVerdict> referrers_of(const Descriptor& root, const std::map<Digest, std::pair<Descriptor, Manifest>>& parsed,
                                          const std::map<Digest, std::vector<Digest>>& referrers,
                                          const std::map<Digest, SignatureList>& signatures,
                                          const std::map<Digest, std::vector<CosignSignature>>& cosign_signatures,
                                          const std::map<Digest, std::vector<Digest>>& sboms)
{
  std::vector<ReferrerVerdict> out;
  std::map<Digest, Digest> sbom_subject;  // cosign .sbom attachment → the manifest it is about
  std::set<Digest> seen{root.digest};
  std::vector<Digest> queue{root.digest};
  for (std::size_t i = 0; i < queue.size(); ++i) {
    auto node = parsed.find(queue[i]);
    if (node == parsed.end()) continue;  // missing: an integrity problem, reported there
    const Manifest& m = node->second.second;
    if (i > 0) {
      bool sig = is_signature_manifest(m) || is_cosign_signature_manifest(m);
      bool has_sigs = signatures.count(queue[i]) != 0 || cosign_signatures.count(queue[i]) != 0;
      auto sbom = sbom_subject.find(queue[i]);
      if ((m.subject && !sig) || has_sigs || sbom != sbom_subject.end()) {
        ReferrerVerdict r;
        r.desc = node->second.first;
        r.artifact_type = m.effective_artifact_type();
        if (m.subject) r.subject = m.subject->digest;
        if (sbom != sbom_subject.end()) {
          // A cosign SBOM attachment: named by its tag, about the manifest in that tag.
          r.subject = sbom->second;
          r.artifact_type = m.layers.empty() ? "cosign SBOM" : m.layers[0].media_type;
        }
        out.push_back(std::move(r));
      }
    }
    std::vector<Digest> next;
    for (const auto& child : m.manifests) next.push_back(child.digest);
    if (auto it = referrers.find(queue[i]); it != referrers.end()) next.insert(next.end(), it->second.begin(), it->second.end());
    if (auto it = sboms.find(queue[i]); it != sboms.end())
      for (const auto& d : it->second) {
        sbom_subject.emplace(d, queue[i]);
        next.push_back(d);
      }
    for (const auto& d : next)
      if (seen.insert(d).second) queue.push_back(d);
  }
  return out;
}

/// One kind's outcome for one artifact: whether its material was given, whether one of its
/// signatures verified, and why not.
struct KindOutcome {
  bool given = false;
  bool ok = false;
  std::string reason;
};

/// A cosign verdict in the report's terms.
SignatureVerdict from_cosign(const Descriptor& manifest, const Descriptor& layer, std::size_t index, cosign::Verdict v)
{
  SignatureVerdict out;
  out.manifest = manifest;
  out.envelope_media_type = layer.media_type;
  out.kind = "cosign";
  out.format = std::move(v.format);
  out.detail = std::move(v.detail);
  out.layer = index;
  out.signer = std::move(v.signer);
  out.signing_time = v.signing_time;
  out.verified = v.verified;
  out.reason = std::move(v.reason);
  out.checks = std::move(v.checks);
  return out;
}

/// The cosign signatures of `subject` (its Sigstore bundle referrers and the layers of its
/// `.sig` / `.att` attachments), each verified against options.cosign; at most
/// options.max_signatures. Sets `verified` when one verifies.
std::vector<SignatureVerdict> verify_cosign_of(LayoutReader& bundle, const Descriptor& subject,
                                               const std::map<Digest, std::vector<CosignSignature>>& all,
                                               const VerifyOptions& options, bool& verified)
{
  std::vector<SignatureVerdict> out;
  verified = false;
  auto it = all.find(subject.digest);
  if (it == all.end()) return out;
  // A message signature is over the image manifest's bytes.
  std::optional<std::string> image_bytes = bundle.metadata().get(subject.digest);
  for (const auto& sig : it->second) {
    for (std::size_t i = 0; i < sig.manifest.layers.size(); ++i) {
      if (out.size() >= options.max_signatures) return out;
      const Descriptor& layer = sig.manifest.layers[i];
      const std::string* bytes = bundle.kept(layer.digest);
      cosign::Verdict v;
      if (!bytes) {
        v.format = cosign::is_bundle_media_type(layer.media_type) ? "sigstore-bundle"
                   : layer.media_type == media_type::k_dsse_envelope ? "cosign-att"
                                                                       : "cosign-sig";
        v.reason = "format: layer " + layer.digest.str() + " is missing from the bundle or larger than " +
                   std::to_string(k_max_kept_blob) + " bytes";
        v.checks.push_back({"format", Action::enforce, CheckResult::fail, v.reason.substr(8)});
      } else if (cosign::is_bundle_media_type(layer.media_type)) {
        v = cosign::verify_bundle(*bytes, subject, image_bytes ? &*image_bytes : nullptr, *options.cosign, options.now);
      } else if (layer.media_type == media_type::k_cosign_simple_signing) {
        v = cosign::verify_simple_signing(layer, *bytes, subject, *options.cosign, options.now);
      } else if (layer.media_type == media_type::k_dsse_envelope) {
        v = cosign::verify_attestation(layer, *bytes, subject, *options.cosign, options.now);
      } else {
        continue;  // not a signature layer (is_cosign_signature_manifest admits no other kind)
      }
      auto verdict = from_cosign(sig.desc, layer, i, std::move(v));
      if (verdict.verified) verified = true;
      out.push_back(std::move(verdict));
    }
  }
  return out;
}

} // namespace

const char* signature_kind_name(SignatureKind k)
{
  return k == SignatureKind::notation ? "notation" : "cosign";
}

VerifyReport verify_bundle(LayoutReader& bundle, const VerifyOptions& options,
                           const std::function<std::string(const BundleRoot&)>& scope_of,
                           const DeltaBaseCheck& delta_base)
{
  VerifyReport report;
  report.bundle = bundle.path();
  report.format = bundle.format();
  report.time = options.now;
  // The one definition of the roots (design §3): what it refuses is refused here too.
  BundleContents contents = classify(bundle);
  // A delta bundle (issue 16) leaves out blobs its base holds: the graph is complete when
  // the base accounts for each of them, and it is never complete without one.
  if (contents.record) {
    try {
      report.delta = read_record(bundle, *contents.record).delta;
    } catch (const Error& e) {
      bundle.problems().add(contents.record->digest.str(), e.what());
    }
  }
  check_graph(bundle, report.delta ? &*report.delta : nullptr);
  if (report.delta) {
    const DeltaRecord& delta = *report.delta;
    if (delta_base) {
      report.delta_base = delta_base(delta, bundle.problems());
    } else if (!delta.left_out.empty()) {
      bundle.problems().add(delta.base.str(), "delta bundle: " + counted(delta.left_out.size(), "blob") + " (" +
                                                 human_bytes(delta.left_out_bytes()) + ") left out against its base " +
                                                 delta.base.str() + " (" + delta.base_kind + " " + delta.base_source +
                                                 ") are not checked; verify with --base BUNDLE, --base-inventory FILE or "
                                                 "--against REGISTRY");
    }
  }
  for (const auto& [d, entry] : bundle.blobs()) {
    ++report.blobs;
    report.bytes += entry.size;
  }
  report.bundle_digest = bundle.index_digest();
  report.problems = bundle.problems();
  report.crls = options.crls.describe(options.now);
  bool intact = report.problems.empty();

  auto describe_root = [&](const BundleRoot& root) {
    ArtifactVerdict a;
    a.desc = root.desc;
    a.reference = root.source ? root.source->str() : (root.tag.empty() ? root.desc.digest.str() : root.tag);
    // Scopes are matched normalised (Reference::normalise_scope, issue 13 §4).
    if (scope_of) a.scope = Reference::normalise_scope(scope_of(root));
    else if (options.scope) a.scope = Reference::normalise_scope(*options.scope);
    else if (root.source) a.scope = root.source->scope();
    return a;
  };
  if (options.integrity_only) {
    // Every root is listed, so that the report names what the integrity check covered.
    for (const auto& root : contents.roots) {
      ArtifactVerdict a = describe_root(root);
      // Verified as far as this run checks: the bundle's integrity.
      a.signatures_checked = false;
      a.verified = intact;
      a.reason = intact ? "signatures not checked (--integrity-only)"
                        : "the bundle failed its integrity check (see the integrity problems); signatures not checked "
                          "(--integrity-only)";
      report.artifacts.push_back(std::move(a));
    }
    report.verified = intact;
    return report;
  }

  std::map<Digest, std::pair<Descriptor, Manifest>> parsed;  // every manifest of the bundle
  std::map<Digest, SignatureList> signatures;                // subject → Notation signature manifests
  std::map<Digest, std::vector<Digest>> referrers;           // subject → every referrer
  std::map<Digest, std::vector<CosignSignature>> cosign_signatures;  // subject → cosign signature manifests
  std::map<Digest, std::vector<Digest>> sboms;                       // subject → cosign .sbom attachments
  for (const auto& desc : bundle.metadata().all()) {
    Manifest m = Manifest::parse(*bundle.metadata().get(desc.digest), desc.media_type, desc.digest.str());
    if (m.subject) {
      referrers[m.subject->digest].push_back(desc.digest);
      if (is_signature_manifest(m)) signatures[m.subject->digest].emplace_back(desc, m);
      else if (is_cosign_signature_manifest(m)) cosign_signatures[m.subject->digest].push_back({desc, m});
    }
    parsed.emplace(desc.digest, std::make_pair(desc, std::move(m)));
  }
  // cosign's tag attachments, as classify() found them (only those whose subject is here).
  for (const auto& [tag, desc] : contents.attachments) {
    auto it = parsed.find(desc.digest);
    if (it == parsed.end()) continue;  // unreadable: an integrity problem, reported there
    if (tag.suffix == "sbom") sboms[tag.subject].push_back(desc.digest);
    else if (is_cosign_signature_manifest(it->second.second)) cosign_signatures[tag.subject].push_back({desc, it->second.second});
  }
  // A manifest's signatures under one statement are verified once, however many roots'
  // graphs hold it (a hostile bundle's thousand indexes sharing signed children cost no more).
  using Key = std::tuple<Digest, std::string, decltype(Descriptor::size), const TrustPolicyStatement*>;
  std::map<Key, std::pair<std::vector<SignatureVerdict>, bool>> done;
  auto signatures_of = [&](const Descriptor& subject, const TrustPolicyStatement& statement, bool& verified) {
    Key key{subject.digest, subject.media_type, subject.size, &statement};
    auto it = done.find(key);
    if (it == done.end()) {
      bool ok = false;
      auto sigs = verify_signatures_of(bundle, subject, signatures, statement, options, ok);
      it = done.emplace(key, std::make_pair(std::move(sigs), ok)).first;
    }
    verified = it->second.second;
    return it->second.first;
  };
  std::map<Digest, std::pair<std::vector<SignatureVerdict>, bool>> cosign_done;
  auto cosign_of = [&](const Descriptor& subject, bool& verified) {
    auto it = cosign_done.find(subject.digest);
    if (it == cosign_done.end()) {
      bool ok = false;
      auto sigs = verify_cosign_of(bundle, subject, cosign_signatures, options, ok);
      it = cosign_done.emplace(subject.digest, std::make_pair(std::move(sigs), ok)).first;
    }
    verified = it->second.second;
    return it->second.first;
  };
  const bool want_notation = options.policy.has_value();
  const bool want_cosign = options.cosign.has_value();
  auto required = [&](SignatureKind k) {
    return std::find(options.require.begin(), options.require.end(), k) != options.require.end();
  };
  // Whether an artifact passes, from each kind's outcome (given, passed, why not), and why not.
  auto combine = [&](const KindOutcome& notation, const KindOutcome& cosign, std::string& reason) {
    std::vector<const KindOutcome*> given;
    if (notation.given) given.push_back(&notation);
    if (cosign.given) given.push_back(&cosign);
    bool ok;
    if (!options.require.empty()) {
      ok = (!required(SignatureKind::notation) || notation.ok) && (!required(SignatureKind::cosign) || cosign.ok);
    } else {
      ok = std::any_of(given.begin(), given.end(), [](const KindOutcome* k) { return k->ok; });
    }
    reason.clear();
    if (ok) return true;
    for (const auto* k : given) {
      if (k->ok) continue;
      bool counts = options.require.empty() || required(k == &notation ? SignatureKind::notation : SignatureKind::cosign);
      if (!counts) continue;
      std::string part = given.size() > 1 ? std::string(k == &notation ? "notation: " : "cosign: ") + k->reason : k->reason;
      reason += (reason.empty() ? "" : "; ") + part;
    }
    return false;
  };
  for (const auto& root : contents.roots) {
    const Descriptor& e = root.desc;
    ArtifactVerdict a = describe_root(root);
    a.referrers = referrers_of(e, parsed, referrers, signatures, cosign_signatures, sboms);
    KindOutcome notation, cosign;
    std::vector<KindOutcome> ref_notation(a.referrers.size()), ref_cosign(a.referrers.size());
    if (want_notation) {
      notation.given = true;
      for (auto& r : ref_notation) r.given = true;
      // What keeps the root's signatures from being checked keeps its referrers' too.
      auto unchecked = [&](const std::string& why) {
        notation.reason = why;
        for (auto& r : ref_notation) r.reason = "not checked: " + why + " (its root's)";
      };
      const TrustPolicyStatement* statement = nullptr;
      if (a.scope.empty()) unchecked("no repository is known for this artifact: give --scope to select a trust policy");
      else if (!(statement = options.policy->applicable(a.scope)))
        unchecked("no applicable trust policy statement for \"" + a.scope + "\"");
      if (statement) {
        a.policy = statement->name;
        a.level = statement->verification.level;
        if (a.level == Level::skip) {
          notation.ok = true;
          for (auto& r : ref_notation) r.ok = true;
        } else {
          auto sigs = signatures_of(e, *statement, notation.ok);
          if (sigs.empty()) notation.reason = "no signature is associated with \"" + a.reference + "\"";
          else if (!notation.ok) notation.reason = none_verified(sigs);
          a.signatures.insert(a.signatures.end(), sigs.begin(), sigs.end());
          // Every other signature of the root's graph, under the root's statement.
          for (std::size_t i = 0; i < a.referrers.size(); ++i) {
            auto& r = a.referrers[i];
            auto rs = signatures_of(r.desc, *statement, ref_notation[i].ok);
            if (rs.empty()) ref_notation[i].reason = "no signature is associated with it";
            else if (!ref_notation[i].ok) ref_notation[i].reason = none_verified(rs);
            r.signatures.insert(r.signatures.end(), rs.begin(), rs.end());
          }
        }
      }
    }
    if (want_cosign) {
      cosign.given = true;
      auto sigs = cosign_of(e, cosign.ok);
      if (sigs.empty()) cosign.reason = "no cosign signature is associated with \"" + a.reference + "\"";
      else if (!cosign.ok) cosign.reason = none_verified(sigs);
      a.signatures.insert(a.signatures.end(), sigs.begin(), sigs.end());
      for (std::size_t i = 0; i < a.referrers.size(); ++i) {
        auto& r = a.referrers[i];
        ref_cosign[i].given = true;
        auto rs = cosign_of(r.desc, ref_cosign[i].ok);
        if (rs.empty()) ref_cosign[i].reason = "no cosign signature is associated with it";
        else if (!ref_cosign[i].ok) ref_cosign[i].reason = none_verified(rs);
        r.signatures.insert(r.signatures.end(), rs.begin(), rs.end());
      }
    }
    a.verified = combine(notation, cosign, a.reason);
    for (std::size_t i = 0; i < a.referrers.size(); ++i)
      a.referrers[i].verified = combine(ref_notation[i], ref_cosign[i], a.referrers[i].reason);
    if (options.require_referrer_signatures && a.verified)
      for (const auto& r : a.referrers)
        if (!r.verified) {
          a.verified = false;
          a.reason = (r.subject ? "referrer " : "manifest ") + r.desc.digest.str() +
                     (r.artifact_type.empty() ? "" : " (" + r.artifact_type + ")") + " is not verified: " + r.reason +
                     " (--require-referrer-signatures)";
          break;
        }
    report.artifacts.push_back(std::move(a));
  }
  // A signature vouches for the digests it names, not for damaged or missing bytes: when
  // the bundle's integrity failed, nothing in it is verified, whatever its signatures say.
  if (!intact) {
    const std::string why = "the bundle failed its integrity check (see the integrity problems)";
    for (auto& a : report.artifacts) {
      if (a.verified) a.reason = "its trust policy checks passed, but " + why;
      a.verified = false;
      for (auto& r : a.referrers) {
        if (r.verified) r.reason = "its trust policy checks passed, but " + why;
        r.verified = false;
      }
    }
  }
  report.verified = intact && !report.artifacts.empty() &&
                    std::all_of(report.artifacts.begin(), report.artifacts.end(),
                                [](const ArtifactVerdict& a) { return a.verified; });
  return report;
}

} // namespace ferry::verify

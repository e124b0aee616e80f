#pragma once
/// `ferry verify`: integrity, then each root's Notary Project signatures against the trust
/// policy, in notation's order (../shared/notation/SPEC.md §6): integrity → authenticity →
/// trusted identity → expiry → authentic timestamp → revocation. Results are data.
#include <ferry/bundle.hpp>
#include <ferry/manifest.hpp>
#include <ferry/verify/check.hpp>
#include <ferry/verify/cosign.hpp>
#include <ferry/verify/integrity.hpp>
#include <ferry/verify/revocation.hpp>
#include <ferry/verify/trust_policy.hpp>
#include <ferry/verify/trust_store.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ferry::verify {

struct SignatureVerdict {
  Descriptor manifest;  ///< the signature manifest (a Sigstore bundle referrer, a cosign `.sig`/`.att`)
  std::string envelope_media_type;  ///< the media type of the layer verified
  /// "notation" or "cosign".
  std::string kind = "notation";
  /// cosign: "sigstore-bundle", "cosign-sig", "cosign-att" (cosign::Verdict::format) and
  /// what was signed (cosign::Verdict::detail).
  std::string format;
  std::string detail;
  /// cosign: the manifest layer this signature is (a `.sig` holds one signature per layer).
  std::optional<std::size_t> layer;
  /// cosign: the identity (keyless) or key name (keyed) that verified or was found.
  std::string signer;
  std::optional<TimePoint> signing_time;
  bool verified = false;
  std::string reason;  ///< the enforced failure, when not verified
  std::vector<Check> checks;
};

/// A manifest of a root's graph, other than the root, that has a verdict of its own: a
/// referrer that is not a signature (an SBOM, an attestation, at any depth: the SBOM of a
/// platform manifest, the attestation of an SBOM), or any other manifest that carries
/// signatures of its own (a platform manifest signed besides its index). Checked against
/// its root's trust policy statement (the same scope).
struct ReferrerVerdict {
  Descriptor desc;
  std::string artifact_type;
  /// The manifest it refers to; none for a manifest reached through its root's manifests.
  std::optional<Digest> subject;
  bool verified = false;
  std::string reason;  ///< why not verified ("no signature is associated with it", ...)
  std::vector<SignatureVerdict> signatures;
};

struct ArtifactVerdict {
  std::string reference;
  Descriptor desc;
  std::string scope;  ///< the repository the statement was chosen for, normalised (Reference::normalise_scope)
  std::optional<std::string> policy;
  Level level = Level::strict;
  /// Its own signatures satisfy the statement, the bundle's integrity held, and (with
  /// VerifyOptions::require_referrer_signatures) every referrer verified too.
  bool verified = false;
  std::string reason;
  std::vector<SignatureVerdict> signatures;
  /// False with integrity_only: every root is listed, `verified` is the bundle's integrity
  /// and no signature was checked.
  bool signatures_checked = true;
  /// Referrers and other signed manifests of its graph, each with its own verdict
  /// (in the order a walk from the root meets them).
  std::vector<ReferrerVerdict> referrers;
};

/// The kinds of signature verify checks (issue 15).
enum class SignatureKind { notation, cosign };
const char* signature_kind_name(SignatureKind k);

struct VerifyOptions {
  /// Notation's trust policy; absent with integrity_only, or when only cosign material is given.
  std::optional<TrustPolicyDocument> policy;
  std::optional<TrustStore> trust_store;
  CrlSet crls;
  /// Overrides each root's repository for policy scope matching; normalised like a recorded one.
  std::optional<std::string> scope;
  bool integrity_only = false;
  TimePoint now{};
  /// notation-go tries at most this many signatures per artifact.
  std::size_t max_signatures = 100;
  /// A referrer that is unsigned or whose signatures fail fails its root (and the bundle);
  /// otherwise it is reported, not fatal (as notation for artifacts it was not asked about).
  bool require_referrer_signatures = false;
  /// cosign / Sigstore verification (--trusted-root, --cosign-key, identity flags); absent
  /// when no cosign material was given.
  std::optional<cosign::Policy> cosign;
  /// `--require`: the kinds whose signatures must each verify for an artifact to pass.
  /// Empty: any one of the kinds given (Notation when `policy` is set, cosign when `cosign` is).
  std::vector<SignatureKind> require;
};

/// Accounts for a delta bundle's left-out blobs (issue 16: verify --base, --base-inventory,
/// --against; push: its destination): adds a problem for each one the base does not hold,
/// and returns what was checked against, for the report.
using DeltaBaseCheck = std::function<std::string(const DeltaRecord& delta, ProblemList& problems)>;

struct VerifyReport {
  std::filesystem::path bundle;
  BundleFormat format = BundleFormat::dir;
  TimePoint time{};
  bool verified = false;
  std::size_t blobs = 0;
  std::uint64_t bytes = 0;
  /// BundleScan::index_digest: the bundle's identity in the auditor's record.
  std::optional<Digest> bundle_digest;
  ProblemList problems;
  std::vector<ArtifactVerdict> artifacts;
  std::vector<CrlInfo> crls;
  /// A delta bundle's record, and what its left-out blobs were checked against (empty: not).
  std::optional<DeltaRecord> delta;
  std::string delta_base;
};

/// Verifies a bundle opened at ReadDepth::verify (its one scan hashed every blob): the
/// graph, then every root's signatures and those of every referrer in its graph. No
/// artifact is verified when the bundle's integrity failed. Throws when the bundle's roots cannot be defined
/// (classify); every other failure is in the report.
/// `scope_of`, when given, names the repository whose trust policy statement applies to a
/// root (push --verify: the repository it lands in); it takes precedence over
/// `options.scope` and the root's recorded source.
/// `delta_base` accounts for a delta bundle's left-out blobs; absent, a delta bundle fails
/// with its left-out blobs unchecked.
VerifyReport verify_bundle(LayoutReader& bundle, const VerifyOptions& options,
                           const std::function<std::string(const BundleRoot&)>& scope_of = {},
                           const DeltaBaseCheck& delta_base = {});

/// One signature of `subject`, given its manifest and envelope bytes (exposed for tests).
SignatureVerdict verify_signature(const Descriptor& subject, const Descriptor& manifest_desc, const Manifest& manifest,
                                  const std::string* envelope, const TrustPolicyStatement& statement,
                                  const VerifyOptions& options);

} // namespace ferry::verify

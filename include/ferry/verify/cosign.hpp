#pragma once
/// cosign / Sigstore signatures of one image, verified offline as cosign v3 decides
/// (issue 15): Sigstore bundles v0.1–v0.3 (DSSE in-toto statements and message signatures),
/// legacy `.sig` layers (simple signing) and `.att` layers (DSSE in-toto), keyless (Fulcio
/// certificate + identity) or keyed (--cosign-key). Where sigstore-js is looser than cosign,
/// cosign's verdict: an identity matches exactly (the regexp flags match like Go's
/// regexp.MatchString: unanchored); an inclusion proof whose root differs from the signed
/// checkpoint's fails.
///
/// Every function here is pure: the bytes in, a verdict out; the clock is `now`, used only
/// where cosign uses the current time (--insecure-ignore-tlog without signed timestamps).
#include <ferry/descriptor.hpp>
#include <ferry/media_type.hpp>
#include <ferry/verify/check.hpp>
#include <ferry/verify/sigstore.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::verify::cosign {

inline constexpr std::string_view k_bundle_v03 = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Accepted Sigstore bundle media types (v0.1, v0.2, v0.3; "+json;version=0.x" forms too).
bool is_bundle_media_type(std::string_view mt);
/// The older cosign artifact type for a bundle referrer.
inline constexpr std::string_view k_cosign_sig_artifact = media_type::k_cosign_artifact_sig;
inline constexpr std::string_view k_simple_signing = media_type::k_cosign_simple_signing;
inline constexpr std::string_view k_dsse_envelope = media_type::k_dsse_envelope;
inline constexpr std::string_view k_intoto = "application/vnd.in-toto+json";
inline constexpr std::string_view k_annotation_signature = "dev.cosignproject.cosign/signature";
inline constexpr std::string_view k_annotation_certificate = "dev.sigstore.cosign/certificate";
inline constexpr std::string_view k_annotation_chain = "dev.sigstore.cosign/chain";
inline constexpr std::string_view k_annotation_bundle = "dev.sigstore.cosign/bundle";
inline constexpr std::string_view k_annotation_rfc3161 = "dev.sigstore.cosign/rfc3161timestamp";
/// Fulcio's OIDC issuer extensions: v2 (DER UTF8String) first, v1 (raw bytes) as fallback.
inline constexpr std::string_view k_oid_issuer_v2 = "1.3.6.1.4.1.57264.1.8";
inline constexpr std::string_view k_oid_issuer_v1 = "1.3.6.1.4.1.57264.1.1";

/// A public key given with --cosign-key, named for reports (its file name or title).
struct NamedKey {
  std::string name;
  std::shared_ptr<EVP_PKEY> key;
};

/// What cosign's identity, log and timestamp flags say, as data (also what a bundle's trust
/// material carries as `cosign/policy.json`, CosignIdentityPolicy).
struct PolicyFlags {
  std::string identity;          ///< --certificate-identity (exact SAN: email, URI, ...)
  std::string identity_regexp;   ///< --certificate-identity-regexp (ECMAScript std::regex, unanchored search)
  std::string issuer;            ///< --certificate-oidc-issuer (exact)
  std::string issuer_regexp;     ///< --certificate-oidc-issuer-regexp
  bool ignore_tlog = false;            ///< --insecure-ignore-tlog
  bool ignore_sct = false;             ///< --insecure-ignore-sct
  bool use_signed_timestamps = false;  ///< --use-signed-timestamps
  bool empty() const
  {
    return identity.empty() && identity_regexp.empty() && issuer.empty() && issuer_regexp.empty() && !ignore_tlog &&
           !ignore_sct && !use_signed_timestamps;
  }
  bool has_identity() const { return !identity.empty() || !identity_regexp.empty(); }
  bool has_issuer() const { return !issuer.empty() || !issuer_regexp.empty(); }
};

/// What cosign's flags say, as data: the flags and the trust material they refer to.
struct Policy : PolicyFlags {
  std::shared_ptr<const sigstore::TrustedRoot> trusted_root;  ///< --trusted-root
  /// --cosign-key: keyed verification (a signature passes with any one of them); empty: keyless.
  std::vector<NamedKey> keys;
  bool keyless() const { return keys.empty(); }
};

/// One cosign signature's verdict. Check names, each reported pass / fail / skipped
/// (skipped with the reason when it does not apply: "keyed signature", "--insecure-ignore-tlog"):
///  - format:      the bundle / layer parses (media type, required fields, base64, sizes)
///  - subject:     the in-toto statement's subject (sha256), the message digest, or the
///                 simple-signing critical.image.docker-manifest-digest names the image, and
///                 critical.type is "cosign container image signature"
///  - signature:   the signature verifies with the key (keyed) or the leaf certificate
///  - tlog:        the transparency log entries (SET, inclusion proof + checkpoint, body bound
///                 to this signature and verifier, integrated time within the leaf's validity);
///                 at least one required unless ignore_tlog
///  - timestamp:   RFC 3161 timestamps verified against the trusted root's TSAs (required
///                 with use_signed_timestamps; otherwise checked when present)
///  - certificate: keyless: the leaf chains to a certificate authority of the trusted root,
///                 at every trusted signing time (integrated time from a verified SET, or
///                 genTime of a verified timestamp; `now` only with ignore_tlog and no signed
///                 timestamps), within the authority's validFor and every certificate's validity
///  - sct:         keyless: an embedded SCT from a CT log of the trusted root (unless ignore_sct)
///  - identity:    keyless: SAN and OIDC issuer match the policy
///
/// `checks` always holds these eight, in this order. When `format` fails nothing else runs and
/// the seven others are "skipped" with the reason "not reached"; otherwise every check is
/// evaluated on its own evidence (a failed signature does not hide a wrong subject), so a
/// report shows every problem. `reason` is the first failed check in this order. `verified`
/// is true when no check failed and format, subject and signature passed.
/// Without --use-signed-timestamps, RFC 3161 timestamps are not used (cosign v3 configures
/// sigstore-go with integrated timestamps only): one that verifies is reported "pass", none
/// verifying is "skipped" with the reasons, never a failure; their genTime is then no
/// signing time.
struct Verdict {
  std::string format;  ///< "sigstore-bundle", "cosign-sig", "cosign-att"
  std::string detail;  ///< e.g. "DSSE https://sigstore.dev/cosign/sign/v1", "message signature", "simple signing"
  bool verified = false;
  std::string reason;  ///< the first failed check: "<check>: <reason>"
  std::vector<Check> checks;
  /// Keyless: "signer@example.test (issuer https://oidc.example.test)"; keyed: the key's name.
  std::string signer;
  std::optional<TimePoint> signing_time;  ///< the earliest trusted time, when there is one
};

/// A Sigstore bundle (the layer of a bundle referrer) over `image`. `image_bytes`, the
/// image manifest's bytes, are needed for a messageSignature bundle (its signature is over
/// them); without them such a bundle fails `signature`.
Verdict verify_bundle(std::string_view bundle_json, const Descriptor& image, const std::string* image_bytes,
                      const Policy& policy, TimePoint now);

/// One layer of a `.sig` manifest: `layer` carries the annotations (signature, certificate,
/// chain, Rekor bundle, RFC 3161 timestamp), `payload` the simple-signing JSON.
Verdict verify_simple_signing(const Descriptor& layer, std::string_view payload, const Descriptor& image,
                              const Policy& policy, TimePoint now);

/// One layer of a `.att` manifest: `envelope` is a DSSE envelope (JSON) whose in-toto
/// statement names the image; `layer` carries the optional certificate / Rekor bundle /
/// timestamp annotations as for `.sig`.
Verdict verify_attestation(const Descriptor& layer, std::string_view envelope, const Descriptor& image,
                           const Policy& policy, TimePoint now);

/// DSSE pre-authentication encoding: "DSSEv1 <len(type)> <type> <len(body)> <body>".
std::string pae(std::string_view payload_type, std::string_view payload);

/// The certificate's identity as cosign reads it: its SAN (the first URI or email, or
/// otherName) and OIDC issuer (57264.1.8, else .1.1); empty when absent.
std::string certificate_san(X509* cert);
std::string certificate_issuer(X509* cert);

} // namespace ferry::verify::cosign

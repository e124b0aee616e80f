#pragma once
/// `ferry sign`: Notary Project signatures made offline, as notation makes them
/// (../shared/notation/SPEC.md §1–§4), added to a bundle as referrers (design §3).
///
/// The pieces are usable on their own: a signing identity (key + chain), the JWS and COSE
/// envelopes, the signature manifest, an RFC 3161 timestamp client and the bundle rewrite.
#include <ferry/descriptor.hpp>
#include <ferry/ops.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/verify/openssl.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::remote {
class HttpClient;
}

namespace ferry::sign {

inline constexpr std::string_view k_thumbprint_annotation = "io.cncf.notary.x509chain.thumbprint#S256";
inline constexpr std::string_view k_created_annotation = "org.opencontainers.image.created";
/// The empty JSON object `{}` (image-spec v1.1 manifest.md §Guidance for an Empty Descriptor).
inline constexpr std::string_view k_empty_json = "{}";
inline constexpr std::string_view k_empty_json_digest =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

enum class EnvelopeFormat { jws, cose };
/// Parses "jws" / "cose"; throws Errc::invalid_argument.
EnvelopeFormat parse_envelope_format(std::string_view text);
/// The layer media type: application/jose+json or application/cose.
std::string_view envelope_media_type(EnvelopeFormat format);

/// A private key with its certificate chain (leaf first, to the root) and the algorithm the
/// key dictates (SPEC §4: RSA 2048/3072/4096 → PS256/384/512, EC P-256/384/521 → ES256/384/512).
struct SigningIdentity {
  verify::EvpPkeyPtr key;
  verify::Chain chain;
  std::string alg;    ///< "PS256", ...
  int hash_bits = 0;  ///< 256, 384, 512
};

/// Builds an identity from PEM text: `key_pem` an unencrypted private key (PKCS#8 or
/// traditional RSA/EC), `chain_pem` the certificates leaf first. Refuses a key that does not
/// match the leaf, a key spec notation does not support, and a chain that breaks notation's
/// code-signing rules (notation-core-go validates the chain when it signs). Errors
/// (Errc::invalid_argument) name `key_source` / `chain_source`.
SigningIdentity load_identity(std::string_view key_pem, std::string_view chain_pem, const std::string& key_source,
                              const std::string& chain_source);
/// load_identity from files; I/O errors name the file.
SigningIdentity load_identity_files(const std::filesystem::path& key_file, const std::filesystem::path& chain_file);

/// The raw primitive signature notation makes over `data` with `key` for `alg`: RSASSA-PSS
/// with MGF1 and salt length = hash length for PS*, ECDSA as fixed-width r||s for ES*
/// (SPEC §2, §3). Throws Errc::invalid_argument when key and alg do not fit.
std::string sign_raw(EVP_PKEY* key, std::string_view alg, std::string_view data);

/// Returns an RFC 3161 TimeStampToken (DER) over the primitive signature bytes.
using Timestamper = std::function<std::string(std::string_view signature)>;

/// What to sign and how.
struct EnvelopeRequest {
  /// The target; only mediaType, digest and size go into the payload.
  Descriptor target;
  verify::TimePoint signing_time{};
  std::optional<verify::TimePoint> expiry;
  std::string signing_agent;
  /// Countersigns the signature when set (io.cncf.notary.timestampSignature).
  Timestamper timestamper;
};

/// A signature envelope: its media type and exact bytes.
struct Envelope {
  std::string media_type;
  std::string bytes;
};

/// The notary payload `{"targetArtifact":{...}}` in the key order notation writes: sorted
/// (digest, mediaType, size) for JWS, whose payload golang-jwt re-marshals from a map;
/// struct order (mediaType, digest, size) for COSE.
std::string payload_json(const Descriptor& target, EnvelopeFormat format);

/// A JWS envelope in the flattened JSON serialization, byte-compatible with
/// notation-core-go signature/jws: protected header keys sorted (alg, crit, cty,
/// io.cncf.notary.expiry, io.cncf.notary.signingScheme, io.cncf.notary.signingTime; scheme
/// notary.x509, RFC 3339 UTC times), unprotected header in notation's field order
/// (io.cncf.notary.timestampSignature, x5c, io.cncf.notary.signingAgent), top level
/// payload, protected, header, signature; base64url without padding.
Envelope make_jws(const SigningIdentity& id, const EnvelopeRequest& request);

/// A COSE_Sign1_Tagged envelope as notation-core-go signature/cose (go-cose) writes it:
/// protected {1: alg, 2: crit, 3: cty, signingScheme, signingTime/expiry as tag-1 epoch},
/// unprotected {33: [x5chain bstr...], signingAgent, timestampSignature}; map keys in
/// length-first canonical order; signature over ["Signature1", protected, h'', payload].
Envelope make_cose(const SigningIdentity& id, const EnvelopeRequest& request);

Envelope make_envelope(EnvelopeFormat format, const SigningIdentity& id, const EnvelopeRequest& request);

/// A signature manifest with its descriptor.
struct SignatureManifest {
  Descriptor desc;  ///< as listed in index.json: with artifactType and the manifest's annotations
  std::string bytes;
  Descriptor envelope;  ///< the single layer
};

/// The OCI 1.1 signature manifest notation-go writes through oras-go PackManifest (1.1):
/// `artifactType: application/vnd.cncf.notary.signature`, config = the empty descriptor
/// (with `"data":"e30="`), one layer (the envelope), `subject` = mediaType/digest/size of
/// `subject`, annotations `io.cncf.notary.x509chain.thumbprint#S256` (JSON array of the
/// chain's lower-case hex SHA-256) and `org.opencontainers.image.created` (signing time).
SignatureManifest make_signature_manifest(const Descriptor& subject, const Envelope& envelope,
                                          const verify::Chain& chain, verify::TimePoint signing_time);

/// A Go duration (`1h30m`, `90s`, `1.5h`; units ns us µs ms s m h) or a number of days
/// (`7d`, also combined: `1d12h`), as notation's --expiry accepts; whole seconds, > 0.
/// Throws Errc::invalid_argument.
std::chrono::seconds parse_duration(std::string_view text);

/// Asks the TSA at `url` for a timestamp over `signature` (RFC 3161: SHA-256 imprint of the
/// signature bytes, certReq true, a random nonce; POST application/timestamp-query), checks
/// the response (status granted or grantedWithMods, nonce and imprint echoed) and verifies the
/// token as `ferry verify` will (verify::verify_timestamp against `tsa_roots`, signing chain
/// valid at genTime, no CRLs: a TSA certificate that names a CRL or OCSP location fails).
/// Returns the TimeStampToken DER. Throws Errc::network / Errc::verification_failed naming
/// the URL.
std::string request_timestamp(remote::HttpClient& http, const std::string& url, std::string_view signature,
                              const verify::Chain& tsa_roots, const verify::Chain& signing_chain,
                              verify::TimePoint now);

struct SignOptions {
  std::filesystem::path bundle;
  std::optional<BundleFormat> format;
  /// Roots to sign: a source reference (`io.containerd.image.name`), a tag or a digest;
  /// every root when empty.
  std::vector<std::string> references;
  std::filesystem::path key_file;
  std::filesystem::path cert_file;
  EnvelopeFormat envelope = EnvelopeFormat::jws;
  std::optional<std::chrono::seconds> expiry;
  std::string signing_agent = "ferry";
  /// RFC 3161 TSA URL; requires `tsa_ca_file` (PEM roots the token must chain to).
  std::string timestamp_url;
  std::filesystem::path tsa_ca_file;
  /// Transport for the TSA request; a CurlHttpClient when null.
  remote::HttpClient* http = nullptr;
  /// Signing time; the clock (truncated to seconds) when unset.
  std::optional<verify::TimePoint> time;
  /// Bounds on the bundle read (design §8).
  BundleLimits limits;
};

struct SignResult {
  std::filesystem::path bundle;
  BundleFormat format = BundleFormat::dir;
  struct Signed {
    std::string reference;  ///< the root's source reference, else its tag, else its digest
    Descriptor subject;
    Descriptor signature;   ///< the signature manifest
    Descriptor envelope;
    bool timestamped = false;
  };
  std::vector<Signed> signatures;
  std::string alg;
  verify::TimePoint signing_time{};
  std::optional<verify::TimePoint> expiry;
};

/// Signs roots of a bundle and rewrites it atomically (`BUNDLE.partial`, fsync, rename):
/// everything of the old bundle copied byte for byte in its order, each new signature
/// manifest after the old manifests and its envelope (and the empty config blob, if new)
/// before the other blobs (design §3 order), each listed untagged in index.json with
/// artifactType and annotations (as oras/notation list them). On failure the original is
/// untouched. Throws Errc::not_found for a REF matching no root.
SignResult sign_bundle(const SignOptions& options, const Logger& log);

} // namespace ferry::sign

#pragma once
/// Notary Project signature envelopes: JWS (application/jose+json) and COSE_Sign1
/// (application/cose) — ../shared/notation/SPEC.md §2, §3, and the integrity step of §6.
#include <ferry/descriptor.hpp>
#include <ferry/error.hpp>
#include <ferry/verify/openssl.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ferry::verify {

inline constexpr std::string_view k_media_type_jws = "application/jose+json";
inline constexpr std::string_view k_media_type_cose = "application/cose";
inline constexpr std::string_view k_payload_content_type = "application/vnd.cncf.notary.payload.v1+json";

// Notary Project header names (JWS protected/unprotected headers, COSE labels).
inline constexpr std::string_view k_signing_scheme = "io.cncf.notary.signingScheme";
inline constexpr std::string_view k_signing_time = "io.cncf.notary.signingTime";
inline constexpr std::string_view k_authentic_signing_time = "io.cncf.notary.authenticSigningTime";
inline constexpr std::string_view k_expiry = "io.cncf.notary.expiry";
inline constexpr std::string_view k_verification_plugin = "io.cncf.notary.verificationPlugin";
inline constexpr std::string_view k_verification_plugin_min_version = "io.cncf.notary.verificationPluginMinVersion";
inline constexpr std::string_view k_timestamp_signature = "io.cncf.notary.timestampSignature";
inline constexpr std::string_view k_signing_agent = "io.cncf.notary.signingAgent";

enum class SigningScheme { x509, x509_signing_authority };

/// What a verified envelope says.
struct SignerInfo {
  std::string envelope_media_type;
  std::string alg;  ///< "PS256", ..., equal to the leaf key's spec
  SigningScheme scheme = SigningScheme::x509;
  std::optional<TimePoint> signing_time;             ///< notary.x509
  std::optional<TimePoint> authentic_signing_time;   ///< notary.x509.signingAuthority
  std::optional<TimePoint> expiry;
  Chain chain;                   ///< x5c / x5chain, leaf first
  std::string signature;         ///< the raw primitive signature bytes (timestamp imprint input)
  std::string timestamp_token;   ///< RFC 3161 TimeStampToken (DER/BER), empty when none
  std::string payload;           ///< the payload bytes (JSON)
  std::string signing_agent;
  std::string verification_plugin;              ///< io.cncf.notary.verificationPlugin, if any
  std::string verification_plugin_min_version;
  /// Critical extended attributes ferry does not know (listed in `crit`, present, not one of
  /// the Notary headers). notation-go accepts them; the spec says they MUST fail.
  std::vector<std::string> unknown_critical;
};

/// The integrity step's failure: the envelope is malformed, its signature does not verify,
/// its signed attributes or chain break Notation's rules. `what()` is the reason.
/// A signature that fails notation's integrity check: a ferry::Error with
/// Errc::verification_failed. `stage()` tells an envelope that could not be parsed at all
/// (notation-core-go ParseEnvelope: an unsupported media type, the JWS JSON, the COSE_Sign1
/// CBOR and its header maps), which notation words "unable to parse the digital signature,
/// error : ..." (ngo:verifier/verifier.go verifyIntegrity), from one that was parsed and
/// failed to verify.
class IntegrityError : public Error {
public:
  enum class Stage { parse, verify };
  explicit IntegrityError(const std::string& message, Stage stage = Stage::verify)
    : Error(Errc::verification_failed, message), m_stage(stage)
  {
  }
  Stage stage() const { return m_stage; }

private:
  Stage m_stage;
};

/// Parses the envelope selected by `media_type` (JWS or COSE; anything else is an
/// IntegrityError "signature envelope format with media type ... is not supported"),
/// verifies the primitive signature with the leaf key, and validates the signed attributes,
/// the critical-header rules, the chain (validate_code_signing_chain), alg == key spec and
/// the payload content type. Throws IntegrityError.
SignerInfo verify_envelope(std::string_view media_type, std::string_view envelope);

/// The payload's `targetArtifact` descriptor; throws IntegrityError when the payload is
/// not `{"targetArtifact": descriptor}` with mediaType, digest and size.
Descriptor parse_payload_target(const std::string& payload);

/// The JWS (application/jose+json, flattened JSON serialization) half of verify_envelope
/// (SPEC §2). Throws IntegrityError.
SignerInfo verify_jws(std::string_view envelope);

/// The COSE_Sign1_Tagged (application/cose) half of verify_envelope (SPEC §3). Throws
/// IntegrityError.
SignerInfo verify_cose(std::string_view envelope);

namespace detail {

/// The attribute checks JWS and COSE share, run after the format-specific parsing
/// (notation-core-go signature/internal/base validateEnvelopeContent, then notation-go
/// ValidatePayloadContentType): payload present, signature present, signing time present,
/// expiry after signing time, chain valid (validate_code_signing_chain), alg equal to the
/// leaf key spec, payload content type. Throws IntegrityError.
void validate_signer_info(const SignerInfo& info, std::string_view content_type);

/// Verifies a raw primitive signature (`sig`: RSASSA-PSS bytes or fixed-width r||s for
/// ECDSA) over `data` with `key` for the JOSE algorithm name `alg` ("PS256" ... "ES512").
/// `pss_salt_auto`: RSA-PSS salt length recovered from the signature (JWS, golang-jwt) rather
/// than fixed to the hash length (COSE, RFC 8230). Returns "" on success, else the reason.
std::string verify_signature(EVP_PKEY* key, std::string_view alg, std::string_view data, std::string_view sig,
                             bool pss_salt_auto);

} // namespace detail

} // namespace ferry::verify

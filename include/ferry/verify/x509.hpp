#pragma once
/// Notation's certificate rules (../shared/notation/SPEC.md §4; notation-core-go x509/).
/// The chain is exactly the envelope's, leaf first; no path building.
#include <ferry/verify/openssl.hpp>

#include <cstddef>
#include <optional>
#include <string>

namespace ferry::verify {

/// The signature algorithm a key dictates: RSA 2048/3072/4096 → PS256/PS384/PS512;
/// EC P-256/P-384/P-521 → ES256/ES384/ES512.
struct KeySpec {
  std::string alg;  ///< "PS256", ...
  int hash_bits = 0;  ///< 256, 384, 512
};

/// The key spec of a certificate's public key; nullopt with `error` set ("rsa key size 1024
/// bits is not supported", ...) for anything else.
std::optional<KeySpec> key_spec(X509* cert, std::string* error);

/// The longest certificate chain accepted (envelope or TSA chain): OpenSSL's default
/// verification depth, far beyond any real PKI. A longer chain fails before any signature
/// check ("certificate chain is too long: ...").
inline constexpr std::size_t k_max_chain_length = 100;

/// Validates a code-signing chain structurally (SPEC §4): order leaf→root, each cert signed by
/// the next with matching issuer/subject, the last self-signed and self-issued, CA rules
/// (basicConstraints cA, pathLen, keyUsage critical with keyCertSign), leaf rules (keyUsage
/// critical with digitalSignature only among the listed bits, EKU restrictions, key spec).
/// At most k_max_chain_length certificates. No validity-period checks. Returns "" when
/// valid, else the reason.
std::string validate_code_signing_chain(const Chain& chain);

/// Same for a timestamping (TSA) chain: CA rules without the keyUsage criticality
/// requirement; the leaf has keyUsage digitalSignature and exactly one critical EKU,
/// id-kp-timeStamping.
std::string validate_timestamping_chain(const Chain& chain);

/// The per-certificate rules of validate_code_signing_chain / validate_timestamping_chain,
/// for one certificate in the leaf position or in a CA position whose pathLen must be at
/// least `expected_path_len` (= its index in the chain - 1). "" when valid, else the reason.
std::string validate_code_signing_leaf(X509* cert);
std::string validate_code_signing_ca(X509* cert, int expected_path_len);
std::string validate_timestamping_leaf(X509* cert);
std::string validate_timestamping_ca(X509* cert, int expected_path_len);

/// True when the DER encodings are identical.
bool der_equal(X509* a, X509* b);

/// True when `cert` is self-signed (its signature verifies with its own key) and
/// self-issued (subject == issuer).
bool is_self_signed(X509* cert);

/// True when cert is a CA (basicConstraints cA=true).
bool is_ca(X509* cert);

} // namespace ferry::verify

// Envelope dispatch, payload parsing and the attribute checks JWS and COSE share.
// Reference: ../shared/notation/SPEC.md §1.3, §2, §3, §4, §6 step 1; notation-core-go
// signature/envelope.go ParseEnvelope, signature/internal/base/envelope.go;
// notation-go internal/envelope ValidatePayloadContentType.
#include <ferry/verify/envelope.hpp>

#include <ferry/error.hpp>
#include <ferry/verify/x509.hpp>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include <nlohmann/json.hpp>

namespace ferry::verify {

namespace {

struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
struct BignumFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigFree>;
using BignumPtr = std::unique_ptr<BIGNUM, BignumFree>;

const EVP_MD* digest_for(std::string_view alg)
{
  if (alg == "PS256" || alg == "ES256") return EVP_sha256();
  if (alg == "PS384" || alg == "ES384") return EVP_sha384();
  if (alg == "PS512" || alg == "ES512") return EVP_sha512();
  return nullptr;
}

/// Raw fixed-width r||s → DER ECDSA-Sig-Value; "" when the halves do not parse.
std::string ecdsa_raw_to_der(std::string_view sig)
{
  std::size_t half = sig.size() / 2;
  auto p = reinterpret_cast<const unsigned char*>(sig.data());
  BignumPtr r(BN_bin2bn(p, static_cast<int>(half), nullptr));
  BignumPtr s(BN_bin2bn(p + half, static_cast<int>(half), nullptr));
  if (!r || !s) return {};
  EcdsaSigPtr es(ECDSA_SIG_new());
  if (!es || ECDSA_SIG_set0(es.get(), r.get(), s.get()) != 1) return {};
  r.release();
  s.release();
  unsigned char* der = nullptr;
  int n = i2d_ECDSA_SIG(es.get(), &der);
  if (n <= 0) return {};
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

} // namespace

namespace detail {

std::string verify_signature(EVP_PKEY* key, std::string_view alg, std::string_view data, std::string_view sig,
                             bool pss_salt_auto)
{
  const EVP_MD* md = digest_for(alg);
  if (!md || !key) return "signature algorithm \"" + std::string(alg) + "\" is not supported";
  bool rsa = alg[0] == 'P';
  int key_type = EVP_PKEY_get_base_id(key);
  if (rsa && key_type != EVP_PKEY_RSA) return "key is of invalid type";
  if (!rsa && key_type != EVP_PKEY_EC) return "key is of invalid type";

  std::string der;
  if (!rsa) {
    // JWS (RFC 7518 §3.4) and COSE (RFC 9053 §2.1): fixed-width r||s, each half the
    // byte length of the curve order. golang-jwt sizes it by the algorithm, go-cose by
    // the key; verification fails either way when they differ.
    int order_bytes = (EVP_PKEY_get_bits(key) + 7) / 8;
    if (sig.size() != static_cast<std::size_t>(2 * order_bytes)) return "crypto/ecdsa: verification error";
    der = ecdsa_raw_to_der(sig);
    if (der.empty()) return "crypto/ecdsa: verification error";
  }

  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1) {
    ERR_clear_error();
    return "unable to initialise signature verification";
  }
  if (rsa) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt_auto ? RSA_PSS_SALTLEN_AUTO : RSA_PSS_SALTLEN_DIGEST) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1) {
      ERR_clear_error();
      return "unable to initialise RSA-PSS verification";
    }
  }
  const std::string_view s = rsa ? sig : std::string_view(der);
  int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                            reinterpret_cast<const unsigned char*>(data.data()), data.size());
  ERR_clear_error();
  if (rc == 1) return "";
  return rsa ? "crypto/rsa: verification error" : "crypto/ecdsa: verification error";
}

void validate_signer_info(const SignerInfo& info, std::string_view content_type)
{
  // notation-core-go base.validateEnvelopeContent → validatePayload, validateSignerInfo.
  if (info.payload.empty()) throw IntegrityError("content not present");
  if (info.signature.empty()) throw IntegrityError("signature not present or is empty");
  if (info.alg.empty()) throw IntegrityError("SignatureAlgorithm is not present");
  std::optional<TimePoint> signing_time =
      info.scheme == SigningScheme::x509 ? info.signing_time : info.authentic_signing_time;
  if (!signing_time) throw IntegrityError("signing-time not present");
  if (info.expiry && *info.expiry <= *signing_time)
    throw IntegrityError("expiry cannot be equal or before the signing time");
  // validateCertificateChain (signing time nil: no validity-period check here).
  if (info.chain.empty()) throw IntegrityError("certificate-chain not present or is empty");
  if (std::string e = validate_code_signing_chain(info.chain); !e.empty())
    throw IntegrityError("certificate-chain is invalid, " + e);
  std::string err;
  auto spec = key_spec(info.chain[0].get(), &err);
  if (!spec) throw IntegrityError(err);
  if (spec->alg != info.alg)
    throw IntegrityError("mismatch between signature algorithm derived from signing certificate (" + spec->alg +
                         ") and signing algorithm specified (" + info.alg + ")");
  // notation-go internal/envelope ValidatePayloadContentType.
  if (content_type != k_payload_content_type)
    throw IntegrityError("payload content type \"" + std::string(content_type) + "\" not supported");
}

} // namespace detail

SignerInfo verify_envelope(std::string_view media_type, std::string_view envelope)
{
  // notation-core-go signature.ParseEnvelope: the layer media type alone picks the format.
  if (media_type == k_media_type_jws) return verify_jws(envelope);
  if (media_type == k_media_type_cose) return verify_cose(envelope);
  throw IntegrityError("signature envelope format with media type \"" + std::string(media_type) + "\" is not supported",
                       IntegrityError::Stage::parse);
}

Descriptor parse_payload_target(const std::string& payload)
{
  // Reference: notary signature-specification §Payload; SPEC.md §1.3.
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(payload);
  } catch (const nlohmann::json::exception& e) {
    throw IntegrityError(std::string("signature payload is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw IntegrityError("signature payload is not a JSON object");
  auto it = j.find("targetArtifact");
  if (it == j.end() || !it->is_object()) throw IntegrityError("signature payload has no \"targetArtifact\" descriptor");
  try {
    return Descriptor::from_json(*it, "signature payload targetArtifact");
  } catch (const Error& e) {
    throw IntegrityError(e.what());
  }
}

} // namespace ferry::verify

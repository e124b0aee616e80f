// Notation's certificate-chain rules, after notation-core-go x509/ (helper.go,
// codesigning_cert_validations.go, timestamp_cert_validations.go) and Go's
// crypto/x509 CheckSignatureFrom. Reference: ../shared/notation/SPEC.md §4.
#include <ferry/verify/x509.hpp>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/x509v3.h>

#include <memory>

namespace ferry::verify {

namespace {

struct BasicConstraintsFree {
  void operator()(BASIC_CONSTRAINTS* p) const { BASIC_CONSTRAINTS_free(p); }
};
struct EkuFree {
  void operator()(EXTENDED_KEY_USAGE* p) const { sk_ASN1_OBJECT_pop_free(p, ASN1_OBJECT_free); }
};
using BasicConstraintsPtr = std::unique_ptr<BASIC_CONSTRAINTS, BasicConstraintsFree>;
using EkuPtr = std::unique_ptr<EXTENDED_KEY_USAGE, EkuFree>;

std::string quoted_subject(X509* cert) { return "\"" + subject_for_display(cert) + "\""; }

/// Basic constraints as Go sees them (BasicConstraintsValid, IsCA, MaxPathLen).
struct Constraints {
  bool present = false;
  bool ca = false;
  long path_len = -1;  ///< -1 when absent
};

Constraints basic_constraints(X509* cert)
{
  Constraints out;
  int crit = 0;
  BasicConstraintsPtr bc(static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &crit, nullptr)));
  ERR_clear_error();
  if (!bc) return out;
  out.present = true;
  out.ca = bc->ca != 0;
  if (bc->pathlen) out.path_len = ASN1_INTEGER_get(bc->pathlen);
  return out;
}

/// Key usage: present?, critical?, bits (OpenSSL KU_* flags).
struct KeyUsage {
  bool present = false;
  bool critical = false;
  std::uint32_t bits = 0;
};

KeyUsage key_usage(X509* cert)
{
  KeyUsage out;
  int pos = X509_get_ext_by_NID(cert, NID_key_usage, -1);
  if (pos < 0) return out;
  out.present = true;
  out.critical = X509_EXTENSION_get_critical(X509_get_ext(cert, pos)) != 0;
  std::uint32_t ku = X509_get_key_usage(cert);
  out.bits = ku == UINT32_MAX ? 0 : ku;
  return out;
}

/// The EKU OIDs as NIDs (NID_undef for unknown OIDs), in order; `critical` set.
std::vector<int> ext_key_usages(X509* cert, bool* present, bool* critical)
{
  std::vector<int> out;
  *present = false;
  *critical = false;
  int pos = X509_get_ext_by_NID(cert, NID_ext_key_usage, -1);
  if (pos < 0) return out;
  *present = true;
  *critical = X509_EXTENSION_get_critical(X509_get_ext(cert, pos)) != 0;
  EkuPtr eku(static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
  ERR_clear_error();
  if (!eku) return out;
  for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) out.push_back(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), i)));
  return out;
}

/// Go's Certificate.CheckSignature: the signature of `cert` verifies with `key`, with a
/// digest Go accepts (SHA-1 and MD5 are refused as insecure). "" on success.
std::string check_signature(X509* cert, EVP_PKEY* key)
{
  int md_nid = NID_undef, pk_nid = NID_undef;
  if (!X509_get_signature_info(cert, &md_nid, &pk_nid, nullptr, nullptr)) {
    ERR_clear_error();
    return "x509: cannot verify signature: algorithm unimplemented";
  }
  if (md_nid == NID_sha1 || md_nid == NID_md5 || md_nid == NID_md5_sha1 || md_nid == NID_md4 || md_nid == NID_md2)
    return std::string("x509: cannot verify signature: insecure algorithm ") + OBJ_nid2sn(X509_get_signature_nid(cert));
  bool digest_ok = md_nid == NID_sha256 || md_nid == NID_sha384 || md_nid == NID_sha512 ||
                   (md_nid == NID_undef && pk_nid == NID_ED25519);
  if (!digest_ok) return "x509: cannot verify signature: algorithm unimplemented";
  int rc = X509_verify(cert, key);
  ERR_clear_error();
  if (rc == 1) return "";
  switch (EVP_PKEY_get_base_id(key)) {
  case EVP_PKEY_RSA:
  case EVP_PKEY_RSA_PSS: return "crypto/rsa: verification error";
  case EVP_PKEY_EC: return "x509: ECDSA verification failure";
  case EVP_PKEY_ED25519: return "x509: Ed25519 verification failure";
  default: return "x509: signature verification failure";
  }
}

/// Go's Certificate.CheckSignatureFrom(parent): parent constraints, then the signature.
std::string check_signature_from(X509* cert, X509* parent)
{
  Constraints bc = basic_constraints(parent);
  KeyUsage ku = key_usage(parent);
  bool v3 = X509_get_version(parent) == 2;
  if ((v3 && !bc.present) || (bc.present && !bc.ca) || (ku.bits != 0 && !(ku.bits & KU_KEY_CERT_SIGN)))
    return "x509: invalid signature: parent certificate cannot sign this kind of certificate";
  EVP_PKEY* key = X509_get0_pubkey(parent);
  if (!key) {
    ERR_clear_error();
    return "x509: cannot verify signature: algorithm unimplemented";
  }
  return check_signature(cert, key);
}

bool same_name(X509_NAME* a, X509_NAME* b)
{
  const unsigned char* da = nullptr;
  const unsigned char* db = nullptr;
  size_t la = 0, lb = 0;
  if (!X509_NAME_get0_der(a, &da, &la) || !X509_NAME_get0_der(b, &db, &lb)) return false;
  return la == lb && std::equal(da, da + la, db);
}

/// isIssuedBy: (error, issued). error non-empty when the signature check fails.
std::pair<std::string, bool> is_issued_by(X509* cert, X509* issuer)
{
  std::string err = check_signature_from(cert, issuer);
  if (!err.empty()) return {err, false};
  return {"", same_name(X509_get_subject_name(issuer), X509_get_issuer_name(cert))};
}

std::string validate_ca_basic_constraints(X509* cert, long expected_path_len)
{
  Constraints bc = basic_constraints(cert);
  if (!bc.present || !bc.ca)
    return "certificate with subject " + quoted_subject(cert) +
           ": ca field in basic constraints must be present, critical, and set to true";
  if (bc.path_len >= 0 && bc.path_len < expected_path_len)
    return "certificate with subject " + quoted_subject(cert) + ": expected path length of " +
           std::to_string(expected_path_len) + " but certificate has path length " + std::to_string(bc.path_len) +
           " instead";
  return "";
}

std::string validate_leaf_basic_constraints(X509* cert)
{
  Constraints bc = basic_constraints(cert);
  if (bc.present && bc.ca)
    return "certificate with subject " + quoted_subject(cert) +
           ": if the basic constraints extension is present, the ca field must be set to false";
  return "";
}

std::string validate_key_usage_present(X509* cert, bool require_critical)
{
  KeyUsage ku = key_usage(cert);
  if (ku.present && !ku.critical && require_critical)
    return "certificate with subject " + quoted_subject(cert) + ": key usage extension must be marked critical";
  if (!ku.present) return "certificate with subject " + quoted_subject(cert) + ": key usage extension must be present";
  return "";
}

std::string validate_ca_key_usage(X509* cert, bool require_critical)
{
  if (auto e = validate_key_usage_present(cert, require_critical); !e.empty()) return e;
  if (!(key_usage(cert).bits & KU_KEY_CERT_SIGN))
    return "certificate with subject " + quoted_subject(cert) + ": key usage must have the bit positions for key cert sign set";
  return "";
}

std::string validate_leaf_key_usage(X509* cert)
{
  std::uint32_t bits = key_usage(cert).bits;
  if (!(bits & KU_DIGITAL_SIGNATURE))
    return "the certificate with subject " + quoted_subject(cert) +
           " is invalid. The key usage must have the bit positions for \"Digital Signature\" set";
  static const std::pair<std::uint32_t, const char*> bad[] = {
      {KU_KEY_ENCIPHERMENT, "KeyEncipherment"}, {KU_DATA_ENCIPHERMENT, "DataEncipherment"},
      {KU_KEY_AGREEMENT, "KeyAgreement"},       {KU_KEY_CERT_SIGN, "CertSign"},
      {KU_CRL_SIGN, "CRLSign"},                 {KU_ENCIPHER_ONLY, "EncipherOnly"},
      {KU_DECIPHER_ONLY, "DecipherOnly"},
  };
  std::string found;
  for (const auto& [bit, name] : bad) {
    if (!(bits & bit)) continue;
    if (!found.empty()) found += ", ";
    found += std::string("\"") + name + "\"";
  }
  if (!found.empty())
    return "the certificate with subject " + quoted_subject(cert) +
           " is invalid. The key usage must be \"Digital Signature\" only, but found " + found;
  return "";
}

std::string validate_code_signing_eku(X509* cert)
{
  bool present = false, critical = false;
  std::vector<int> ekus = ext_key_usages(cert, &present, &critical);
  static const std::pair<int, const char*> excluded[] = {
      {NID_server_auth, "ServerAuth"}, {NID_client_auth, "ClientAuth"}, {NID_email_protect, "EmailProtection"},
      {NID_time_stamp, "Timestamping"}, {NID_OCSP_sign, "OCSPSigning"},
  };
  for (int nid : ekus)
    for (const auto& [bad, name] : excluded)
      if (nid == bad)
        return "certificate with subject " + quoted_subject(cert) + ": extended key usage must not contain " + name + " eku";
  return "";
}

std::string validate_timestamping_eku(X509* cert)
{
  bool present = false, critical = false;
  std::vector<int> ekus = ext_key_usages(cert, &present, &critical);
  if (ekus.size() != 1 || ekus[0] != NID_time_stamp)
    return "timestamp signing certificate with subject " + quoted_subject(cert) +
           " must have and only have Timestamping as extended key usage";
  if (!critical)
    return "timestamp signing certificate with subject " + quoted_subject(cert) +
           " must have extended key usage extension marked as critical";
  return "";
}

std::string validate_signature_algorithm(X509* cert)
{
  std::string err;
  if (!key_spec(cert, &err)) return "certificate with subject " + quoted_subject(cert) + ": " + err;
  return "";
}

std::string validate_leaf(X509* cert, bool timestamping)
{
  if (auto e = validate_leaf_basic_constraints(cert); !e.empty()) return e;
  if (auto e = validate_key_usage_present(cert, !timestamping); !e.empty()) return e;
  if (auto e = validate_leaf_key_usage(cert); !e.empty()) return e;
  if (auto e = timestamping ? validate_timestamping_eku(cert) : validate_code_signing_eku(cert); !e.empty()) return e;
  return validate_signature_algorithm(cert);
}

std::string validate_ca(X509* cert, long expected_path_len, bool timestamping)
{
  if (auto e = validate_ca_basic_constraints(cert, expected_path_len); !e.empty()) return e;
  return validate_ca_key_usage(cert, !timestamping);
}

/// validateSelfSignedLeaf: signature with its own key (no CA constraint), self-issued.
std::string validate_self_signed_leaf(X509* cert)
{
  EVP_PKEY* key = X509_get0_pubkey(cert);
  std::string err = key ? check_signature(cert, key) : "x509: cannot verify signature: algorithm unimplemented";
  ERR_clear_error();
  if (!err.empty()) return "invalid self-signed certificate. subject: " + quoted_subject(cert) + ". Error: " + err;
  if (!same_name(X509_get_subject_name(cert), X509_get_issuer_name(cert)))
    return "invalid self-signed certificate. subject: " + quoted_subject(cert) + ". Error: issuer(" +
           issuer_for_display(cert) + ") and subject(" + subject_for_display(cert) + ") are not the same";
  return "";
}

std::string validate_chain(const Chain& chain, bool timestamping)
{
  if (chain.empty()) return "certificate chain must contain at least one certificate";
  // Not in notation (which walks any length): every link costs two signature checks with
  // keys the envelope chooses, so an envelope could make verification arbitrarily slow.
  if (chain.size() > k_max_chain_length)
    return "certificate chain is too long: it has " + std::to_string(chain.size()) +
           " certificates, at most " + std::to_string(k_max_chain_length) + " are accepted";
  if (chain.size() == 1) {
    X509* cert = chain[0].get();
    if (auto e = validate_self_signed_leaf(cert); !e.empty()) return e;
    if (auto e = validate_leaf(cert, timestamping); !e.empty()) return "invalid self-signed certificate. Error: " + e;
    return "";
  }
  for (std::size_t i = 0; i < chain.size(); ++i) {
    X509* cert = chain[i].get();
    if (i == chain.size() - 1) {
      auto [err, self_signed] = is_issued_by(cert, cert);
      if (!err.empty())
        return "root certificate with subject " + quoted_subject(cert) +
               " is invalid or not self-signed. Certificate chain must end with a valid self-signed root certificate. Error: " +
               err;
      if (!self_signed)
        return "root certificate with subject " + quoted_subject(cert) +
               " is not self-signed. Certificate chain must end with a valid self-signed root certificate";
    } else {
      // A non-root certificate must not be self-signed (no duplicated roots).
      auto [self_err, self_signed] = is_issued_by(cert, cert);
      if (self_err.empty() && self_signed) {
        if (i == 0)
          return "leaf certificate with subject " + quoted_subject(cert) +
                 " is self-signed. Certificate chain must not contain self-signed leaf certificate";
        return "intermediate certificate with subject " + quoted_subject(cert) +
               " is self-signed. Certificate chain must not contain self-signed intermediate certificate";
      }
      X509* parent = chain[i + 1].get();
      auto [err, issued] = is_issued_by(cert, parent);
      if (!err.empty())
        return "invalid certificates or certificate with subject " + quoted_subject(cert) + " is not issued by " +
               quoted_subject(parent) + ". Error: " + err;
      if (!issued) return "certificate with subject " + quoted_subject(cert) + " is not issued by " + quoted_subject(parent);
    }
    std::string e = i == 0 ? validate_leaf(cert, timestamping) : validate_ca(cert, static_cast<long>(i) - 1, timestamping);
    if (!e.empty()) return e;
  }
  return "";
}

} // namespace

std::optional<KeySpec> key_spec(X509* cert, std::string* error)
{
  auto set = [&](const std::string& e) -> std::optional<KeySpec> {
    if (error) *error = e;
    return std::nullopt;
  };
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (!key) {
    ERR_clear_error();
    return set("unsupported public key type");
  }
  switch (EVP_PKEY_get_base_id(key)) {
  case EVP_PKEY_RSA: {
    // Go: key.Size() << 3, i.e. the modulus length rounded up to whole bytes.
    int bits = (EVP_PKEY_get_bits(key) + 7) / 8 * 8;
    if (bits == 2048) return KeySpec{"PS256", 256};
    if (bits == 3072) return KeySpec{"PS384", 384};
    if (bits == 4096) return KeySpec{"PS512", 512};
    return set("rsa key size " + std::to_string(bits) + " bits is not supported");
  }
  case EVP_PKEY_EC: {
    char curve[64] = {};
    size_t len = 0;
    if (!EVP_PKEY_get_group_name(key, curve, sizeof curve, &len)) {
      ERR_clear_error();
      return set("unsupported public key type");
    }
    int nid = OBJ_sn2nid(curve);
    if (nid == NID_undef) nid = EC_curve_nist2nid(curve);
    if (nid == NID_X9_62_prime256v1) return KeySpec{"ES256", 256};
    if (nid == NID_secp384r1) return KeySpec{"ES384", 384};
    if (nid == NID_secp521r1) return KeySpec{"ES512", 512};
    return set("ecdsa key size " + std::to_string(EVP_PKEY_get_bits(key)) + " bits is not supported");
  }
  default: return set("unsupported public key type");
  }
}

std::string validate_code_signing_chain(const Chain& chain) { return validate_chain(chain, false); }

std::string validate_code_signing_leaf(X509* cert) { return validate_leaf(cert, false); }
std::string validate_code_signing_ca(X509* cert, int expected_path_len) { return validate_ca(cert, expected_path_len, false); }
std::string validate_timestamping_leaf(X509* cert) { return validate_leaf(cert, true); }
std::string validate_timestamping_ca(X509* cert, int expected_path_len) { return validate_ca(cert, expected_path_len, true); }

std::string validate_timestamping_chain(const Chain& chain) { return validate_chain(chain, true); }

bool der_equal(X509* a, X509* b)
{
  if (!a || !b) return false;
  return der_bytes(a) == der_bytes(b);
}

bool is_self_signed(X509* cert)
{
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (!key) {
    ERR_clear_error();
    return false;
  }
  return check_signature(cert, key).empty() && same_name(X509_get_subject_name(cert), X509_get_issuer_name(cert));
}

bool is_ca(X509* cert)
{
  Constraints bc = basic_constraints(cert);
  return bc.present && bc.ca;
}

} // namespace ferry::verify

#include <ferry/verify/timestamp.hpp>

#include <ferry/error.hpp>
#include <ferry/verify/x509.hpp>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <cstring>
#include <ctime>
#include <optional>
#include <string_view>
#include <vector>

// Reference: ../shared/notation/SPEC.md §6 step 6 (notation-go verifier/verifier.go
// verifyTimestamp; tspclient-go token.go, internal/cms/signed.go). Messages follow notation's
// wording where the failure is the same; OpenSSL's detail is appended where Go's differs.

namespace ferry::verify {

namespace {

using Micros = std::chrono::microseconds;

struct AsnObjectFree {
  void operator()(ASN1_OBJECT* p) const { ASN1_OBJECT_free(p); }
};
using AsnObjectPtr = std::unique_ptr<ASN1_OBJECT, AsnObjectFree>;
struct AsnIntegerFree {
  void operator()(ASN1_INTEGER* p) const { ASN1_INTEGER_free(p); }
};
using AsnIntegerPtr = std::unique_ptr<ASN1_INTEGER, AsnIntegerFree>;
struct ExtKeyUsageFree {
  void operator()(EXTENDED_KEY_USAGE* p) const { EXTENDED_KEY_USAGE_free(p); }
};
using ExtKeyUsagePtr = std::unique_ptr<EXTENDED_KEY_USAGE, ExtKeyUsageFree>;

constexpr const char* k_baseline_policy = "0.4.0.2023.1.1";  // ETSI baseline time-stamp policy (RFC 3628)

std::string oid_text(const ASN1_OBJECT* obj)
{
  char buf[128];
  int n = OBJ_obj2txt(buf, sizeof buf, obj, 1);
  return n > 0 ? std::string(buf) : std::string("?");
}

/// SHA-256/384/512 only (tspclient-go internal/oid/hash.go ToHash).
const EVP_MD* hash_for(const ASN1_OBJECT* alg)
{
  switch (OBJ_obj2nid(alg)) {
  case NID_sha256: return EVP_sha256();
  case NID_sha384: return EVP_sha384();
  case NID_sha512: return EVP_sha512();
  default: return nullptr;
  }
}

std::string digest(const EVP_MD* md, const void* data, std::size_t n)
{
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data, n, out, &len, md, nullptr) != 1) throw Error(Errc::internal, "EVP_Digest failed: " + openssl_error());
  return std::string(reinterpret_cast<char*>(out), len);
}

Micros to_micros(TimePoint t) { return std::chrono::duration_cast<Micros>(t.time_since_epoch()); }

/// GeneralizedTime with its fractional seconds (to the microsecond).
Micros gen_time_micros(const ASN1_GENERALIZEDTIME* t)
{
  Micros whole = to_micros(to_time_point(t));
  const char* s = reinterpret_cast<const char*>(ASN1_STRING_get0_data(t));
  int n = ASN1_STRING_length(t);
  const char* dot = static_cast<const char*>(std::memchr(s, '.', static_cast<std::size_t>(n)));
  if (!dot) dot = static_cast<const char*>(std::memchr(s, ',', static_cast<std::size_t>(n)));
  if (!dot) return whole;
  long frac = 0;
  int digits = 0;
  for (const char* p = dot + 1; p < s + n && *p >= '0' && *p <= '9'; ++p) {
    if (digits < 6) {
      frac = frac * 10 + (*p - '0');
      ++digits;
    }
  }
  while (digits < 6) {
    frac *= 10;
    ++digits;
  }
  return whole + Micros(frac);
}

// ---- a minimal DER reader, enough for the ESS SigningCertificateV2 attribute -----------

struct Tlv {
  unsigned char tag = 0;
  const unsigned char* start = nullptr;  ///< first byte of the tag
  const unsigned char* body = nullptr;
  std::size_t body_len = 0;
  std::size_t full_len() const { return static_cast<std::size_t>(body - start) + body_len; }
};

/// Reads one TLV (low tag numbers, definite length) from [p, end); advances p.
bool read_tlv(const unsigned char*& p, const unsigned char* end, Tlv& out)
{
  if (p >= end) return false;
  out.start = p;
  out.tag = *p++;
  if ((out.tag & 0x1f) == 0x1f || p >= end) return false;
  std::size_t len = *p++;
  if (len & 0x80) {
    std::size_t n = len & 0x7f;
    if (n == 0 || n > 4 || static_cast<std::size_t>(end - p) < n) return false;
    len = 0;
    for (std::size_t i = 0; i < n; ++i) len = (len << 8) | *p++;
  }
  if (static_cast<std::size_t>(end - p) < len) return false;
  out.body = p;
  out.body_len = len;
  p += len;
  return true;
}

/// First ESSCertIDv2 of a SigningCertificateV2 (RFC 5035 §3):
///   ESSCertIDv2 ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier DEFAULT id-sha256,
///                              certHash OCTET STRING, issuerSerial IssuerSerial OPTIONAL }
struct EssCertIdV2 {
  AsnObjectPtr hash_alg;  ///< null → SHA-256
  std::string cert_hash;
  bool has_issuer_serial = false;
  std::string issuer_der;  ///< the directoryName's Name, DER
  AsnIntegerPtr serial;
};

/// Parses the attribute value; returns "" or the reason it is malformed.
std::string parse_signing_certificate_v2(const unsigned char* data, std::size_t len, std::optional<EssCertIdV2>& out)
{
  const unsigned char* p = data;
  const unsigned char* end = data + len;
  Tlv outer, certs, id;
  if (!read_tlv(p, end, outer) || outer.tag != 0x30) return "malformed SigningCertificateV2";
  p = outer.body;
  end = outer.body + outer.body_len;
  if (!read_tlv(p, end, certs) || certs.tag != 0x30) return "malformed SigningCertificateV2";
  p = certs.body;
  end = certs.body + certs.body_len;
  if (p == end) {
    out.reset();
    return "";  // no ESSCertIDv2
  }
  if (!read_tlv(p, end, id) || id.tag != 0x30) return "malformed ESSCertIDv2";
  EssCertIdV2 cid;
  p = id.body;
  end = id.body + id.body_len;
  Tlv field;
  if (!read_tlv(p, end, field)) return "malformed ESSCertIDv2";
  if (field.tag == 0x30) {  // hashAlgorithm
    const unsigned char* q = field.body;
    Tlv oid;
    if (!read_tlv(q, field.body + field.body_len, oid) || oid.tag != 0x06) return "malformed ESSCertIDv2 hash algorithm";
    const unsigned char* o = oid.start;
    cid.hash_alg.reset(d2i_ASN1_OBJECT(nullptr, &o, static_cast<long>(oid.full_len())));
    if (!cid.hash_alg) return "malformed ESSCertIDv2 hash algorithm";
    if (!read_tlv(p, end, field)) return "malformed ESSCertIDv2";
  }
  if (field.tag != 0x04) return "malformed ESSCertIDv2 certHash";
  cid.cert_hash.assign(reinterpret_cast<const char*>(field.body), field.body_len);
  if (p < end) {
    Tlv issuer_serial;
    if (!read_tlv(p, end, issuer_serial) || issuer_serial.tag != 0x30) return "malformed IssuerSerial";
    const unsigned char* q = issuer_serial.body;
    const unsigned char* qend = issuer_serial.body + issuer_serial.body_len;
    Tlv names, serial;
    if (!read_tlv(q, qend, names) || names.tag != 0x30 || !read_tlv(q, qend, serial) || serial.tag != 0x02)
      return "malformed IssuerSerial";
    cid.has_issuer_serial = true;
    const unsigned char* s = serial.start;
    cid.serial.reset(d2i_ASN1_INTEGER(nullptr, &s, static_cast<long>(serial.full_len())));
    if (!cid.serial) return "malformed IssuerSerial serial number";
    // GeneralNames: the directoryName ([4] EXPLICIT Name) is the issuer.
    const unsigned char* n = names.body;
    const unsigned char* nend = names.body + names.body_len;
    Tlv gn;
    while (read_tlv(n, nend, gn)) {
      if (gn.tag == 0xa4) {
        const unsigned char* b = gn.body;
        Tlv name;
        if (!read_tlv(b, gn.body + gn.body_len, name) || name.tag != 0x30) return "malformed IssuerSerial issuer name";
        cid.issuer_der.assign(reinterpret_cast<const char*>(name.start), name.full_len());
        break;
      }
    }
  }
  out = std::move(cid);
  return "";
}

/// tspclient-go converts the token from BER to DER before parsing (internal/encoding/asn1/ber):
/// definite lengths only, exactly one top-level value, every constructed value walked. This
/// mirrors its checks and messages so tokens OpenSSL would accept (indefinite lengths,
/// trailing bytes) are rejected as upstream rejects them. Returns "" when acceptable.
std::string ber_convertible(std::string_view data)
{
  using Bytes = std::basic_string_view<unsigned char>;
  auto syntax = [](const std::string& m) { return "asn1: syntax error: " + m; };
  auto structure = [](const std::string& m) { return "asn1: structure error: " + m; };
  // Reads identifier and length; on success `r` is the content and what follows it.
  auto metadata = [&](Bytes& r, bool& constructed, std::size_t& len) -> std::string {
    if (r.empty()) return syntax("decoding BER identifier octets: identifier octets is empty");
    std::size_t off = 1;
    constructed = (r[0] & 0x20) != 0;
    if ((r[0] & 0x1f) == 0x1f) {
      while (off < r.size() && (r[off] & 0x80)) ++off;
      if (off >= r.size()) return syntax("decoding BER identifier octets: high-tag-number form with early EOF");
      ++off;
    }
    if (off >= r.size()) return syntax("decoding BER identifier octets: early EOF due to missing length and content octets");
    r.remove_prefix(off);
    unsigned char b = r[0];
    r.remove_prefix(1);
    if (b < 0x80) {
      len = b;
      if (len > r.size())
        return syntax("decoding BER length octets: short form length octets value should be less or equal to the subsequent "
                      "octets length");
      return "";
    }
    if (b == 0x80) return structure("decoding BER length octets: indefinite length not supported");
    std::size_t n = b & 0x7f;
    if (n > 4)
      return structure("decoding BER length octets: length of encoded data (" + std::to_string(n) + " bytes) cannot exceed 4 bytes");
    if (n >= r.size()) return syntax("decoding BER length octets: long form length octets with early EOF");
    std::uint64_t l = 0;
    for (std::size_t i = 0; i < n; ++i) l = (l << 8) | r[i];
    r.remove_prefix(n);
    if (l >> 31)
      return structure("decoding BER length octets: length " + std::to_string(l) + " does not fit the memory space of int32");
    len = static_cast<std::size_t>(l);
    if (len > r.size())
      return syntax("decoding BER length octets: long form length octets value should be less or equal to the subsequent "
                    "octets length");
    return "";
  };
  if (data.empty()) return syntax("BER-encoded ASN.1 data structures is empty");
  Bytes r(reinterpret_cast<const unsigned char*>(data.data()), data.size());
  bool constructed = false;
  std::size_t len = 0;
  if (std::string e = metadata(r, constructed, len); !e.empty()) return e;
  if (r.size() != len)
    return syntax("decoding BER: length octets value " + std::to_string(len) + " does not match with content length " +
                  std::to_string(r.size()));
  if (!constructed) return "";
  std::vector<Bytes> stack{r};
  while (!stack.empty()) {
    Bytes& top = stack.back();
    if (top.empty()) {
      stack.pop_back();
      continue;
    }
    if (std::string e = metadata(top, constructed, len); !e.empty()) return e;
    Bytes content = top.substr(0, len);
    top.remove_prefix(len);
    if (constructed) stack.push_back(content);  // may invalidate `top`; not used after this
  }
  return "";
}

std::string name_der(const X509_NAME* name)
{
  const unsigned char* der = nullptr;
  std::size_t len = 0;
  if (X509_NAME_get0_der(const_cast<X509_NAME*>(name), &der, &len) != 1) return {};
  return std::string(reinterpret_cast<const char*>(der), len);
}

/// tspclient-go token.go SigningCertificate: the signer is the certificate named by the first
/// ESSCertIDv2 (by IssuerSerial, else by the SignerInfo's sid), and its hash must match.
X509* find_signing_certificate(CMS_SignerInfo* si, STACK_OF(X509) * certs, std::string& error)
{
  int idx = CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_signingCertificateV2, -1);
  if (idx < 0) {
    error = "failed to get SigningCertificateV2 from signed attributes: attribute not found";
    return nullptr;
  }
  X509_ATTRIBUTE* attr = CMS_signed_get_attr(si, idx);
  ASN1_TYPE* value = attr ? X509_ATTRIBUTE_get0_type(attr, 0) : nullptr;
  if (!value || value->type != V_ASN1_SEQUENCE) {
    error = "failed to get SigningCertificateV2 from signed attributes: malformed attribute value";
    return nullptr;
  }
  std::optional<EssCertIdV2> cid;
  std::string bad = parse_signing_certificate_v2(ASN1_STRING_get0_data(value->value.sequence),
                                                 static_cast<std::size_t>(ASN1_STRING_length(value->value.sequence)), cid);
  if (!bad.empty()) {
    error = "failed to get SigningCertificateV2 from signed attributes: " + bad;
    return nullptr;
  }
  if (!cid) {
    error = "signingCertificateV2 does not contain any certificate";
    return nullptr;
  }
  X509* found = nullptr;
  if (cid->has_issuer_serial) {
    if (cid->issuer_der.empty()) {
      error = "issuer name is missing in IssuerSerial";
      return nullptr;
    }
    for (int i = 0; i < sk_X509_num(certs); ++i) {
      X509* c = sk_X509_value(certs, i);
      if (name_der(X509_get_issuer_name(c)) == cid->issuer_der && ASN1_INTEGER_cmp(X509_get0_serialNumber(c), cid->serial.get()) == 0) {
        found = c;
        break;
      }
    }
  } else {
    for (int i = 0; i < sk_X509_num(certs); ++i) {
      X509* c = sk_X509_value(certs, i);
      if (CMS_SignerInfo_cert_cmp(si, c) == 0) {
        found = c;
        break;
      }
    }
  }
  if (!found) {
    error = "signing certificate not found in the timestamp token";
    return nullptr;
  }
  const EVP_MD* md = EVP_sha256();  // RFC 5035: DEFAULT id-sha256
  if (cid->hash_alg) {
    md = hash_for(cid->hash_alg.get());
    if (!md) {
      error = "unsupported certificate hash algorithm in SigningCertificateV2 attribute";
      return nullptr;
    }
  }
  std::string der = der_bytes(found);
  if (digest(md, der.data(), der.size()) != cid->cert_hash) {
    error = "signing certificate hash does not match CertHash in signed attribute";
    return nullptr;
  }
  return found;
}

/// RFC 3161 §2.3 as tspclient-go checks it: exactly one EKU, id-kp-timeStamping, critical.
std::string tsa_leaf_eku_problem(X509* cert)
{
  int crit = -1;
  ExtKeyUsagePtr eku(static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, nullptr)));
  ERR_clear_error();
  if (!eku || sk_ASN1_OBJECT_num(eku.get()) != 1 || OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), 0)) != NID_time_stamp)
    return "signing certificate must have and only have ExtKeyUsageTimeStamping as extended key usage";
  if (crit != 1) return "signing certificate extended key usage extension must be set as critical";
  return "";
}

/// Go's x509.Verify with KeyUsages {timeStamping}: every certificate of the chain that has
/// an EKU extension must allow timeStamping (or anyExtendedKeyUsage).
bool chain_allows_timestamping(const Chain& chain)
{
  for (const auto& c : chain) {
    int crit = -1;
    ExtKeyUsagePtr eku(static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(c.get(), NID_ext_key_usage, &crit, nullptr)));
    ERR_clear_error();
    if (!eku) continue;
    bool ok = false;
    for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
      int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku.get(), i));
      if (nid == NID_time_stamp || nid == NID_anyExtendedKeyUsage) ok = true;
    }
    if (!ok) return false;
  }
  return true;
}

std::string x509_error_text(int err, X509* cert)
{
  switch (err) {
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
  case X509_V_ERR_CERT_UNTRUSTED:
    return std::string("x509: certificate signed by unknown authority (") + X509_verify_cert_error_string(err) + ")";
  case X509_V_ERR_CERT_HAS_EXPIRED:
  case X509_V_ERR_CERT_NOT_YET_VALID:
    return std::string("x509: certificate has expired or is not yet valid: ") + X509_verify_cert_error_string(err) +
           (cert ? " (\"" + subject_for_display(cert) + "\")" : std::string());
  default:
    return std::string("x509: ") + X509_verify_cert_error_string(err) +
           (cert ? " (\"" + subject_for_display(cert) + "\")" : std::string());
  }
}

struct SignerOutcome {
  Chain chain;
  std::string error;  ///< "" on success
};

/// One SignerInfo (tspclient-go token.go Verify + internal/cms/signed.go verify): signing
/// certificate, chain to a trusted root at genTime, signature, signed attributes, TSA EKU.
SignerOutcome verify_signer(CMS_ContentInfo* cms, CMS_SignerInfo* si, STACK_OF(X509) * certs, const Chain& tsa_roots,
                            Micros gen_time, const std::string& content)
{
  SignerOutcome out;
  std::string error;
  X509* signer = find_signing_certificate(si, certs, error);
  if (!signer) {
    out.error = error;
    return out;
  }
  ASN1_OCTET_STRING* keyid = nullptr;
  X509_NAME* issuer = nullptr;
  ASN1_INTEGER* sno = nullptr;
  if (CMS_SignerInfo_get0_signer_id(si, &keyid, &issuer, &sno) != 1 || keyid) {
    out.error = "cms verification failure: invalid signer info version: only version 1 is supported; got 3";
    return out;
  }

  // Chain: trusted = tsa_roots only, untrusted = the token's certificates, at genTime.
  X509StorePtr store(X509_STORE_new());
  for (const auto& root : tsa_roots) X509_STORE_add_cert(store.get(), root.get());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_CTX_init(ctx.get(), store.get(), signer, certs) != 1)
    throw Error(Errc::internal, "X509_STORE_CTX_init failed: " + openssl_error());
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_TIMESTAMP_SIGN);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()),
                             static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(gen_time).count()));
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    X509* bad = X509_STORE_CTX_get_current_cert(ctx.get());
    ERR_clear_error();
    std::string eku = tsa_leaf_eku_problem(signer);
    if (err == X509_V_ERR_INVALID_PURPOSE && X509_STORE_CTX_get_error_depth(ctx.get()) == 0 && !eku.empty())
      out.error = eku;
    else
      out.error = "cms verification failure: " + x509_error_text(err, bad);
    return out;
  }
  Chain chain;
  {
    X509StackPtr built(X509_STORE_CTX_get1_chain(ctx.get()));
    for (int i = 0; built && i < sk_X509_num(built.get()); ++i) chain.push_back(clone(sk_X509_value(built.get(), i)));
  }
  // Go compares genTime with its fraction; OpenSSL checked at the whole second.
  for (const auto& c : chain) {
    if (gen_time < to_micros(not_before(c.get())) || gen_time > to_micros(not_after(c.get()))) {
      out.error = "cms verification failure: " + x509_error_text(X509_V_ERR_CERT_HAS_EXPIRED, c.get());
      return out;
    }
  }
  if (!chain_allows_timestamping(chain)) {
    out.error = "cms verification failure: x509: certificate specifies an incompatible key usage";
    return out;
  }

  // Signature over the signed attributes (which must be present: the content is not id-data).
  if (CMS_signed_get_attr_count(si) <= 0) {
    out.error = "cms verification failure: missing signed attributes";
    return out;
  }
  CMS_SignerInfo_set1_signer_cert(si, signer);
  if (CMS_SignerInfo_verify(si) != 1) {
    std::string detail = openssl_error();
    out.error = "cms verification failure: signature verification error" + (detail.empty() ? std::string() : " (" + detail + ")");
    return out;
  }
  // contentType attribute == eContentType.
  {
    int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_contentType, -1);
    ASN1_TYPE* t = idx >= 0 ? X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(si, idx), 0) : nullptr;
    if (!t || t->type != V_ASN1_OBJECT) {
      out.error = "cms verification failure: invalid content type";
      return out;
    }
    if (OBJ_cmp(t->value.object, CMS_get0_eContentType(cms)) != 0) {
      out.error = "cms verification failure: mismatch content type: found \"" + oid_text(t->value.object) +
                  "\" in signer info, and \"" + oid_text(CMS_get0_eContentType(cms)) + "\" in signed data";
      return out;
    }
  }
  // messageDigest attribute == H(eContent) with the SignerInfo's digest algorithm.
  {
    X509_ALGOR* dig = nullptr;
    X509_ALGOR* sig = nullptr;
    CMS_SignerInfo_get0_algs(si, nullptr, nullptr, &dig, &sig);
    const ASN1_OBJECT* dig_oid = nullptr;
    if (dig) X509_ALGOR_get0(&dig_oid, nullptr, nullptr, dig);
    const EVP_MD* md = dig_oid ? hash_for(dig_oid) : nullptr;
    if (!md) {
      out.error = "cms verification failure: unsupported digest algorithm";
      return out;
    }
    int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_messageDigest, -1);
    ASN1_TYPE* t = idx >= 0 ? X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(si, idx), 0) : nullptr;
    if (!t || t->type != V_ASN1_OCTET_STRING) {
      out.error = "cms verification failure: invalid message digest";
      return out;
    }
    std::string expected(reinterpret_cast<const char*>(ASN1_STRING_get0_data(t->value.octet_string)),
                         static_cast<std::size_t>(ASN1_STRING_length(t->value.octet_string)));
    if (digest(md, content.data(), content.size()) != expected) {
      out.error = "cms verification failure: mismatch message digest";
      return out;
    }
  }
  // signingTime attribute, if any, inside every chain certificate's validity.
  {
    int idx = CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1);
    if (idx >= 0) {
      ASN1_TYPE* t = X509_ATTRIBUTE_get0_type(CMS_signed_get_attr(si, idx), 0);
      std::optional<TimePoint> st;
      if (t && (t->type == V_ASN1_UTCTIME || t->type == V_ASN1_GENERALIZEDTIME)) {
        try {
          st = to_time_point(reinterpret_cast<const ASN1_TIME*>(t->value.asn1_string));
        } catch (const Error&) {
        }
      }
      if (!st) {
        out.error = "cms verification failure: invalid signing time";
        return out;
      }
      for (const auto& c : chain) {
        if (*st < not_before(c.get()) || *st > not_after(c.get())) {
          out.error = "cms verification failure: signing time, " + format_rfc3339(*st) +
                      ", is outside certificate's validity period";
          return out;
        }
      }
    }
  }
  std::string eku = tsa_leaf_eku_problem(signer);
  if (!eku.empty()) {
    out.error = eku;
    return out;
  }
  out.chain = std::move(chain);
  return out;
}

} // namespace

TimestampResult verify_timestamp(std::string_view token, std::string_view signature, const Chain& tsa_roots,
                                 const Chain& signing_chain, const CrlSet& crls, TimePoint now)
{
  TimestampResult result;
  auto fail = [&](std::string why) {
    ERR_clear_error();
    result.ok = false;
    result.reason = std::move(why);
    return std::move(result);
  };

  // 1. The countersignature must be present.
  if (token.empty()) return fail("no timestamp countersignature was found in the signature envelope");

  // 2. CMS SignedData (BER accepted) with eContentType id-ct-TSTInfo.
  const std::string parse_prefix = "failed to parse timestamp countersignature with error: ";
  if (std::string bad = ber_convertible(token); !bad.empty())
    return fail(parse_prefix + "cms: syntax error: invalid signed data: failed to convert from BER to DER: " + bad);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(token.data());
  CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(token.size())));
  if (!cms) return fail(parse_prefix + "cms: syntax error: invalid signed data: " + openssl_error());
  if (p != reinterpret_cast<const unsigned char*>(token.data()) + token.size())
    return fail(parse_prefix + "cms: syntax error: trailing data after the ContentInfo");
  if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed)
    return fail(parse_prefix + "cms: content type is not signed-data: " + oid_text(CMS_get0_type(cms.get())));
  const ASN1_OBJECT* econtent_type = CMS_get0_eContentType(cms.get());
  if (!econtent_type || OBJ_obj2nid(econtent_type) != NID_id_smime_ct_TSTInfo)
    return fail(parse_prefix + "unexpected content type: " + (econtent_type ? oid_text(econtent_type) : std::string("none")) +
                ". Expected to be id-ct-TSTInfo (1.2.840.113549.1.9.16.1.4)");
  ASN1_OCTET_STRING** econtent = CMS_get0_content(cms.get());
  if (!econtent || !*econtent)
    return fail("failed to get the timestamp TSTInfo with error: cannot unmarshal TSTInfo from timestamp token: no content");
  std::string content(reinterpret_cast<const char*>(ASN1_STRING_get0_data(*econtent)),
                      static_cast<std::size_t>(ASN1_STRING_length(*econtent)));

  // 3. TSTInfo: version, messageImprint over the primitive signature with the token's hash.
  const unsigned char* c = reinterpret_cast<const unsigned char*>(content.data());
  TsTstInfoPtr tst(d2i_TS_TST_INFO(nullptr, &c, static_cast<long>(content.size())));
  if (!tst)
    return fail("failed to get the timestamp TSTInfo with error: cannot unmarshal TSTInfo from timestamp token: " + openssl_error());
  const std::string validate_prefix = "failed to get timestamp from timestamp countersignature with error: invalid TSTInfo: ";
  if (long v = TS_TST_INFO_get_version(tst.get()); v != 1)
    return fail(validate_prefix + "timestamp token info version must be 1, but got " + std::to_string(v));
  TS_MSG_IMPRINT* imprint = TS_TST_INFO_get_msg_imprint(tst.get());
  const ASN1_OBJECT* hash_oid = nullptr;
  if (X509_ALGOR* alg = imprint ? TS_MSG_IMPRINT_get_algo(imprint) : nullptr) X509_ALGOR_get0(&hash_oid, nullptr, nullptr, alg);
  const EVP_MD* md = hash_oid ? hash_for(hash_oid) : nullptr;
  if (!md) return fail(validate_prefix + "unrecognized hash algorithm: " + (hash_oid ? oid_text(hash_oid) : std::string("none")));
  ASN1_OCTET_STRING* hashed = TS_MSG_IMPRINT_get_msg(imprint);
  std::string expected = digest(md, signature.data(), signature.size());
  if (!hashed || std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(hashed)),
                             static_cast<std::size_t>(ASN1_STRING_length(hashed))) != expected)
    return fail(validate_prefix + "mismatched message");

  // 4. Accuracy: explicit if non-zero, else 1 s under the baseline policy, else 0.
  Micros accuracy{0};
  if (const TS_ACCURACY* acc = TS_TST_INFO_get_accuracy(tst.get())) {
    auto get = [](const ASN1_INTEGER* i) { return i ? ASN1_INTEGER_get(i) : 0L; };
    long s = get(TS_ACCURACY_get_seconds(acc));
    long ms = get(TS_ACCURACY_get_millis(acc));
    long us = get(TS_ACCURACY_get_micros(acc));
    if (s < 0 || ms < 0 || us < 0) return fail(validate_prefix + "negative accuracy");
    accuracy = std::chrono::seconds(s) + std::chrono::milliseconds(ms) + Micros(us);
  }
  if (accuracy == Micros(0)) {
    const ASN1_OBJECT* policy = TS_TST_INFO_get_policy_id(tst.get());
    if (policy && oid_text(policy) == k_baseline_policy) accuracy = std::chrono::seconds(1);
  }
  Micros gen_time{};
  try {
    gen_time = gen_time_micros(TS_TST_INFO_get_time(tst.get()));
  } catch (const Error&) {
    return fail("failed to get the timestamp TSTInfo with error: malformed genTime");
  }
  result.gen_time = TimePoint(std::chrono::floor<std::chrono::seconds>(gen_time));
  result.accuracy = std::chrono::ceil<std::chrono::seconds>(accuracy);

  // 5. TSA trust: signer by SigningCertificateV2, chain to tsa_roots at genTime.
  if (tsa_roots.empty()) return fail("no trusted TSA certificate found in trust store");
  const std::string verify_prefix = "failed to verify the timestamp countersignature with error: failed to verify signed token: ";
  STACK_OF(CMS_SignerInfo)* signers = CMS_get0_SignerInfos(cms.get());
  if (sk_CMS_SignerInfo_num(signers) <= 0) return fail(verify_prefix + "signerInfo not found");
  X509StackPtr certs(CMS_get1_certs(cms.get()));
  if (!certs) certs.reset(sk_X509_new_null());
  ERR_clear_error();
  std::string last_error;
  bool verified = false;
  // As tspclient-go: the first SignerInfo that verifies wins; otherwise the last error.
  for (int i = 0; i < sk_CMS_SignerInfo_num(signers); ++i) {
    SignerOutcome o = verify_signer(cms.get(), sk_CMS_SignerInfo_value(signers, i), certs.get(), tsa_roots, gen_time, content);
    if (o.error.empty()) {
      result.tsa_chain = std::move(o.chain);
      verified = true;
      break;
    }
    last_error = o.error;
  }
  if (!verified) return fail(verify_prefix + last_error);

  // 6. Notation's timestamping chain rules.
  if (std::string bad = validate_timestamping_chain(result.tsa_chain); !bad.empty())
    return fail("failed to validate the timestamping certificate chain with error: " + bad);

  // 7. [genTime − accuracy, genTime + accuracy] inside every signing certificate's validity.
  for (const auto& cert : signing_chain) {
    TimePoint nb = not_before(cert.get());
    TimePoint na = not_after(cert.get());
    if (gen_time - accuracy < to_micros(nb))
      return fail("timestamp can be before certificate \"" + subject_for_display(cert.get()) +
                  "\" validity period, it will be valid from \"" + format_rfc1123z(nb) + "\"");
    if (gen_time + accuracy > to_micros(na))
      return fail("timestamp can be after certificate \"" + subject_for_display(cert.get()) +
                  "\" validity period, it was expired at \"" + format_rfc1123z(na) + "\"");
  }

  // 8. Revocation of the TSA chain, always enforced here (no signing time).
  result.tsa_revocation = check_revocation(result.tsa_chain, crls, now, std::nullopt, RevocationPurpose::timestamping);
  if (result.tsa_revocation.status != RevocationStatus::ok) return fail(result.tsa_revocation.reason);

  result.ok = true;
  result.reason.clear();
  return result;
}

} // namespace ferry::verify

#pragma once
/// A test PKI generated at test time with the OpenSSL C API (design §6): certificates with
/// CRL distribution points / OCSP URLs, CRLs (fresh, stale, revoked entries, hold/remove,
/// invalidity dates, unknown critical extensions, deltas) and RFC 3161 tokens from an
/// in-process TSA. Used by test_verify_revocation.cpp and test_verify_timestamp.cpp.
#include <ferry/error.hpp>
#include <ferry/verify/openssl.hpp>

#include "test_clock.hpp"

#include <openssl/cms.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/ess.h>
#include <openssl/pem.h>
#include <openssl/ts.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ferry::verify::testpki {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::seconds;

inline void check(bool ok, const char* what)
{
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what + ": " + openssl_error());
}

/// The pinned clock (test_clock.hpp): 2026-11-23T00:00:00Z, the corpus reference date.
inline TimePoint t0() { return test_clock::k_now; }

inline EvpPkeyPtr make_key()
{
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EVP_EC_gen");
  return key;
}

struct CertSpec {
  std::string cn;
  X509* issuer = nullptr;  ///< null: self-signed
  EVP_PKEY* issuer_key = nullptr;
  TimePoint not_before = t0() - days(3650);
  TimePoint not_after = t0() + days(3650);
  bool ca = false;
  long serial = 0;  ///< 0: derived from the CN
  std::string key_usage;  ///< e.g. "critical,digitalSignature"; "" → default for ca/leaf; "none" → no extension
  std::string eku;  ///< e.g. "critical,timeStamping"; "" → none
  std::vector<std::string> cdp;  ///< CRL distribution point URLs
  std::vector<std::string> ocsp;  ///< OCSP responder URLs
  std::string freshest_crl;  ///< Freshest CRL (delta) URL
};

struct Issued {
  X509Ptr cert;
  EvpPkeyPtr key;
};

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, value.c_str());
  check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

inline void set_time(ASN1_TIME* t, TimePoint tp)
{
  check(ASN1_TIME_set(t, static_cast<time_t>(tp.time_since_epoch().count())) != nullptr, "ASN1_TIME_set");
}

inline Issued issue(const CertSpec& spec)
{
  Issued out;
  out.key = make_key();
  out.cert.reset(X509_new());
  X509* x = out.cert.get();
  check(X509_set_version(x, 2) == 1, "version");
  long serial = spec.serial;
  if (serial == 0) {
    serial = 1;
    for (char c : spec.cn) serial = (serial * 131 + static_cast<unsigned char>(c)) % 1000000007L;
  }
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("US"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("Ferry Test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1, 0);
  X509* issuer = spec.issuer ? spec.issuer : x;
  EVP_PKEY* signer = spec.issuer ? spec.issuer_key : out.key.get();
  check(X509_set_issuer_name(x, X509_get_subject_name(issuer)) == 1, "issuer name");
  check(X509_set_pubkey(x, out.key.get()) == 1, "pubkey");
  set_time(X509_getm_notBefore(x), spec.not_before);
  set_time(X509_getm_notAfter(x), spec.not_after);
  add_ext(x, issuer, NID_subject_key_identifier, "hash");
  if (spec.issuer) add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
  if (spec.ca) {
    add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, issuer, NID_key_usage, spec.key_usage.empty() ? "critical,keyCertSign,cRLSign" : spec.key_usage);
  } else if (spec.key_usage != "none") {
    add_ext(x, issuer, NID_key_usage, spec.key_usage.empty() ? "critical,digitalSignature" : spec.key_usage);
  }
  if (!spec.eku.empty()) add_ext(x, issuer, NID_ext_key_usage, spec.eku);
  if (!spec.cdp.empty()) {
    std::string v;
    for (const auto& u : spec.cdp) v += (v.empty() ? "URI:" : ",URI:") + u;
    add_ext(x, issuer, NID_crl_distribution_points, v);
  }
  if (!spec.ocsp.empty()) {
    std::string v;
    for (const auto& u : spec.ocsp) v += (v.empty() ? "OCSP;URI:" : ",OCSP;URI:") + u;
    add_ext(x, issuer, NID_info_access, v);
  }
  if (!spec.freshest_crl.empty()) add_ext(x, issuer, NID_freshest_crl, "URI:" + spec.freshest_crl);
  check(X509_sign(x, signer, EVP_sha256()) > 0, "X509_sign");
  return out;
}

inline Chain chain_of(std::initializer_list<X509*> certs)
{
  Chain out;
  for (X509* c : certs) out.push_back(clone(c));
  return out;
}

// ---- CRLs ---------------------------------------------------------------------------

struct RevokedEntry {
  long serial = 0;
  TimePoint when = t0() - days(30);
  std::optional<long> reason;  ///< CRLReason code
  std::optional<TimePoint> invalidity;
  bool unknown_critical_ext = false;
};

struct CrlSpec {
  X509* issuer = nullptr;
  EVP_PKEY* key = nullptr;  ///< signing key (may differ from the issuer's to test bad signatures)
  TimePoint this_update = t0() - days(1);
  std::optional<TimePoint> next_update = t0() + days(7);
  std::vector<RevokedEntry> revoked;
  long number = 1;
  std::optional<long> delta_of;  ///< Delta CRL Indicator (base CRL number)
  std::string freshest_crl;  ///< Freshest CRL URL in the (base) CRL
  bool unknown_critical_ext = false;
};

inline X509_EXTENSION* unknown_critical_extension()
{
  ASN1_OBJECT* obj = OBJ_txt2obj("1.3.6.1.4.1.99999.1", 1);
  ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(data, reinterpret_cast<const unsigned char*>("\x05\x00"), 2);  // NULL
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj, 1, data);
  ASN1_OBJECT_free(obj);
  ASN1_OCTET_STRING_free(data);
  check(ext != nullptr, "unknown extension");
  return ext;
}

inline X509CrlPtr make_crl(const CrlSpec& spec)
{
  X509CrlPtr crl(X509_CRL_new());
  X509_CRL* c = crl.get();
  check(X509_CRL_set_version(c, 1) == 1, "crl version");
  check(X509_CRL_set_issuer_name(c, X509_get_subject_name(spec.issuer)) == 1, "crl issuer");
  ASN1_TIME* t = ASN1_TIME_new();
  set_time(t, spec.this_update);
  X509_CRL_set1_lastUpdate(c, t);
  if (spec.next_update) {
    set_time(t, *spec.next_update);
    X509_CRL_set1_nextUpdate(c, t);
  }
  for (const auto& r : spec.revoked) {
    X509_REVOKED* rev = X509_REVOKED_new();
    ASN1_INTEGER* serial = ASN1_INTEGER_new();
    ASN1_INTEGER_set(serial, r.serial);
    X509_REVOKED_set_serialNumber(rev, serial);
    ASN1_INTEGER_free(serial);
    set_time(t, r.when);
    X509_REVOKED_set_revocationDate(rev, t);
    if (r.reason) {
      ASN1_ENUMERATED* e = ASN1_ENUMERATED_new();
      ASN1_ENUMERATED_set(e, *r.reason);
      X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, e, 0, 0);
      ASN1_ENUMERATED_free(e);
    }
    if (r.invalidity) {
      ASN1_GENERALIZEDTIME* g = ASN1_GENERALIZEDTIME_set(nullptr, static_cast<time_t>(r.invalidity->time_since_epoch().count()));
      X509_REVOKED_add1_ext_i2d(rev, NID_invalidity_date, g, 0, 0);
      ASN1_GENERALIZEDTIME_free(g);
    }
    if (r.unknown_critical_ext) {
      X509_EXTENSION* ext = unknown_critical_extension();
      X509_REVOKED_add_ext(rev, ext, -1);
      X509_EXTENSION_free(ext);
    }
    check(X509_CRL_add0_revoked(c, rev) == 1, "add revoked");
  }
  ASN1_TIME_free(t);
  ASN1_INTEGER* number = ASN1_INTEGER_new();
  ASN1_INTEGER_set(number, spec.number);
  X509_CRL_add1_ext_i2d(c, NID_crl_number, number, 0, 0);
  if (spec.delta_of) {
    ASN1_INTEGER_set(number, *spec.delta_of);
    X509_CRL_add1_ext_i2d(c, NID_delta_crl, number, 1, 0);
  }
  ASN1_INTEGER_free(number);
  if (!spec.freshest_crl.empty()) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, spec.issuer, nullptr, nullptr, c, 0);
    X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, NID_freshest_crl, ("URI:" + spec.freshest_crl).c_str());
    check(ext != nullptr, "freshest crl ext");
    X509_CRL_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (spec.unknown_critical_ext) {
    X509_EXTENSION* ext = unknown_critical_extension();
    X509_CRL_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_CRL_sort(c);
  check(X509_CRL_sign(c, spec.key, EVP_sha256()) > 0, "X509_CRL_sign");
  return crl;
}

inline std::string crl_der(X509_CRL* crl)
{
  unsigned char* buf = nullptr;
  int n = i2d_X509_CRL(crl, &buf);
  check(n > 0, "i2d_X509_CRL");
  std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
  OPENSSL_free(buf);
  return out;
}

inline std::string crl_pem(X509_CRL* crl)
{
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509_CRL(bio.get(), crl) == 1, "PEM_write_bio_X509_CRL");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// ---- RFC 3161 tokens ------------------------------------------------------------------

struct TokenSpec {
  X509* tsa = nullptr;
  EVP_PKEY* tsa_key = nullptr;
  std::vector<X509*> extra_certs;  ///< intermediates/root put into the token
  std::string message;  ///< bytes whose hash is the imprint
  const EVP_MD* imprint_md = EVP_sha256();
  std::string gen_time = "20250101000000Z";  ///< GeneralizedTime text (fractions allowed)
  std::optional<long> accuracy_seconds = 1;
  std::optional<long> accuracy_millis;
  std::string policy = "1.3.6.1.4.1.99999.2";
  long version = 1;
  int ess = 2;  ///< 2: SigningCertificateV2 (SHA-256), 1: v1 SigningCertificate only, 0: none
  bool include_certs = true;  ///< false: CMS_NOCERTS
  bool econtent_is_data = false;  ///< eContentType id-data instead of id-ct-TSTInfo
};

inline std::string make_tst_info(const TokenSpec& spec)
{
  TsTstInfoPtr tst(TS_TST_INFO_new());
  TS_TST_INFO* t = tst.get();
  check(TS_TST_INFO_set_version(t, spec.version) == 1, "tst version");
  ASN1_OBJECT* policy = OBJ_txt2obj(spec.policy.c_str(), 1);
  TS_TST_INFO_set_policy_id(t, policy);
  ASN1_OBJECT_free(policy);
  TS_MSG_IMPRINT* mi = TS_MSG_IMPRINT_new();
  X509_ALGOR* alg = X509_ALGOR_new();
  X509_ALGOR_set_md(alg, spec.imprint_md);
  TS_MSG_IMPRINT_set_algo(mi, alg);
  X509_ALGOR_free(alg);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_Digest(spec.message.data(), spec.message.size(), md, &md_len, spec.imprint_md, nullptr);
  TS_MSG_IMPRINT_set_msg(mi, md, static_cast<int>(md_len));
  TS_TST_INFO_set_msg_imprint(t, mi);
  TS_MSG_IMPRINT_free(mi);
  ASN1_INTEGER* serial = ASN1_INTEGER_new();
  ASN1_INTEGER_set(serial, 42);
  TS_TST_INFO_set_serial(t, serial);
  ASN1_INTEGER_free(serial);
  ASN1_GENERALIZEDTIME* gt = ASN1_GENERALIZEDTIME_new();
  check(ASN1_GENERALIZEDTIME_set_string(gt, spec.gen_time.c_str()) == 1, "genTime");
  TS_TST_INFO_set_time(t, gt);
  ASN1_GENERALIZEDTIME_free(gt);
  if (spec.accuracy_seconds || spec.accuracy_millis) {
    TS_ACCURACY* acc = TS_ACCURACY_new();
    ASN1_INTEGER* i = ASN1_INTEGER_new();
    if (spec.accuracy_seconds) {
      ASN1_INTEGER_set(i, *spec.accuracy_seconds);
      TS_ACCURACY_set_seconds(acc, i);
    }
    if (spec.accuracy_millis) {
      ASN1_INTEGER_set(i, *spec.accuracy_millis);
      TS_ACCURACY_set_millis(acc, i);
    }
    ASN1_INTEGER_free(i);
    TS_TST_INFO_set_accuracy(t, acc);
    TS_ACCURACY_free(acc);
  }
  unsigned char* buf = nullptr;
  int n = i2d_TS_TST_INFO(t, &buf);
  check(n > 0, "i2d_TS_TST_INFO");
  std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
  OPENSSL_free(buf);
  return out;
}

/// Adds an ASN.1 structure (DER) as a SEQUENCE-valued signed attribute.
inline void add_sequence_attr(CMS_SignerInfo* si, int nid, const unsigned char* der, int len)
{
  ASN1_STRING* seq = ASN1_STRING_new();
  ASN1_STRING_set(seq, der, len);
  check(CMS_signed_add1_attr_by_NID(si, nid, V_ASN1_SEQUENCE, seq, -1) == 1, "add attr");
  ASN1_STRING_free(seq);
}

/// A TimeStampToken: CMS SignedData over a TSTInfo, signed by spec.tsa with the ESS
/// signing-certificate attribute chosen by spec.ess.
inline std::string make_token(const TokenSpec& spec)
{
  std::string tst = make_tst_info(spec);
  X509StackPtr certs(sk_X509_new_null());
  for (X509* c : spec.extra_certs) {
    X509_up_ref(c);
    sk_X509_push(certs.get(), c);
  }
  unsigned int flags = CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP;
  if (!spec.include_certs) flags |= CMS_NOCERTS;
  BioPtr data(BIO_new_mem_buf(tst.data(), static_cast<int>(tst.size())));
  CmsPtr cms(CMS_sign(nullptr, nullptr, spec.include_certs ? certs.get() : nullptr, nullptr, flags));
  check(cms != nullptr, "CMS_sign");
  if (!spec.econtent_is_data) {
    check(CMS_set1_eContentType(cms.get(), OBJ_nid2obj(NID_id_smime_ct_TSTInfo)) == 1, "eContentType");
  }
  CMS_SignerInfo* si = CMS_add1_signer(cms.get(), spec.tsa, spec.tsa_key, EVP_sha256(), flags);
  check(si != nullptr, "CMS_add1_signer");
  // signingTime = genTime (otherwise OpenSSL adds the current time).
  {
    std::string g = spec.gen_time.substr(0, 14) + "Z";
    ASN1_GENERALIZEDTIME* st = ASN1_GENERALIZEDTIME_new();
    check(ASN1_GENERALIZEDTIME_set_string(st, g.c_str()) == 1, "signingTime");
    ASN1_TIME* ut = ASN1_TIME_new();
    time_t secs = static_cast<time_t>(to_time_point(st).time_since_epoch().count());
    ASN1_TIME_set(ut, secs);
    CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, ut->type, ut, -1);
    ASN1_TIME_free(ut);
    ASN1_GENERALIZEDTIME_free(st);
  }
  if (spec.ess == 2) {
    ESS_SIGNING_CERT_V2* sc = OSSL_ESS_signing_cert_v2_new_init(EVP_sha256(), spec.tsa, nullptr, 1);
    check(sc != nullptr, "ESS v2");
    unsigned char* der = nullptr;
    int n = i2d_ESS_SIGNING_CERT_V2(sc, &der);
    add_sequence_attr(si, NID_id_smime_aa_signingCertificateV2, der, n);
    OPENSSL_free(der);
    ESS_SIGNING_CERT_V2_free(sc);
  } else if (spec.ess == 1) {
    ESS_SIGNING_CERT* sc = OSSL_ESS_signing_cert_new_init(spec.tsa, nullptr, 1);
    check(sc != nullptr, "ESS v1");
    unsigned char* der = nullptr;
    int n = i2d_ESS_SIGNING_CERT(sc, &der);
    add_sequence_attr(si, NID_id_smime_aa_signingCertificate, der, n);
    OPENSSL_free(der);
    ESS_SIGNING_CERT_free(sc);
  }
  check(CMS_final(cms.get(), data.get(), nullptr, CMS_BINARY) == 1, "CMS_final");
  unsigned char* buf = nullptr;
  int n = i2d_CMS_ContentInfo(cms.get(), &buf);
  check(n > 0, "i2d_CMS_ContentInfo");
  std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
  OPENSSL_free(buf);
  return out;
}

/// OpenSSL's TSA responder takes genTime from its time callback but stamps the CMS
/// signingTime attribute with the wall clock: sets that attribute of a granted token to `t`
/// (in place) and signs the signed attributes again with the key the responder used, so the
/// token carries the pinned clock only.
inline void pin_signing_time(PKCS7* token, TimePoint t)
{
  STACK_OF(PKCS7_SIGNER_INFO)* infos = PKCS7_get_signer_info(token);
  check(infos != nullptr && sk_PKCS7_SIGNER_INFO_num(infos) == 1, "token signer info");
  PKCS7_SIGNER_INFO* si = sk_PKCS7_SIGNER_INFO_value(infos, 0);
  ASN1_TIME* when = ASN1_TIME_set(nullptr, static_cast<time_t>(t.time_since_epoch().count()));
  check(when != nullptr, "ASN1_TIME_set");
  if (PKCS7_add0_attrib_signing_time(si, when) != 1) {  // replaces the attribute in place
    ASN1_TIME_free(when);
    check(false, "PKCS7_add0_attrib_signing_time");
  }
  check(PKCS7_SIGNER_INFO_sign(si) == 1, "PKCS7_SIGNER_INFO_sign");
}

/// A token minted by OpenSSL's own TSA responder (TS_RESP_CTX), with SigningCertificateV2
/// (SHA-256) and the given genTime (also its signingTime).
inline std::string make_token_with_ts_resp_ctx(X509* tsa, EVP_PKEY* key, const std::vector<X509*>& extra_certs,
                                               const std::string& message, TimePoint gen_time)
{
  struct Clock {
    long sec;
  } clock{static_cast<long>(gen_time.time_since_epoch().count())};
  TS_RESP_CTX* ctx = TS_RESP_CTX_new();
  check(ctx != nullptr, "TS_RESP_CTX_new");
  check(TS_RESP_CTX_set_signer_cert(ctx, tsa) == 1, "TS_RESP_CTX_set_signer_cert");
  check(TS_RESP_CTX_set_signer_key(ctx, key) == 1, "TS_RESP_CTX_set_signer_key");
  check(TS_RESP_CTX_set_signer_digest(ctx, EVP_sha256()) == 1, "set_signer_digest");
  check(TS_RESP_CTX_set_ess_cert_id_digest(ctx, EVP_sha256()) == 1, "set_ess_cert_id_digest");
  ASN1_OBJECT* policy = OBJ_txt2obj("1.3.6.1.4.1.99999.3", 1);
  check(TS_RESP_CTX_set_def_policy(ctx, policy) == 1, "set_def_policy");
  ASN1_OBJECT_free(policy);
  check(TS_RESP_CTX_add_md(ctx, EVP_sha256()) == 1, "add_md");
  check(TS_RESP_CTX_set_accuracy(ctx, 1, 0, 0) == 1, "set_accuracy");
  X509StackPtr certs(sk_X509_new_null());
  for (X509* c : extra_certs) {
    X509_up_ref(c);
    sk_X509_push(certs.get(), c);
  }
  check(TS_RESP_CTX_set_certs(ctx, certs.get()) == 1, "set_certs");
  TS_RESP_CTX_set_time_cb(
      ctx,
      [](TS_RESP_CTX*, void* data, long* sec, long* usec) {
        *sec = static_cast<Clock*>(data)->sec;
        *usec = 0;
        return 1;
      },
      &clock);

  TS_REQ* req = TS_REQ_new();
  TS_REQ_set_version(req, 1);
  TS_MSG_IMPRINT* mi = TS_MSG_IMPRINT_new();
  X509_ALGOR* alg = X509_ALGOR_new();
  X509_ALGOR_set_md(alg, EVP_sha256());
  TS_MSG_IMPRINT_set_algo(mi, alg);
  X509_ALGOR_free(alg);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_Digest(message.data(), message.size(), md, &md_len, EVP_sha256(), nullptr);
  TS_MSG_IMPRINT_set_msg(mi, md, static_cast<int>(md_len));
  TS_REQ_set_msg_imprint(req, mi);
  TS_MSG_IMPRINT_free(mi);
  TS_REQ_set_cert_req(req, 1);
  unsigned char* req_der = nullptr;
  int req_len = i2d_TS_REQ(req, &req_der);
  TS_REQ_free(req);
  BioPtr bio(BIO_new_mem_buf(req_der, req_len));
  TS_RESP* resp = TS_RESP_create_response(ctx, bio.get());
  OPENSSL_free(req_der);
  TS_RESP_CTX_free(ctx);
  check(resp != nullptr, "TS_RESP_create_response");
  long status = ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(TS_RESP_get_status_info(resp)));
  if (status != 0) {
    TS_RESP_free(resp);
    check(false, "TSA response not granted");
  }
  PKCS7* token = TS_RESP_get_token(resp);
  pin_signing_time(token, gen_time);
  unsigned char* buf = nullptr;
  int n = i2d_PKCS7(token, &buf);
  TS_RESP_free(resp);
  check(n > 0, "i2d_PKCS7");
  std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
  OPENSSL_free(buf);
  return out;
}

} // namespace ferry::verify::testpki

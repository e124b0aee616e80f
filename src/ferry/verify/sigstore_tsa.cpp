// RFC 3161 timestamps against the trusted root's timestamp authorities (issue 15), as
// sigstore-go's VerifyTimestampAuthority does: the token's signer is the authority's TSA
// certificate, which chains to the authority's root at genTime. Notation's stricter
// profile lives in timestamp.cpp and is not shared: its rules (SigningCertificateV2, BER
// conversion, revocation) are Notation's, not Sigstore's.
#include <ferry/verify/sigstore.hpp>

#include "sigstore_util.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cstring>

namespace ferry::verify::sigstore {

using namespace detail;

namespace {

constexpr std::size_t k_max_token = 1u << 20;

const EVP_MD* imprint_hash(const ASN1_OBJECT* alg)
{
  switch (OBJ_obj2nid(alg)) {
  case NID_sha256: return EVP_sha256();
  case NID_sha384: return EVP_sha384();
  case NID_sha512: return EVP_sha512();
  default: return nullptr;
  }
}

struct TsRespFree {
  void operator()(TS_RESP* p) const { TS_RESP_free(p); }
};

/// The token (CMS ContentInfo DER) from a TimeStampResp or a bare token; "" + reason on failure.
std::string token_der(std::string_view der, std::string& reason)
{
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<TS_RESP, TsRespFree> resp(d2i_TS_RESP(nullptr, &p, static_cast<long>(der.size())));
  if (resp && p == reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    TS_STATUS_INFO* info = TS_RESP_get_status_info(resp.get());
    long status = info ? ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(info)) : -1;
    if (status != 0 && status != 1) {
      reason = "timestamp response status is " + std::to_string(status) + ", not granted";
      return {};
    }
    PKCS7* token = TS_RESP_get_token(resp.get());
    if (!token) {
      reason = "timestamp response has no token";
      return {};
    }
    unsigned char* out = nullptr;
    int len = i2d_PKCS7(token, &out);
    if (len <= 0) {
      reason = "timestamp token does not encode: " + openssl_error();
      return {};
    }
    std::string tok(reinterpret_cast<char*>(out), static_cast<std::size_t>(len));
    OPENSSL_free(out);
    return tok;
  }
  ERR_clear_error();
  return std::string(der);
}

bool has_timestamping_eku(X509* cert)
{
  return (X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) && (X509_get_extended_key_usage(cert) & XKU_TIMESTAMP);
}

bool is_ca(X509* cert) { return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0; }

/// Verifies the token's signature with `authority`; "" or the reason.
std::string verify_with(const std::string& token, TimePoint gen_time, const Authority& authority)
{
  if (authority.chain.empty()) return "authority has no certificates";
  if (!authority.valid_for.contains(gen_time)) return "genTime is outside the authority's validFor";
  // A fresh parse for each authority: CMS_verify remembers the signer certificate it found.
  const unsigned char* p = reinterpret_cast<const unsigned char*>(token.data());
  CmsPtr owned(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(token.size())));
  if (!owned) return "timestamp token does not parse";
  CMS_ContentInfo* cms = owned.get();
  // The signer: the authority's leaf; or, when the root lists only CA certificates, the
  // token's own certificate, which then has to chain to the authority.
  X509StackPtr signers(sk_X509_new_null());
  X509* first = authority.chain.front().get();
  bool leaf_given = !is_ca(first) || authority.chain.size() == 1;
  if (leaf_given) {
    X509_up_ref(first);
    sk_X509_push(signers.get(), first);
  } else {
    X509StackPtr embedded(CMS_get1_certs(cms));
    for (int i = 0; embedded && i < sk_X509_num(embedded.get()) && i < 100; ++i) {
      X509* c = sk_X509_value(embedded.get(), i);
      X509_up_ref(c);
      sk_X509_push(signers.get(), c);
    }
  }
  // Signature and content digest, with the signer taken from `signers` only.
  if (CMS_verify(cms, signers.get(), nullptr, nullptr, nullptr, CMS_NO_SIGNER_CERT_VERIFY | CMS_NOINTERN | CMS_BINARY) != 1) {
    std::string detail = openssl_error();
    return "timestamp signature does not verify with " + authority.name + (detail.empty() ? "" : " (" + detail + ")");
  }
  X509StackPtr used(CMS_get0_signers(cms));  // get0: the stack is ours, the certificates are not
  if (!used || sk_X509_num(used.get()) != 1) {
    if (used) {
      // sk_X509_pop_free would free certificates we do not own.
      sk_X509_free(used.release());
    }
    return "timestamp has not exactly one signer";
  }
  X509* signer = sk_X509_value(used.get(), 0);
  X509_up_ref(signer);
  X509Ptr signer_ref(signer);
  sk_X509_free(used.release());
  if (!has_timestamping_eku(signer)) return "TSA certificate lacks the timeStamping extended key usage";

  // Chain to the authority's root at genTime (each certificate valid then).
  X509StorePtr store(X509_STORE_new());
  X509StackPtr untrusted(sk_X509_new_null());
  X509_STORE_add_cert(store.get(), authority.chain.back().get());
  for (std::size_t i = 0; i + 1 < authority.chain.size(); ++i) {
    X509_up_ref(authority.chain[i].get());
    sk_X509_push(untrusted.get(), authority.chain[i].get());
  }
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_CTX_init(ctx.get(), store.get(), signer, untrusted.get()) != 1)
    throw Error(Errc::internal, "X509_STORE_CTX_init failed: " + openssl_error());
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), static_cast<time_t>(gen_time.time_since_epoch().count()));
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return std::string("TSA certificate does not chain to ") + authority.name + " at genTime: " + X509_verify_cert_error_string(err);
  }
  return "";
}

} // namespace

SignedTimestamp verify_rfc3161(std::string_view der, std::string_view signed_bytes, const TrustedRoot& root)
{
  SignedTimestamp out;
  auto fail = [&](std::string why) {
    ERR_clear_error();
    out.ok = false;
    out.reason = std::move(why);
    return out;
  };
  if (der.empty()) return fail("empty timestamp");
  if (der.size() > k_max_token) return fail("timestamp larger than 1 MiB");
  std::string reason;
  std::string token = token_der(der, reason);
  if (token.empty()) return fail(reason);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(token.data());
  CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(token.size())));
  if (!cms || p != reinterpret_cast<const unsigned char*>(token.data()) + token.size())
    return fail("timestamp is neither a TimeStampResp nor a TimeStampToken");
  if (OBJ_obj2nid(CMS_get0_type(cms.get())) != NID_pkcs7_signed) return fail("timestamp token is not CMS SignedData");
  const ASN1_OBJECT* ctype = CMS_get0_eContentType(cms.get());
  if (!ctype || OBJ_obj2nid(ctype) != NID_id_smime_ct_TSTInfo) return fail("timestamp token does not hold a TSTInfo");
  ASN1_OCTET_STRING** content = CMS_get0_content(cms.get());
  if (!content || !*content) return fail("timestamp token has no TSTInfo content");
  const unsigned char* c = ASN1_STRING_get0_data(*content);
  const unsigned char* cend = c + ASN1_STRING_length(*content);
  TsTstInfoPtr tst(d2i_TS_TST_INFO(nullptr, &c, static_cast<long>(cend - c)));
  if (!tst || c != cend) return fail("timestamp TSTInfo does not parse");
  if (TS_TST_INFO_get_version(tst.get()) != 1) return fail("timestamp TSTInfo version is not 1");

  TS_MSG_IMPRINT* imprint = TS_TST_INFO_get_msg_imprint(tst.get());
  const ASN1_OBJECT* alg = nullptr;
  if (X509_ALGOR* a = imprint ? TS_MSG_IMPRINT_get_algo(imprint) : nullptr) X509_ALGOR_get0(&alg, nullptr, nullptr, a);
  const EVP_MD* md = alg ? imprint_hash(alg) : nullptr;
  if (!md) return fail("timestamp imprint hash is not SHA-256, SHA-384 or SHA-512");
  unsigned char h[EVP_MAX_MD_SIZE];
  unsigned int hlen = 0;
  if (EVP_Digest(signed_bytes.data(), signed_bytes.size(), h, &hlen, md, nullptr) != 1)
    throw Error(Errc::internal, "EVP_Digest failed: " + openssl_error());
  ASN1_OCTET_STRING* msg = TS_MSG_IMPRINT_get_msg(imprint);
  if (!msg || static_cast<unsigned int>(ASN1_STRING_length(msg)) != hlen || std::memcmp(ASN1_STRING_get0_data(msg), h, hlen) != 0)
    return fail("timestamp imprint does not match the signature");
  try {
    out.time = to_time_point(TS_TST_INFO_get_time(tst.get()));
  } catch (const Error&) {
    return fail("timestamp genTime is malformed");
  }

  if (root.timestamp_authorities.empty()) return fail("the trusted root has no timestamp authority");
  std::string last;
  for (const Authority& authority : root.timestamp_authorities) {
    std::string bad = verify_with(token, out.time, authority);
    ERR_clear_error();
    if (bad.empty()) {
      out.ok = true;
      out.reason.clear();
      out.authority = authority.name;
      return out;
    }
    last = bad;
  }
  return fail(root.timestamp_authorities.size() == 1 ? last : "no timestamp authority of the trusted root verifies it (last: " + last + ")");
}

} // namespace ferry::verify::sigstore

// An RFC 3161 timestamp client: the countersignature notation attaches with --timestamp-url.
// Reference: RFC 3161 §2.4 (request/response), §3.4 (HTTP transport); notation-go uses
// tspclient-go the same way (SHA-256 imprint of the primitive signature, certReq, nonce).
#include <ferry/sign.hpp>

#include <ferry/error.hpp>
#include <ferry/remote/curl_http_client.hpp>
#include <ferry/remote/http_client.hpp>
#include <ferry/verify/timestamp.hpp>

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/ts.h>

namespace ferry::sign {

namespace {

using verify::openssl_error;

struct TsReqFree {
  void operator()(TS_REQ* p) const { TS_REQ_free(p); }
};
struct TsRespFree {
  void operator()(TS_RESP* p) const { TS_RESP_free(p); }
};
struct TsMsgImprintFree {
  void operator()(TS_MSG_IMPRINT* p) const { TS_MSG_IMPRINT_free(p); }
};
struct X509AlgorFree {
  void operator()(X509_ALGOR* p) const { X509_ALGOR_free(p); }
};
struct Asn1IntegerFree {
  void operator()(ASN1_INTEGER* p) const { ASN1_INTEGER_free(p); }
};
struct BignumFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using TsReqPtr = std::unique_ptr<TS_REQ, TsReqFree>;
using TsRespPtr = std::unique_ptr<TS_RESP, TsRespFree>;
using TsMsgImprintPtr = std::unique_ptr<TS_MSG_IMPRINT, TsMsgImprintFree>;
using X509AlgorPtr = std::unique_ptr<X509_ALGOR, X509AlgorFree>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, Asn1IntegerFree>;
using BignumPtr = std::unique_ptr<BIGNUM, BignumFree>;

std::string sha256(std::string_view data)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr) != 1)
    throw Error(Errc::internal, "sha256: " + openssl_error());
  return std::string(reinterpret_cast<const char*>(md), n);
}

struct TimestampRequest {
  std::string der;
  Asn1IntegerPtr nonce;
};

TimestampRequest build_request(std::string_view imprint)
{
  auto fail = [](const char* what) { return Error(Errc::internal, std::string("timestamp request: ") + what + ": " + openssl_error()); };
  TsReqPtr req(TS_REQ_new());
  TsMsgImprintPtr mi(TS_MSG_IMPRINT_new());
  X509AlgorPtr algo(X509_ALGOR_new());
  if (!req || !mi || !algo) throw fail("allocation");
  if (TS_REQ_set_version(req.get(), 1) != 1) throw fail("version");
  if (X509_ALGOR_set0(algo.get(), OBJ_nid2obj(NID_sha256), V_ASN1_NULL, nullptr) != 1) throw fail("algorithm");
  if (TS_MSG_IMPRINT_set_algo(mi.get(), algo.get()) != 1) throw fail("algorithm");
  auto md = reinterpret_cast<unsigned char*>(const_cast<char*>(imprint.data()));
  if (TS_MSG_IMPRINT_set_msg(mi.get(), md, static_cast<int>(imprint.size())) != 1) throw fail("imprint");
  if (TS_REQ_set_msg_imprint(req.get(), mi.get()) != 1) throw fail("imprint");
  // A 64-bit random nonce (positive).
  unsigned char rnd[8];
  if (RAND_bytes(rnd, sizeof rnd) != 1) throw fail("nonce");
  rnd[0] &= 0x7f;
  BignumPtr bn(BN_bin2bn(rnd, sizeof rnd, nullptr));
  TimestampRequest out;
  out.nonce.reset(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  if (!out.nonce || TS_REQ_set_nonce(req.get(), out.nonce.get()) != 1) throw fail("nonce");
  if (TS_REQ_set_cert_req(req.get(), 1) != 1) throw fail("certReq");
  unsigned char* der = nullptr;
  int n = i2d_TS_REQ(req.get(), &der);
  if (n <= 0) throw fail("encoding");
  out.der.assign(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

std::string status_text(TS_STATUS_INFO* info)
{
  long status = ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(info));
  static const char* names[] = {"granted", "grantedWithMods", "rejection", "waiting", "revocationWarning",
                                "revocationNotification"};
  std::string s = status >= 0 && status <= 5 ? names[status] : "status " + std::to_string(status);
  if (const auto* text = TS_STATUS_INFO_get0_text(info); text && sk_ASN1_UTF8STRING_num(text) > 0) {
    const ASN1_UTF8STRING* t = sk_ASN1_UTF8STRING_value(text, 0);
    s += ": " + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(t)), static_cast<std::size_t>(ASN1_STRING_length(t)));
  }
  return s;
}

} // namespace

std::string request_timestamp(remote::HttpClient& http, const std::string& url, std::string_view signature,
                              const verify::Chain& tsa_roots, const verify::Chain& signing_chain, verify::TimePoint now)
{
  const std::string where = "timestamp authority " + remote::redact_url(url);
  std::string imprint = sha256(signature);
  TimestampRequest request = build_request(imprint);

  remote::HttpRequest req;
  req.method = "POST";
  req.url = url;
  req.headers.add("Content-Type", "application/timestamp-query");
  req.headers.add("Accept", "application/timestamp-reply");
  req.body = remote::body_from_string(request.der);
  req.body_size = request.der.size();
  std::string body;
  try {
    remote::HttpResponse resp = http.send(req);
    body = resp.read_body(1 << 20);
    if (resp.status != 200) throw Error(Errc::network, "HTTP " + std::to_string(resp.status));
  } catch (...) {
    rethrow_with_context(where);
  }

  const unsigned char* p = reinterpret_cast<const unsigned char*>(body.data());
  TsRespPtr ts(d2i_TS_RESP(nullptr, &p, static_cast<long>(body.size())));
  if (!ts) throw Error(Errc::network, where + ": the response is not an RFC 3161 TimeStampResp: " + openssl_error());
  TS_STATUS_INFO* info = TS_RESP_get_status_info(ts.get());
  long status = ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(info));
  if (status != 0 && status != 1) throw Error(Errc::network, where + ": timestamp not granted (" + status_text(info) + ")");
  PKCS7* token = TS_RESP_get_token(ts.get());
  TS_TST_INFO* tst = TS_RESP_get_tst_info(ts.get());
  if (!token || !tst) throw Error(Errc::network, where + ": granted response without a timestamp token");
  const ASN1_INTEGER* nonce = TS_TST_INFO_get_nonce(tst);
  if (!nonce || ASN1_INTEGER_cmp(nonce, request.nonce.get()) != 0)
    throw Error(Errc::verification_failed, where + ": the timestamp token does not echo the request's nonce");
  TS_MSG_IMPRINT* mi = TS_TST_INFO_get_msg_imprint(tst);
  ASN1_OCTET_STRING* got = mi ? TS_MSG_IMPRINT_get_msg(mi) : nullptr;
  if (!got || std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(got)),
                               static_cast<std::size_t>(ASN1_STRING_length(got))) != imprint)
    throw Error(Errc::verification_failed, where + ": the timestamp token covers other data than the signature");

  unsigned char* der = nullptr;
  int n = i2d_PKCS7(token, &der);
  if (n <= 0) throw Error(Errc::internal, where + ": encoding the token: " + openssl_error());
  std::string token_der(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);

  // Check it as ferry verify (and notation) will, so a token that cannot verify is never embedded.
  auto result = verify::verify_timestamp(token_der, signature, tsa_roots, signing_chain, verify::CrlSet{}, now);
  if (!result.ok) throw Error(Errc::verification_failed, where + ": " + result.reason);
  return token_der;
}

} // namespace ferry::sign

#pragma once
/// RAII handles for the OpenSSL types the verifier uses (design §6: one unique_ptr alias
/// per handle type), and small conversions shared by the verify modules.
#include <openssl/asn1.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/ts.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::verify {

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct X509CrlFree {
  void operator()(X509_CRL* p) const { X509_CRL_free(p); }
};
struct EvpPkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct EvpPkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
struct X509StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct X509StoreCtxFree {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
struct X509StackFree {
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
struct CmsFree {
  void operator()(CMS_ContentInfo* p) const { CMS_ContentInfo_free(p); }
};
struct Pkcs7Free {
  void operator()(PKCS7* p) const { PKCS7_free(p); }
};
struct TsTstInfoFree {
  void operator()(TS_TST_INFO* p) const { TS_TST_INFO_free(p); }
};

using X509Ptr = std::unique_ptr<X509, X509Free>;
using X509CrlPtr = std::unique_ptr<X509_CRL, X509CrlFree>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxFree>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;
using X509StorePtr = std::unique_ptr<X509_STORE, X509StoreFree>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, X509StoreCtxFree>;
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using CmsPtr = std::unique_ptr<CMS_ContentInfo, CmsFree>;
using Pkcs7Ptr = std::unique_ptr<PKCS7, Pkcs7Free>;
using TsTstInfoPtr = std::unique_ptr<TS_TST_INFO, TsTstInfoFree>;

/// A certificate chain, leaf first (as in `x5c` / x5chain).
using Chain = std::vector<X509Ptr>;

/// Verification time and certificate times, at one-second resolution.
using TimePoint = std::chrono::sys_seconds;

/// Drains OpenSSL's error queue into one line ("" when empty).
std::string openssl_error();

/// Parses one DER certificate; throws ferry::Error(Errc::invalid_argument) with a reason.
X509Ptr parse_der_certificate(std::string_view der);
/// Parses a file's content as PEM (one or more CERTIFICATE blocks) or concatenated DER
/// certificates; throws with `source` named when nothing parses or garbage remains.
Chain parse_certificates(std::string_view data, const std::string& source);
/// A new reference to the same certificate.
X509Ptr clone(X509* cert);
/// DER bytes of a certificate.
std::string der_bytes(X509* cert);
/// Lower-case hex SHA-256 of the DER (the Notation thumbprint).
std::string sha256_thumbprint(X509* cert);
/// Subject / issuer as a one-line RFC 2253 string, for messages.
std::string subject_for_display(X509* cert);
std::string issuer_for_display(X509* cert);
/// ASN1_TIME → TimePoint (throws on malformed input).
TimePoint to_time_point(const ASN1_TIME* t);
TimePoint not_before(X509* cert);
TimePoint not_after(X509* cert);
/// RFC 3339 ("2026-11-23T10:00:00Z") rendering and parsing (any offset, fractions).
std::string format_rfc3339(TimePoint t);
/// Go's time.RFC1123Z in UTC ("Tue, 18 Jun 2024 07:30:31 +0000"), the form notation prints
/// expiry and validity bounds in.
std::string format_rfc1123z(TimePoint t);
/// Throws ferry::Error(Errc::invalid_argument) naming `what` on malformed input.
TimePoint parse_rfc3339(std::string_view text, const std::string& what = "time");

} // namespace ferry::verify

// Embedded signed certificate timestamps (RFC 6962 §3.2-3.3) of a Fulcio leaf, verified
// against the trusted root's CT logs (issue 15; sigstore-go's fulcio/certificate SCT check).
#include <ferry/verify/sigstore.hpp>

#include "sigstore_util.hpp"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <chrono>

namespace ferry::verify::sigstore {

using namespace detail;

namespace {

struct Sct {
  std::string log_id;
  std::uint64_t timestamp_ms = 0;
  std::string extensions;
  unsigned hash_alg = 0;
  unsigned sig_alg = 0;
  std::string signature;
};

/// A bounded reader over hostile bytes.
struct Reader {
  std::string_view data;
  bool ok = true;
  bool take(std::size_t n, std::string_view& out)
  {
    if (!ok || data.size() < n) return ok = false;
    out = data.substr(0, n);
    data.remove_prefix(n);
    return true;
  }
  std::uint64_t uint(std::size_t bytes)
  {
    std::string_view v;
    if (!take(bytes, v)) return 0;
    std::uint64_t n = 0;
    for (unsigned char c : v) n = (n << 8) | c;
    return n;
  }
};

/// The SignedCertificateTimestampList inside the extension's OCTET STRING; "" or the reason.
std::string parse_sct_list(std::string_view ext_value, std::vector<Sct>& out)
{
  // DER OCTET STRING (the extension value is itself an OCTET STRING wrapping this one).
  const unsigned char* p = reinterpret_cast<const unsigned char*>(ext_value.data());
  ASN1_OCTET_STRING* inner = d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(ext_value.size()));
  if (!inner) {
    ERR_clear_error();
    return "SCT extension is not an OCTET STRING";
  }
  std::string list(reinterpret_cast<const char*>(ASN1_STRING_get0_data(inner)), static_cast<std::size_t>(ASN1_STRING_length(inner)));
  ASN1_OCTET_STRING_free(inner);
  if (p != reinterpret_cast<const unsigned char*>(ext_value.data()) + ext_value.size()) return "trailing bytes after the SCT list";
  Reader r{list};
  std::uint64_t total = r.uint(2);
  if (!r.ok || total != r.data.size()) return "SCT list length does not match its content";
  if (total == 0) return "empty SCT list";
  while (!r.data.empty()) {
    std::string_view one;
    std::uint64_t len = r.uint(2);
    if (!r.ok || len == 0 || !r.take(len, one)) return "truncated SCT list";
    Reader s{one};
    Sct sct;
    std::string_view v;
    unsigned version = static_cast<unsigned>(s.uint(1));
    if (!s.ok) return "truncated SCT";
    if (version != 0) continue;  // unknown versions are skipped (RFC 6962 §3.3)
    if (!s.take(32, v)) return "truncated SCT";
    sct.log_id = std::string(v);
    sct.timestamp_ms = s.uint(8);
    std::uint64_t ext_len = s.uint(2);
    if (!s.take(ext_len, v)) return "truncated SCT";
    sct.extensions = std::string(v);
    sct.hash_alg = static_cast<unsigned>(s.uint(1));
    sct.sig_alg = static_cast<unsigned>(s.uint(1));
    std::uint64_t sig_len = s.uint(2);
    if (!s.take(sig_len, v) || !s.data.empty()) return "malformed SCT";
    sct.signature = std::string(v);
    out.push_back(std::move(sct));
  }
  return "";
}

void put(std::string& out, std::uint64_t v, int bytes)
{
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

} // namespace

std::string verify_embedded_scts(X509* leaf, X509* issuer, const TrustedRoot& root)
{
  if (!leaf || !issuer) return "no certificate or issuer to check SCTs against";
  int idx = X509_get_ext_by_NID(leaf, NID_ct_precert_scts, -1);
  if (idx < 0) return "certificate has no embedded SCTs";
  if (X509_get_ext_by_NID(leaf, NID_ct_precert_scts, idx) >= 0) return "certificate has more than one SCT extension";
  X509_EXTENSION* ext = X509_get_ext(leaf, idx);
  ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(ext);
  std::vector<Sct> scts;
  if (std::string bad = parse_sct_list(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                                                        static_cast<std::size_t>(ASN1_STRING_length(value))),
                                       scts);
      !bad.empty())
    return bad;
  if (scts.empty()) return "no SCT of a known version";

  // The precertificate's TBS: the leaf's TBS without the SCT extension, re-encoded.
  X509Ptr pre(X509_dup(leaf));
  if (!pre) return "certificate does not copy: " + openssl_error();
  X509_EXTENSION_free(X509_delete_ext(pre.get(), idx));
  unsigned char* tbs_der = nullptr;
  int tbs_len = i2d_re_X509_tbs(pre.get(), &tbs_der);
  if (tbs_len <= 0) return "precertificate TBS does not encode: " + openssl_error();
  std::string tbs(reinterpret_cast<char*>(tbs_der), static_cast<std::size_t>(tbs_len));
  OPENSSL_free(tbs_der);
  if (tbs.size() >= (1u << 24)) return "precertificate TBS larger than 16 MiB";
  unsigned char* spki = nullptr;
  int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(issuer), &spki);
  if (spki_len <= 0) return "issuer public key does not encode: " + openssl_error();
  std::string issuer_key_hash = sha256(std::string_view(reinterpret_cast<char*>(spki), static_cast<std::size_t>(spki_len)));
  OPENSSL_free(spki);

  std::string reason;
  for (const Sct& sct : scts) {
    const LogInstance* log = root.ctlog(sct.log_id);
    if (!log) {
      if (reason.empty()) reason = "SCT from CT log " + hex(sct.log_id) + ", which is not in the trusted root";
      continue;
    }
    auto when = TimePoint(std::chrono::floor<std::chrono::seconds>(
        std::chrono::milliseconds(static_cast<std::int64_t>(sct.timestamp_ms & 0x7fffffffffffffffULL))));
    if (!log->valid_for.contains(when)) {
      reason = "SCT time " + format_rfc3339(when) + " is outside the validFor of CT log " + hex(sct.log_id);
      continue;
    }
    std::string signed_data;
    signed_data.reserve(tbs.size() + 64 + sct.extensions.size());
    put(signed_data, 0, 1);  // sct_version v1
    put(signed_data, 0, 1);  // signature_type certificate_timestamp
    put(signed_data, sct.timestamp_ms, 8);
    put(signed_data, 1, 2);  // entry_type precert_entry
    signed_data += issuer_key_hash;
    put(signed_data, tbs.size(), 3);
    signed_data += tbs;
    put(signed_data, sct.extensions.size(), 2);
    signed_data += sct.extensions;
    if (verify_signature(log->key.get(), signed_data, sct.signature)) return "";
    reason = "SCT signature of CT log " + hex(sct.log_id) + " does not verify";
  }
  return reason;
}

} // namespace ferry::verify::sigstore

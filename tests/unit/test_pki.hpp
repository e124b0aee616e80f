#pragma once
/// A test PKI generated at test time with the OpenSSL C API (design §6): keys, CA / leaf /
/// TSA certificates with chosen extensions, CRLs, and signed JWS / COSE envelopes.
/// Header-only so any unit test can include it.
#include <ferry/verify/cbor.hpp>
#include <ferry/verify/openssl.hpp>

#include "test_clock.hpp"

#include <nlohmann/json.hpp>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ferry::test_pki {

using verify::EvpPkeyPtr;
using verify::TimePoint;
using verify::X509CrlPtr;
using verify::X509Ptr;

/// The pinned clock (test_clock.hpp, 2026-11-23T00:00:00Z): certificates and CRLs default to
/// validity windows around it; tests sign and verify at instants derived from it.
using test_clock::k_now;
inline constexpr std::chrono::seconds days(long n) { return std::chrono::seconds(n * 86400L); }

[[noreturn]] inline void pki_fail(const std::string& what)
{
  throw std::runtime_error("test_pki: " + what + ": " + verify::openssl_error());
}

/// make_key("rsa", 2048|3072|4096|1024), make_key("ec", 256|384|521|224), make_key("ed25519").
inline EvpPkeyPtr make_key(const std::string& type, int size = 0)
{
  EVP_PKEY* k = nullptr;
  if (type == "rsa") {
    k = EVP_RSA_gen(static_cast<unsigned>(size ? size : 2048));
  } else if (type == "ec") {
    const char* curve = size == 384 ? "P-384" : size == 521 ? "P-521" : size == 224 ? "P-224" : "P-256";
    k = EVP_EC_gen(curve);
  } else if (type == "ed25519") {
    k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  }
  if (!k) pki_fail("key generation " + type);
  return EvpPkeyPtr(k);
}

/// OpenSSL KU_* bits for CertSpec::key_usage.
inline constexpr int k_ku_digital_signature = 0x80;
inline constexpr int k_ku_key_encipherment = 0x20;
inline constexpr int k_ku_key_cert_sign = 0x04;
inline constexpr int k_ku_crl_sign = 0x02;

struct CertSpec {
  std::string subject = "CN=Test Leaf,O=Notary,L=Seattle,ST=WA,C=US";
  EVP_PKEY* key = nullptr;          ///< the subject's key (required)
  X509* issuer = nullptr;           ///< nullptr: self-issued, signed by `key`
  EVP_PKEY* issuer_key = nullptr;   ///< required with `issuer`
  bool basic_constraints = true;    ///< include the extension
  bool bc_critical = true;
  bool is_ca = false;
  int path_len = -1;                ///< -1: absent
  int key_usage = -1;               ///< -1: absent; else OpenSSL KU_* bits
  bool ku_critical = true;
  std::vector<std::string> ekus;    ///< "codeSigning", "timeStamping", "serverAuth", OIDs ...
  bool eku_critical = false;
  std::optional<TimePoint> not_before;  ///< default k_now - 1 day
  std::optional<TimePoint> not_after;   ///< default k_now + 365 days
  long serial = 1;
  std::string crl_dp;               ///< CRL distribution point URL, optional
  std::string ocsp_url;             ///< AIA OCSP URL, optional
  std::string md = "sha256";        ///< certificate signature digest ("sha1" for negative tests)
  int version = 3;                  ///< 1 or 3
};

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) pki_fail("extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

inline X509_NAME* parse_name(const std::string& dn)
{
  // "CN=a,O=b,C=US" (written in display order, most specific first) → X509_NAME with C first.
  std::vector<std::pair<std::string, std::string>> parts;
  std::size_t start = 0;
  while (start <= dn.size()) {
    std::size_t comma = dn.find(',', start);
    std::string part = dn.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto eq = part.find('=');
    if (eq != std::string::npos) parts.emplace_back(part.substr(0, eq), part.substr(eq + 1));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  X509_NAME* name = X509_NAME_new();
  for (auto it = parts.rbegin(); it != parts.rend(); ++it)
    X509_NAME_add_entry_by_txt(name, it->first.c_str(), MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(it->second.c_str()), -1, -1, 0);
  return name;
}

inline void set_time(ASN1_TIME* t, TimePoint tp) { ASN1_TIME_set(t, static_cast<time_t>(tp.time_since_epoch().count())); }

inline X509Ptr make_cert(const CertSpec& spec)
{
  if (!spec.key) throw std::runtime_error("test_pki: CertSpec.key is required");
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), spec.version - 1);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), spec.serial);
  X509_NAME* name = parse_name(spec.subject);
  X509_set_subject_name(cert.get(), name);
  if (spec.issuer) X509_set_issuer_name(cert.get(), X509_get_subject_name(spec.issuer));
  else X509_set_issuer_name(cert.get(), name);
  X509_NAME_free(name);
  set_time(X509_getm_notBefore(cert.get()), spec.not_before.value_or(k_now - days(1)));
  set_time(X509_getm_notAfter(cert.get()), spec.not_after.value_or(k_now + days(365)));
  X509_set_pubkey(cert.get(), spec.key);
  X509* issuer = spec.issuer ? spec.issuer : cert.get();
  if (spec.version == 3) {
    if (spec.basic_constraints) {
      std::string v = std::string(spec.bc_critical ? "critical," : "") + (spec.is_ca ? "CA:TRUE" : "CA:FALSE");
      if (spec.is_ca && spec.path_len >= 0) v += ",pathlen:" + std::to_string(spec.path_len);
      add_ext(cert.get(), issuer, NID_basic_constraints, v);
    }
    if (spec.key_usage >= 0) {
      std::string v = spec.ku_critical ? "critical" : "";
      auto add = [&](int bit, const char* n) {
        if (spec.key_usage & bit) v += std::string(v.empty() ? "" : ",") + n;
      };
      add(0x80, "digitalSignature");
      add(0x40, "nonRepudiation");
      add(0x20, "keyEncipherment");
      add(0x10, "dataEncipherment");
      add(0x08, "keyAgreement");
      add(0x04, "keyCertSign");
      add(0x02, "cRLSign");
      if (v.empty() || v == "critical") {
        // An empty KU: encode the extension with no bits set.
        ASN1_BIT_STRING* bits = ASN1_BIT_STRING_new();
        X509_add1_ext_i2d(cert.get(), NID_key_usage, bits, spec.ku_critical ? 1 : 0, X509V3_ADD_DEFAULT);
        ASN1_BIT_STRING_free(bits);
      } else {
        add_ext(cert.get(), issuer, NID_key_usage, v);
      }
    }
    if (!spec.ekus.empty()) {
      std::string v = spec.eku_critical ? "critical" : "";
      for (const auto& e : spec.ekus) v += (v.empty() ? "" : ",") + e;
      add_ext(cert.get(), issuer, NID_ext_key_usage, v);
    }
    add_ext(cert.get(), issuer, NID_subject_key_identifier, "hash");
    if (!spec.crl_dp.empty()) add_ext(cert.get(), issuer, NID_crl_distribution_points, "URI:" + spec.crl_dp);
    if (!spec.ocsp_url.empty()) add_ext(cert.get(), issuer, NID_info_access, "OCSP;URI:" + spec.ocsp_url);
  }
  EVP_PKEY* signer = spec.issuer ? spec.issuer_key : spec.key;
  const EVP_MD* md = EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519 ? nullptr : EVP_get_digestbyname(spec.md.c_str());
  if (X509_sign(cert.get(), signer, md) <= 0) pki_fail("X509_sign");
  return cert;
}

/// A CRL issued by `issuer` listing `revoked_serials` (revoked at this_update); thisUpdate
/// defaults to k_now - 1 day, nextUpdate to k_now + 30 days.
inline X509CrlPtr make_crl(X509* issuer, EVP_PKEY* issuer_key, const std::vector<long>& revoked_serials,
                           std::optional<TimePoint> this_update = std::nullopt,
                           std::optional<TimePoint> next_update = std::nullopt, long crl_number = 1)
{
  X509CrlPtr crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer));
  TimePoint tu = this_update.value_or(k_now - days(1));
  ASN1_TIME* t = ASN1_TIME_new();
  set_time(t, tu);
  X509_CRL_set1_lastUpdate(crl.get(), t);
  set_time(t, next_update.value_or(k_now + days(30)));
  X509_CRL_set1_nextUpdate(crl.get(), t);
  for (long s : revoked_serials) {
    X509_REVOKED* r = X509_REVOKED_new();
    ASN1_INTEGER* serial = ASN1_INTEGER_new();
    ASN1_INTEGER_set(serial, s);
    X509_REVOKED_set_serialNumber(r, serial);
    ASN1_INTEGER_free(serial);
    set_time(t, tu);
    X509_REVOKED_set_revocationDate(r, t);
    X509_CRL_add0_revoked(crl.get(), r);
  }
  ASN1_TIME_free(t);
  ASN1_INTEGER* num = ASN1_INTEGER_new();
  ASN1_INTEGER_set(num, crl_number);
  X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, num, 0, 0);
  ASN1_INTEGER_free(num);
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), issuer_key, EVP_sha256()) <= 0) pki_fail("X509_CRL_sign");
  return crl;
}

// ---- encodings ---------------------------------------------------------------------------

inline std::string b64(std::string_view data, bool url)
{
  static const char* std_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static const char* url_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* a = url ? url_chars : std_chars;
  std::string out;
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(data[k])); };
  for (; i + 2 < data.size(); i += 3) {
    unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63], a[v & 63]};
  }
  if (data.size() - i == 1) {
    unsigned v = byte(i) << 16;
    out += {a[v >> 18], a[(v >> 12) & 63]};
    if (!url) out += "==";
  } else if (data.size() - i == 2) {
    unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += {a[v >> 18], a[(v >> 12) & 63], a[(v >> 6) & 63]};
    if (!url) out += "=";
  }
  return out;
}
inline std::string b64url(std::string_view d) { return b64(d, true); }
inline std::string b64std(std::string_view d) { return b64(d, false); }

// ---- signing -----------------------------------------------------------------------------

inline const EVP_MD* md_for_alg(const std::string& alg)
{
  std::string bits = alg.substr(2);
  return bits == "384" ? EVP_sha384() : bits == "512" ? EVP_sha512() : EVP_sha256();
}

/// Signs `data` like a Notation signer: RSASSA-PSS (salt = hash length) for PS*, ECDSA with
/// the raw fixed-width r||s encoding for ES*. The digest follows `alg`, whatever the key.
inline std::string sign_raw(EVP_PKEY* key, const std::string& alg, std::string_view data, int pss_salt = RSA_PSS_SALTLEN_DIGEST)
{
  const EVP_MD* md = md_for_alg(alg);
  verify::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key) != 1) pki_fail("DigestSignInit");
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, pss_salt);
    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md);
  }
  size_t n = 0;
  auto in = reinterpret_cast<const unsigned char*>(data.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &n, in, data.size()) != 1) pki_fail("DigestSign size");
  std::string sig(n, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, in, data.size()) != 1)
    pki_fail("DigestSign");
  sig.resize(n);
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return sig;
  // DER ECDSA-Sig-Value → r||s, each padded to the curve's byte length.
  auto p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  if (!es) pki_fail("d2i_ECDSA_SIG");
  int w = (EVP_PKEY_get_bits(key) + 7) / 8;
  std::string raw(static_cast<std::size_t>(2 * w), '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), w);
  BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + w, w);
  ECDSA_SIG_free(es);
  return raw;
}

/// The notary payload for a target descriptor.
inline std::string payload_for(const std::string& media_type = "application/vnd.oci.image.manifest.v1+json",
                               const std::string& digest =
                                   "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",
                               std::uint64_t size = 517)
{
  nlohmann::json j = {{"targetArtifact", {{"mediaType", media_type}, {"digest", digest}, {"size", size}}}};
  return j.dump();
}

/// A Notation-style JWS protected header.
inline nlohmann::json jws_protected(const std::string& alg, TimePoint signing_time,
                                    std::optional<TimePoint> expiry = std::nullopt,
                                    const std::string& scheme = "notary.x509")
{
  nlohmann::json h = {{"alg", alg},
                      {"cty", "application/vnd.cncf.notary.payload.v1+json"},
                      {"io.cncf.notary.signingScheme", scheme}};
  nlohmann::json crit = {"io.cncf.notary.signingScheme"};
  if (scheme == "notary.x509.signingAuthority") {
    h["io.cncf.notary.authenticSigningTime"] = verify::format_rfc3339(signing_time);
    crit.push_back("io.cncf.notary.authenticSigningTime");
  } else {
    h["io.cncf.notary.signingTime"] = verify::format_rfc3339(signing_time);
  }
  if (expiry) {
    h["io.cncf.notary.expiry"] = verify::format_rfc3339(*expiry);
    crit.push_back("io.cncf.notary.expiry");
  }
  h["crit"] = crit;
  return h;
}

/// A flattened JWS JSON envelope. `sign_alg` picks the digest used for signing (defaults to
/// the header's alg). `header` is merged into the unprotected header.
inline std::string make_jws(const std::string& protected_json, const std::string& payload, EVP_PKEY* key,
                            const std::vector<X509*>& chain, const std::string& sign_alg,
                            const nlohmann::json& header = nlohmann::json::object())
{
  std::string prot = b64url(protected_json);
  std::string pay = b64url(payload);
  std::string sig = b64url(sign_raw(key, sign_alg, prot + "." + pay));
  nlohmann::json x5c = nlohmann::json::array();
  for (X509* c : chain) x5c.push_back(b64std(verify::der_bytes(c)));
  nlohmann::json h = {{"x5c", x5c}, {"io.cncf.notary.signingAgent", "ferry-test/1.0"}};
  for (auto it = header.begin(); it != header.end(); ++it) h[it.key()] = it.value();
  nlohmann::json env = {{"payload", pay}, {"protected", prot}, {"header", h}, {"signature", sig}};
  return env.dump();
}

inline std::string make_jws(const nlohmann::json& protected_header, const std::string& payload, EVP_PKEY* key,
                            const std::vector<X509*>& chain)
{
  return make_jws(protected_header.dump(), payload, key, chain, protected_header.value("alg", std::string("PS256")));
}

/// COSE algorithm identifiers.
inline std::int64_t cose_alg_id(const std::string& alg)
{
  if (alg == "PS256") return -37;
  if (alg == "PS384") return -38;
  if (alg == "PS512") return -39;
  if (alg == "ES256") return -7;
  if (alg == "ES384") return -35;
  return -36;
}

/// A tag-1 epoch time.
inline std::string cose_time(TimePoint t) { return verify::cbor::encode_tag(1, verify::cbor::encode_int(t.time_since_epoch().count())); }

/// Entries of a Notation-style COSE protected header (encoded key, encoded value), so tests
/// can edit them before encode_map.
inline std::vector<std::pair<std::string, std::string>> cose_protected_entries(
    const std::string& alg, TimePoint signing_time, std::optional<TimePoint> expiry = std::nullopt,
    const std::string& scheme = "notary.x509")
{
  using namespace verify::cbor;
  std::vector<std::string> crit = {encode_text("io.cncf.notary.signingScheme")};
  std::vector<std::pair<std::string, std::string>> e = {
      {encode_int(1), encode_int(cose_alg_id(alg))},
      {encode_int(3), encode_text("application/vnd.cncf.notary.payload.v1+json")},
      {encode_text("io.cncf.notary.signingScheme"), encode_text(scheme)},
  };
  if (scheme == "notary.x509.signingAuthority") {
    e.emplace_back(encode_text("io.cncf.notary.authenticSigningTime"), cose_time(signing_time));
    crit.push_back(encode_text("io.cncf.notary.authenticSigningTime"));
  } else {
    e.emplace_back(encode_text("io.cncf.notary.signingTime"), cose_time(signing_time));
  }
  if (expiry) {
    e.emplace_back(encode_text("io.cncf.notary.expiry"), cose_time(*expiry));
    crit.push_back(encode_text("io.cncf.notary.expiry"));
  }
  e.emplace_back(encode_int(2), encode_array(crit));
  return e;
}

/// x5chain as COSE carries it: an array of bstr (leaf first).
inline std::string cose_x5chain(const std::vector<X509*>& chain)
{
  std::vector<std::string> items;
  for (X509* c : chain) items.push_back(verify::cbor::encode_bytes(verify::der_bytes(c)));
  return verify::cbor::encode_array(items);
}

inline std::string cose_unprotected(const std::vector<X509*>& chain)
{
  using namespace verify::cbor;
  return encode_map({{encode_int(33), cose_x5chain(chain)},
                     {encode_text("io.cncf.notary.signingAgent"), encode_text("ferry-test/1.0")}});
}

/// A COSE_Sign1 message (tagged 18 unless `tagged` is false) over the given protected map
/// bytes, unprotected map (encoded) and payload, signed with `sign_alg` (PSS salt = hash len).
inline std::string make_cose(const std::string& protected_map, const std::string& unprotected_map,
                             const std::string& payload, EVP_PKEY* key, const std::string& sign_alg, bool tagged = true)
{
  using namespace verify::cbor;
  std::string tbs = encode_array({encode_text("Signature1"), encode_bytes(protected_map), encode_bytes(""), encode_bytes(payload)});
  std::string sig = sign_raw(key, sign_alg, tbs);
  std::string msg = encode_array({encode_bytes(protected_map), unprotected_map, encode_bytes(payload), encode_bytes(sig)});
  return tagged ? encode_tag(18, msg) : msg;
}

/// A typical chain: root CA → intermediate CA → code-signing leaf with `leaf_key`.
struct TestChain {
  EvpPkeyPtr root_key, intermediate_key, leaf_key;
  X509Ptr root, intermediate, leaf;
  std::vector<X509*> chain() const { return {leaf.get(), intermediate.get(), root.get()}; }
};

inline CertSpec ca_spec(const std::string& subject, EVP_PKEY* key, X509* issuer = nullptr, EVP_PKEY* issuer_key = nullptr)
{
  CertSpec s;
  s.subject = subject;
  s.key = key;
  s.issuer = issuer;
  s.issuer_key = issuer_key;
  s.is_ca = true;
  s.key_usage = k_ku_key_cert_sign | k_ku_crl_sign;
  return s;
}

inline CertSpec leaf_spec(EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key)
{
  CertSpec s;
  s.subject = "CN=Test Leaf,O=Notary,L=Seattle,ST=WA,C=US";
  s.key = key;
  s.issuer = issuer;
  s.issuer_key = issuer_key;
  s.key_usage = k_ku_digital_signature;
  s.ekus = {"codeSigning"};
  return s;
}

inline TestChain make_chain(EvpPkeyPtr leaf_key)
{
  TestChain c;
  c.root_key = make_key("rsa", 2048);
  c.intermediate_key = make_key("rsa", 2048);
  c.leaf_key = std::move(leaf_key);
  c.root = make_cert(ca_spec("CN=Test Root,O=Notary,L=Seattle,ST=WA,C=US", c.root_key.get()));
  auto is = ca_spec("CN=Test Intermediate,O=Notary,L=Seattle,ST=WA,C=US", c.intermediate_key.get(), c.root.get(),
                    c.root_key.get());
  is.serial = 2;
  c.intermediate = make_cert(is);
  auto ls = leaf_spec(c.leaf_key.get(), c.intermediate.get(), c.intermediate_key.get());
  ls.serial = 3;
  c.leaf = make_cert(ls);
  return c;
}

// ---- upstream vectors ----------------------------------------------------------------------

/// The upstream Notation test vectors (../shared/notation relative to the repository root):
/// $FERRY_SHARED (the shared folder, or its notation/ folder itself), else the first
/// `shared/notation` found walking up from the current directory. nullopt when absent:
/// tests then MESSAGE and return.
inline std::optional<std::filesystem::path> notation_vectors_dir()
{
  namespace fs = std::filesystem;
  std::error_code ec;
  if (const char* env = std::getenv("FERRY_SHARED"); env && *env) {
    fs::path p(env);
    if (fs::exists(p / "notation" / "CASES.md", ec)) return p / "notation";
    if (fs::exists(p / "CASES.md", ec)) return p;
  }
  fs::path dir = fs::current_path(ec);
  for (int i = 0; i < 12 && !dir.empty(); ++i) {
    if (fs::exists(dir / "shared" / "notation" / "CASES.md", ec)) return dir / "shared" / "notation";
    if (!dir.has_parent_path() || dir.parent_path() == dir) break;
    dir = dir.parent_path();
  }
  return std::nullopt;
}

inline std::string read_file(const std::filesystem::path& p)
{
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("test_pki: cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

} // namespace ferry::test_pki

#include <ferry/verify/trust_store.hpp>

#include <ferry/error.hpp>
#include <ferry/verify/dn.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <sys/stat.h>

// Reference: ../shared/notation/SPEC.md §5.1; ngo:verifier/truststore/truststore.go
// (GetCertificates, ValidateCertificates, isRootCACertificate). Messages are notation-go's.

namespace ferry::verify {

namespace {

std::string q(std::string_view s) { return go_quote(s); }

/// notation-core-go x509.ReadCertificateFile: PEM when a PEM block is found (every block must
/// hold one DER certificate), else concatenated DER. An empty file gives no certificates.
Chain read_certificates(const std::string& data)
{
  Chain out;
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) throw Error(Errc::internal, "BIO_new_mem_buf failed");
  bool pem = false;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* body = nullptr;
    long len = 0;
    ERR_clear_error();
    if (PEM_read_bio(bio.get(), &name, &header, &body, &len) != 1) {
      unsigned long e = ERR_peek_last_error();
      bool end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
      std::string why = openssl_error();
      if (end) break;
      throw Error(Errc::invalid_argument, "malformed PEM block: " + why);
    }
    pem = true;
    std::string der(reinterpret_cast<char*>(body), static_cast<std::size_t>(len));
    std::string block_name = name ? name : "";
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(body);
    try {
      out.push_back(parse_der_certificate(der));
    } catch (const Error& e) {
      throw Error(Errc::invalid_argument, "PEM block \"" + block_name + "\": " + e.what());
    }
  }
  ERR_clear_error();
  if (pem) return out;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
  const unsigned char* end = p + data.size();
  while (p < end) {
    X509* c = d2i_X509(nullptr, &p, static_cast<long>(end - p));
    if (!c) throw Error(Errc::invalid_argument, "not a PEM or DER certificate: " + openssl_error());
    out.emplace_back(c);
  }
  return out;
}

struct ExtensionInfo {
  int version;             ///< 1-based, as Go's Certificate.Version
  bool basic_constraints;  ///< Go BasicConstraintsValid
  bool is_ca;              ///< Go IsCA
  std::uint32_t key_usage; ///< Go KeyUsage bits (0 when absent)
};

ExtensionInfo extension_info(X509* cert)
{
  std::uint32_t flags = X509_get_extension_flags(cert);
  ExtensionInfo info{};
  info.version = static_cast<int>(X509_get_version(cert)) + 1;
  info.basic_constraints = (flags & EXFLAG_BCONS) != 0;
  info.is_ca = info.basic_constraints && (flags & EXFLAG_CA) != 0;
  info.key_usage = (flags & EXFLAG_KUSAGE) ? X509_get_key_usage(cert) : 0;
  return info;
}

/// Go's name of an insecure signature algorithm (SignatureAlgorithm.String).
std::string go_algorithm_name(int sig_nid)
{
  switch (sig_nid) {
  case NID_md2WithRSAEncryption: return "MD2-RSA";
  case NID_md5WithRSAEncryption: return "MD5-RSA";
  case NID_sha1WithRSAEncryption: return "SHA1-RSA";
  case NID_ecdsa_with_SHA1: return "ECDSA-SHA1";
  case NID_dsaWithSHA1: return "DSA-SHA1";
  default: return OBJ_nid2ln(sig_nid);
  }
}

/// Go's checkSignature for `cert` under `key`: MD5 (and MD2/MD4) always refused, SHA-1 only
/// when `allow_sha1` (Certificate.CheckSignature allows it, CheckSignatureFrom does not);
/// the failure text when it does not verify.
std::optional<std::string> check_signature(X509* cert, EVP_PKEY* key, bool allow_sha1)
{
  int md_nid = NID_undef;
  if (X509_get_signature_info(cert, &md_nid, nullptr, nullptr, nullptr) != 1) {
    ERR_clear_error();
    return std::string("x509: cannot verify signature: algorithm unimplemented");
  }
  if (md_nid == NID_md5 || md_nid == NID_md2 || md_nid == NID_md4 || (md_nid == NID_sha1 && !allow_sha1))
    return "x509: cannot verify signature: insecure algorithm " + go_algorithm_name(X509_get_signature_nid(cert));
  if (!key || X509_verify(cert, key) != 1) {
    ERR_clear_error();
    int type = key ? EVP_PKEY_get_base_id(key) : NID_undef;
    if (type == EVP_PKEY_RSA || type == EVP_PKEY_RSA_PSS) return std::string("crypto/rsa: verification error");
    if (type == EVP_PKEY_EC) return std::string("x509: ECDSA verification failure");
    if (type == EVP_PKEY_ED25519) return std::string("x509: Ed25519 verification failure");
    return std::string("x509: signature verification failure");
  }
  return std::nullopt;
}

/// Go's Certificate.CheckSignatureFrom(parent).
std::optional<std::string> check_signature_from(X509* cert, X509* parent)
{
  ExtensionInfo p = extension_info(parent);
  if ((p.version == 3 && !p.basic_constraints) || (p.basic_constraints && !p.is_ca))
    return std::string("x509: invalid signature: parent certificate cannot sign this kind of certificate");
  if (p.key_usage != 0 && (p.key_usage & KU_KEY_CERT_SIGN) == 0)
    return std::string("x509: invalid signature: parent certificate cannot sign this kind of certificate");
  return check_signature(cert, X509_get0_pubkey(parent), false);
}

std::string name_der(const X509_NAME* name)
{
  const unsigned char* der = nullptr;
  std::size_t len = 0;
  if (X509_NAME_get0_der(name, &der, &len) != 1) return {};
  return std::string(reinterpret_cast<const char*>(der), len);
}

/// ngo ValidateCertificates: each certificate is a CA or self-signed.
std::optional<std::string> validate_certificates(const Chain& certs)
{
  if (certs.empty()) return std::string("input certs cannot be empty");
  for (const auto& cert : certs) {
    if (extension_info(cert.get()).is_ca) continue;
    if (check_signature(cert.get(), X509_get0_pubkey(cert.get()), true))
      return "certificate with subject " + q(go_name(X509_get_subject_name(cert.get())).text) +
             " is not a CA certificate or self-signed signing certificate";
  }
  return std::nullopt;
}

/// ngo isRootCACertificate: signs itself as a CA and is self-issued.
std::optional<std::string> root_ca_failure(X509* cert)
{
  const std::string subject = go_name(X509_get_subject_name(cert)).text;
  if (auto err = check_signature_from(cert, cert))
    return "certificate with subject " + q(subject) + " is not a root CA certificate: " + *err;
  if (name_der(X509_get_subject_name(cert)) != name_der(X509_get_issuer_name(cert)))
    return "certificate with subject " + q(subject) + " is not a root CA certificate: issuer (" +
           go_name(X509_get_issuer_name(cert)).text + ") and subject (" + subject + ") are not the same";
  return std::nullopt;
}

bool valid_store_name(const std::string& n)
{
  return !n.empty() && std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

std::string read_file(const std::filesystem::path& path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Errc::io, std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error(Errc::io, "read error");
  return s.str();
}

} // namespace

Chain TrustStore::load(const std::string& type, const std::string& name) const
{
  auto fail = [&](const std::string& reason) -> Error {
    return Error(Errc::invalid_argument, m_display + ": " + reason);
  };
  if (type != "ca" && type != "signingAuthority" && type != "tsa") throw fail("unsupported trust store type: " + type);
  if (!valid_store_name(name))
    throw fail("trust store name needs to follow [a-zA-Z0-9_.-]+ format, " + name + " is invalid");

  const std::filesystem::path dir = m_root / "x509" / type / name;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      throw fail("the trust store " + q(name) + " of type " + q(type) + " does not exist");
    throw fail("failed to access the trust store " + q(name) + " of type " + q(type) + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode))
    throw fail("the trust store " + name + " of type " + type + " with path " +
               (std::filesystem::path(m_display) / "x509" / type / name).string() +
               " is not a regular directory (symlinks are not supported)");

  // os.ReadDir: entries sorted by name.
  std::vector<std::string> files;
  try {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) files.push_back(entry.path().filename().string());
  } catch (const std::filesystem::filesystem_error& e) {
    throw fail("failed to access the trust store " + q(name) + " of type " + q(type) + ": " + e.code().message());
  }
  std::sort(files.begin(), files.end());

  Chain certificates;
  for (const auto& file : files) {
    const std::filesystem::path path = dir / file;
    const std::string where = file + " in trust store " + name + " of type " + type;
    std::error_code ec;
    auto status = std::filesystem::symlink_status(path, ec);
    if (ec || !std::filesystem::is_regular_file(status))
      throw fail("trusted certificate " + where + " is not a regular file (directories or symlinks are not supported)");
    Chain certs;
    try {
      certs = read_certificates(read_file(path));
    } catch (const Error& e) {
      throw fail("failed to read the trusted certificate " + where + ": " + e.what());
    }
    if (auto err = validate_certificates(certs))
      throw fail("failed to validate the trusted certificate " + where + ": " + *err);
    if (type == "tsa") {
      // TSA certificates in a trust store must be root CA certificates.
      for (const auto& cert : certs)
        if (auto err = root_ca_failure(cert.get())) throw fail("trusted certificate " + where + " is invalid: " + *err);
    }
    for (auto& cert : certs) certificates.push_back(std::move(cert));
  }
  if (certificates.empty())
    throw fail("no x509 certificates were found in trust store " + q(name) + " of type " + q(type));
  return certificates;
}

} // namespace ferry::verify

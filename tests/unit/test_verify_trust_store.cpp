#include <doctest/doctest.h>

#include <ferry/error.hpp>
#include <ferry/verify/openssl.hpp>
#include <ferry/verify/trust_store.hpp>

#include "test_clock.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <unistd.h>

using namespace ferry;
using namespace ferry::verify;

namespace {

namespace fs = std::filesystem;

struct CertOptions {
  bool basic_constraints = true;
  bool ca = false;
  std::string key_usage; ///< e.g. "critical,keyCertSign,cRLSign"; empty: none
  int version = 3;
  const EVP_MD* md = nullptr; ///< default SHA-256
  std::string issuer_name;    ///< overrides the issuer name (default: the issuer's subject)
};

struct Issued {
  X509Ptr cert;
  EvpPkeyPtr key;
};

/// A P-256 certificate "CN=<cn>,O=Notary,ST=WA,C=US"; self-signed when `issuer` is null.
Issued store_cert(const std::string& cn, const CertOptions& o = {}, const Issued* issuer = nullptr)
{
  Issued out;
  out.key.reset(EVP_EC_gen("P-256"));
  REQUIRE(out.key);
  out.cert.reset(X509_new());
  X509* c = out.cert.get();
  X509_set_version(c, o.version - 1);
  static long serial = 100;
  ASN1_INTEGER_set(X509_get_serialNumber(c), ++serial);
  ASN1_TIME_set(X509_getm_notBefore(c), test_clock::k_now_time_t - 60);
  ASN1_TIME_set(X509_getm_notAfter(c), test_clock::k_now_time_t + 86400);
  X509_NAME* name = X509_get_subject_name(c);
  for (auto [field, value] : {std::pair<const char*, std::string>{"C", "US"}, {"ST", "WA"}, {"O", "Notary"}, {"CN", cn}})
    X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.data()),
                               static_cast<int>(value.size()), -1, 0);
  if (!o.issuer_name.empty()) {
    X509_NAME* iname = X509_NAME_new();
    X509_NAME_add_entry_by_txt(iname, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(o.issuer_name.data()),
                               static_cast<int>(o.issuer_name.size()), -1, 0);
    X509_set_issuer_name(c, iname);
    X509_NAME_free(iname);
  } else {
    X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer->cert.get()) : name);
  }
  X509_set_pubkey(c, out.key.get());
  if (o.version == 3) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer->cert.get() : c, c, nullptr, nullptr, 0);
    auto add = [&](int nid, const std::string& value) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
      REQUIRE(ext);
      X509_add_ext(c, ext, -1);
      X509_EXTENSION_free(ext);
    };
    if (o.basic_constraints) add(NID_basic_constraints, o.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    if (!o.key_usage.empty()) add(NID_key_usage, o.key_usage);
  }
  REQUIRE(X509_sign(c, issuer ? issuer->key.get() : out.key.get(), o.md ? o.md : EVP_sha256()) > 0);
  return out;
}

std::string pem_of(X509* cert)
{
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

CertOptions opts(bool basic_constraints, bool ca, std::string key_usage, int version = 3, const EVP_MD* md = nullptr)
{
  CertOptions o;
  o.basic_constraints = basic_constraints;
  o.ca = ca;
  o.key_usage = std::move(key_usage);
  o.version = version;
  o.md = md;
  return o;
}

CertOptions root_ca() { return opts(true, true, "critical,keyCertSign,cRLSign"); }

/// A temporary trust store root (`<tmp>/x509/<type>/<name>/...`).
struct StoreDir {
  fs::path root;
  StoreDir()
  {
    std::string tmpl = (fs::temp_directory_path() / "ferry-ts-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    root = tmpl;
  }
  ~StoreDir()
  {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  fs::path store(const std::string& type, const std::string& name) const
  {
    auto dir = root / "x509" / type / name;
    fs::create_directories(dir);
    return dir;
  }
  void write(const std::string& type, const std::string& name, const std::string& file, const std::string& content) const
  {
    std::ofstream out(store(type, name) / file, std::ios::binary);
    out << content;
  }
  std::string error(const std::string& type, const std::string& name) const
  {
    try {
      TrustStore(root).load(type, name);
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_argument);
      std::string m = e.what();
      std::string prefix = root.string() + ": ";
      REQUIRE(m.rfind(prefix, 0) == 0);
      return m.substr(prefix.size());
    }
    return "";
  }
};

std::optional<fs::path> store_shared_notation()
{
  if (const char* env = std::getenv("FERRY_SHARED")) {
    for (fs::path p : {fs::path(env) / "notation", fs::path(env)})
      if (fs::is_directory(p / "notation-go")) return p;
  }
  std::error_code ec;
  for (fs::path dir = fs::current_path(ec); !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / "shared" / "notation", ec)) return dir / "shared" / "notation";
    if (dir == dir.parent_path()) break;
  }
  return std::nullopt;
}

} // namespace

TEST_CASE("trust store: loads PEM and DER certificates, CA or self-signed")
{
  StoreDir dir;
  auto root = store_cert("root", root_ca());
  auto inter = store_cert("intermediate", root_ca(), &root);
  auto self = store_cert("self-signed leaf", opts(true, false, "critical,digitalSignature"));
  auto v1 = store_cert("v1", opts(false, false, "", 1));
  dir.write("ca", "s", "b-root.pem", pem_of(root.cert.get()));
  dir.write("ca", "s", "a-self.der", der_bytes(self.cert.get()));
  dir.write("ca", "s", "c-two.crt", pem_of(inter.cert.get()) + "\n" + pem_of(root.cert.get()));
  dir.write("ca", "s", "d-two.der", der_bytes(inter.cert.get()) + der_bytes(v1.cert.get()));
  dir.write("ca", "s", "e-noext.txt", "leading text is skipped\n" + pem_of(v1.cert.get()));
  auto chain = TrustStore(dir.root).load("ca", "s");
  REQUIRE(chain.size() == 7);
  // Files in name order, certificates in file order.
  CHECK(der_bytes(chain[0].get()) == der_bytes(self.cert.get()));
  CHECK(der_bytes(chain[1].get()) == der_bytes(root.cert.get()));
  CHECK(der_bytes(chain[2].get()) == der_bytes(inter.cert.get()));
  CHECK(der_bytes(chain[6].get()) == der_bytes(v1.cert.get()));
  CHECK(TrustStore(dir.root).root() == dir.root);

  dir.write("signingAuthority", "sa", "root.pem", pem_of(root.cert.get()));
  CHECK(TrustStore(dir.root).load("signingAuthority", "sa").size() == 1);
}

TEST_CASE("trust store: certificates that are neither CA nor self-signed")
{
  StoreDir dir;
  auto root = store_cert("root", root_ca());
  auto leaf = store_cert("leaf", opts(true, false, "critical,digitalSignature"), &root);
  dir.write("ca", "leafs", "leaf.crt", pem_of(leaf.cert.get()));
  CHECK(dir.error("ca", "leafs") ==
        "failed to validate the trusted certificate leaf.crt in trust store leafs of type ca: certificate with subject "
        "\"CN=leaf,O=Notary,ST=WA,C=US\" is not a CA certificate or self-signed signing certificate");
  dir.write("ca", "single", "RootAndLeaf.crt", pem_of(root.cert.get()) + pem_of(leaf.cert.get()));
  CHECK(dir.error("ca", "single").rfind("failed to validate the trusted certificate RootAndLeaf.crt in trust store single "
                                        "of type ca",
                                        0) == 0);
  // Certificate.CheckSignature accepts SHA-1 self-signatures; MD5 is refused.
  auto sha1 = store_cert("sha1", opts(true, false, "", 3, EVP_sha1()));
  dir.write("ca", "sha1", "sha1.pem", pem_of(sha1.cert.get()));
  CHECK(dir.error("ca", "sha1").empty());
  // A CA certificate needs no self-signature.
  auto inter = store_cert("intermediate", root_ca(), &root);
  dir.write("ca", "inter", "i.pem", pem_of(inter.cert.get()));
  CHECK(dir.error("ca", "inter").empty());
}

TEST_CASE("trust store: file errors")
{
  StoreDir dir;
  auto root = store_cert("root", root_ca());
  dir.write("ca", "empty-file", "empty.crt", "");
  CHECK(dir.error("ca", "empty-file") ==
        "failed to validate the trusted certificate empty.crt in trust store empty-file of type ca: input certs cannot be "
        "empty");
  dir.write("ca", "garbage", "invalid", "this is not a certificate");
  CHECK(dir.error("ca", "garbage").rfind("failed to read the trusted certificate invalid in trust store garbage of type ca", 0) ==
        0);
  dir.write("ca", "key", "key.pem", pem_of(root.cert.get()) + "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  CHECK(dir.error("ca", "key").rfind("failed to read the trusted certificate key.pem", 0) == 0);
  dir.write("ca", "trailing", "t.der", der_bytes(root.cert.get()) + "xx");
  CHECK(dir.error("ca", "trailing").rfind("failed to read the trusted certificate t.der", 0) == 0);
  std::string pem = pem_of(root.cert.get());
  pem[pem.size() / 2] = '!';
  dir.write("ca", "corrupt", "c.pem", pem);
  CHECK(dir.error("ca", "corrupt").rfind("failed to read the trusted certificate c.pem", 0) == 0);

  dir.write("ca", "subdir", "root.pem", pem_of(root.cert.get()));
  fs::create_directory(dir.store("ca", "subdir") / "nested");
  CHECK(dir.error("ca", "subdir") == "trusted certificate nested in trust store subdir of type ca is not a regular file "
                                     "(directories or symlinks are not supported)");
  dir.write("ca", "symlink", "root.pem", pem_of(root.cert.get()));
  fs::create_symlink(dir.store("ca", "symlink") / "root.pem", dir.store("ca", "symlink") / "z-link.pem");
  CHECK(dir.error("ca", "symlink") == "trusted certificate z-link.pem in trust store symlink of type ca is not a regular "
                                      "file (directories or symlinks are not supported)");
}

TEST_CASE("trust store: store directory errors")
{
  StoreDir dir;
  auto root = store_cert("root", root_ca());
  CHECK(dir.error("ca", "nope") == "the trust store \"nope\" of type \"ca\" does not exist");
  dir.store("ca", "empty");
  CHECK(dir.error("ca", "empty") == "no x509 certificates were found in trust store \"empty\" of type \"ca\"");
  CHECK(dir.error("tsa", "empty") == "the trust store \"empty\" of type \"tsa\" does not exist");

  dir.write("ca", "real", "root.pem", pem_of(root.cert.get()));
  fs::create_directory_symlink(dir.store("ca", "real"), dir.root / "x509" / "ca" / "linked");
  CHECK(dir.error("ca", "linked") == "the trust store linked of type ca with path " +
                                         (dir.root / "x509" / "ca" / "linked").string() +
                                         " is not a regular directory (symlinks are not supported)");
  std::ofstream(dir.root / "x509" / "ca" / "plainfile") << "x";
  CHECK(dir.error("ca", "plainfile").find("is not a regular directory") != std::string::npos);

  CHECK(dir.error("CA", "real") == "unsupported trust store type: CA");
  CHECK(dir.error("x509", "real") == "unsupported trust store type: x509");
  CHECK(dir.error("ca", "a/b") == "trust store name needs to follow [a-zA-Z0-9_.-]+ format, a/b is invalid");
  CHECK(dir.error("ca", "") == "trust store name needs to follow [a-zA-Z0-9_.-]+ format,  is invalid");
  CHECK(dir.error("ca", "a b").find("needs to follow") != std::string::npos);

  StoreDir bare;
  CHECK(bare.error("ca", "x") == "the trust store \"x\" of type \"ca\" does not exist");
}

TEST_CASE("trust store: tsa certificates must be self-signed root CAs")
{
  StoreDir dir;
  auto root = store_cert("tsa root", root_ca());
  dir.write("tsa", "ok", "root.cer", der_bytes(root.cert.get()));
  CHECK(dir.error("tsa", "ok").empty());

  auto leaf = store_cert("wabbit", opts(true, false, "critical,digitalSignature"));
  dir.write("tsa", "non-ca", "wabbit.crt", pem_of(leaf.cert.get()));
  CHECK(dir.error("tsa", "non-ca") ==
        "trusted certificate wabbit.crt in trust store non-ca of type tsa is invalid: certificate with subject "
        "\"CN=wabbit,O=Notary,ST=WA,C=US\" is not a root CA certificate: x509: invalid signature: parent certificate cannot "
        "sign this kind of certificate");
  auto no_bc = store_cert("no-bc", opts(false, false, ""));
  dir.write("tsa", "no-bc", "c.pem", pem_of(no_bc.cert.get()));
  CHECK(dir.error("tsa", "no-bc").find("parent certificate cannot sign this kind of certificate") != std::string::npos);
  auto no_certsign = store_cert("no-certsign", opts(true, true, "critical,digitalSignature"));
  dir.write("tsa", "no-certsign", "c.pem", pem_of(no_certsign.cert.get()));
  CHECK(dir.error("tsa", "no-certsign").find("parent certificate cannot sign this kind of certificate") != std::string::npos);

  auto inter = store_cert("intermediate", root_ca(), &root);
  dir.write("tsa", "inter", "i.pem", pem_of(inter.cert.get()));
  CHECK(dir.error("tsa", "inter") ==
        "trusted certificate i.pem in trust store inter of type tsa is invalid: certificate with subject "
        "\"CN=intermediate,O=Notary,ST=WA,C=US\" is not a root CA certificate: x509: ECDSA verification failure");

  CertOptions other_issuer = root_ca();
  other_issuer.issuer_name = "Someone Else";
  auto not_self_issued = store_cert("renamed", other_issuer);
  dir.write("tsa", "not-self-issued", "n.crt", pem_of(not_self_issued.cert.get()));
  CHECK(dir.error("tsa", "not-self-issued") ==
        "trusted certificate n.crt in trust store not-self-issued of type tsa is invalid: certificate with subject "
        "\"CN=renamed,O=Notary,ST=WA,C=US\" is not a root CA certificate: issuer (CN=Someone Else) and subject "
        "(CN=renamed,O=Notary,ST=WA,C=US) are not the same");

  // CheckSignatureFrom refuses SHA-1.
  auto sha1_root = store_cert("sha1 root", opts(true, true, "critical,keyCertSign", 3, EVP_sha1()));
  dir.write("tsa", "sha1", "r.pem", pem_of(sha1_root.cert.get()));
  CHECK(dir.error("tsa", "sha1").find("is not a root CA certificate: x509: cannot verify signature: insecure algorithm "
                                      "ECDSA-SHA1") != std::string::npos);
  dir.write("ca", "sha1-root", "r.pem", pem_of(sha1_root.cert.get()));
  CHECK(dir.error("ca", "sha1-root").empty());

  // A version 1 self-signed certificate (no extensions) passes Go's CheckSignatureFrom.
  auto v1 = store_cert("v1", opts(false, false, "", 1));
  dir.write("tsa", "v1", "v1.pem", pem_of(v1.cert.get()));
  CHECK(dir.error("tsa", "v1").empty());

  // Every certificate of a tsa file is checked.
  dir.write("tsa", "mixed", "m.pem", pem_of(root.cert.get()) + pem_of(leaf.cert.get()));
  CHECK(dir.error("tsa", "mixed").find("is not a root CA certificate") != std::string::npos);
  // The same leaf is fine in a ca store.
  dir.write("ca", "mixed", "m.pem", pem_of(root.cert.get()) + pem_of(leaf.cert.get()));
  CHECK(dir.error("ca", "mixed").empty());
}

TEST_CASE("trust store: upstream notation-go stores (CASES.md §8)")
{
  auto shared = store_shared_notation();
  if (!shared) {
    MESSAGE("../shared/notation not found; skipping upstream fixtures");
    return;
  }
  TrustStore ts(*shared / "notation-go" / "verifier-testdata" / "truststore");
  auto error = [&](const std::string& type, const std::string& name) -> std::string {
    try {
      ts.load(type, name);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  // 8.1: trust-store certificates' validity dates are not checked (TestTimestampNotYetValid).
  CHECK(ts.load("ca", "valid-trust-store").size() == 6);
  // 8.2
  CHECK(ts.load("ca", "valid-trust-store-self-signed").size() == 1);
  // 8.3
  CHECK(error("ca", "trust-store-with-invalid-certs")
            .find("failed to read the trusted certificate invalid in trust store trust-store-with-invalid-certs of type "
                  "ca") != std::string::npos);
  // 8.4
  CHECK(error("ca", "trust-store-with-leaf-certs")
            .find("failed to validate the trusted certificate non-ca.crt in trust store trust-store-with-leaf-certs of type "
                  "ca") != std::string::npos);
  CHECK(error("ca", "trust-store-with-leaf-certs")
            .find("certificate with subject \"CN=wabbit-networks.io,O=Notary,L=Seattle,ST=WA,C=US\" is not a CA certificate "
                  "or self-signed signing certificate") != std::string::npos);
  // 8.5
  CHECK(error("ca", "trust-store-with-leaf-certs-in-single-file")
            .find("failed to validate the trusted certificate RootAndLeafCerts.crt") != std::string::npos);
  // 8.6
  CHECK(ts.load("tsa", "test-timestamp").size() == 1);
  // 8.7
  CHECK(error("tsa", "test-nonCA")
            .find("trusted certificate wabbit-networks.io.crt in trust store test-nonCA of type tsa is invalid: certificate "
                  "with subject \"CN=wabbit-networks.io,O=Notary,L=Seattle,ST=WA,C=US\" is not a root CA certificate: x509: "
                  "invalid signature: parent certificate cannot sign this kind of certificate") != std::string::npos);
  // 8.8
  CHECK(error("tsa", "test-nonSelfIssued")
            .find("trusted certificate nonSelfIssued.crt in trust store test-nonSelfIssued of type tsa is invalid: "
                  "certificate with subject \"CN=Notation Test Revokable RSA Chain Cert 2,O=Notary,L=Seattle,ST=WA,C=US\" is "
                  "not a root CA certificate: issuer (CN=Notation Test Revokable RSA Chain Cert Root,O=Notary,L=Seattle,ST=WA,"
                  "C=US) and subject (CN=Notation Test Revokable RSA Chain Cert 2,O=Notary,L=Seattle,ST=WA,C=US) are not the "
                  "same") != std::string::npos);
  // 8.9: the snapshot stores the symlink as a text file; it is not a certificate either way.
  CHECK(!error("ca", "valid-trust-store_SYMLINK").empty());
  // Other stores of the snapshot.
  CHECK(ts.load("ca", "valid-trust-store-2").size() == 2);
  CHECK(ts.load("signingAuthority", "valid-trust-store").size() == 3);
  CHECK(ts.load("tsa", "test-mismatch").size() == 1);
  CHECK(error("ca", "missing").find("the trust store \"missing\" of type \"ca\" does not exist") != std::string::npos);

  // The e2e trust stores (CASES.md §1) all load.
  const fs::path e2e = *shared / "notation-e2e" / "truststores";
  CHECK(TrustStore(e2e / "e2e").load("ca", "e2e").size() == 1);
  CHECK(TrustStore(e2e / "new_e2e").load("ca", "e2e").size() == 1);
  CHECK(TrustStore(e2e / "expired_e2e").load("ca", "e2e").size() == 1);
  CHECK(TrustStore(e2e / "multiple-identities").load("ca", "e2e").size() == 2);
  CHECK(TrustStore(e2e / "multiple-stores").load("ca", "e2e").size() == 1);
  CHECK(TrustStore(e2e / "multiple-stores").load("ca", "e2e-new").size() == 1);
  CHECK(TrustStore(e2e / "timestamp").load("tsa", "e2e").size() == 2);
}

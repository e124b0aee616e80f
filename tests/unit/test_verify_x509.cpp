#include <doctest/doctest.h>

#include "test_pki.hpp"

#include <ferry/verify/x509.hpp>

#include <functional>

using namespace ferry;
using namespace ferry::verify;
using namespace ferry::test_pki;

namespace {

Chain to_chain(const std::vector<X509*>& certs)
{
  Chain c;
  for (X509* x : certs) c.push_back(clone(x));
  return c;
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

} // namespace

TEST_CASE("x509: key_spec follows the key, not the prose (SPEC §4)")
{
  struct Row {
    const char* type;
    int size;
    const char* alg;
    int hash;
  };
  for (Row r : {Row{"rsa", 2048, "PS256", 256}, Row{"rsa", 3072, "PS384", 384}, Row{"rsa", 4096, "PS512", 512},
                Row{"ec", 256, "ES256", 256}, Row{"ec", 384, "ES384", 384}, Row{"ec", 521, "ES512", 512}}) {
    CAPTURE(r.type);
    CAPTURE(r.size);
    auto key = make_key(r.type, r.size);
    CertSpec s;
    s.key = key.get();
    auto cert = make_cert(s);
    std::string err;
    auto spec = key_spec(cert.get(), &err);
    REQUIRE(spec.has_value());
    CHECK(spec->alg == r.alg);
    CHECK(spec->hash_bits == r.hash);
  }
  auto small = make_key("rsa", 1024);
  CertSpec s;
  s.key = small.get();
  auto cert = make_cert(s);
  std::string err;
  CHECK_FALSE(key_spec(cert.get(), &err).has_value());
  CHECK(err == "rsa key size 1024 bits is not supported");
  auto p224 = make_key("ec", 224);
  s.key = p224.get();
  cert = make_cert(s);
  CHECK_FALSE(key_spec(cert.get(), &err).has_value());
  CHECK(err == "ecdsa key size 224 bits is not supported");
  auto ed = make_key("ed25519");
  s.key = ed.get();
  cert = make_cert(s);
  CHECK_FALSE(key_spec(cert.get(), &err).has_value());
  CHECK(err == "unsupported public key type");
}

TEST_CASE("x509: a root → intermediate → leaf chain is valid; helpers")
{
  auto c = make_chain(make_key("rsa", 2048));
  CHECK(validate_code_signing_chain(to_chain(c.chain())) == "");
  CHECK(is_self_signed(c.root.get()));
  CHECK_FALSE(is_self_signed(c.leaf.get()));
  CHECK(is_ca(c.root.get()));
  CHECK(is_ca(c.intermediate.get()));
  CHECK_FALSE(is_ca(c.leaf.get()));
  CHECK(der_equal(c.root.get(), clone(c.root.get()).get()));
  CHECK_FALSE(der_equal(c.root.get(), c.leaf.get()));
  // Validity periods are not checked here: an expired leaf is structurally fine.
  auto ls = leaf_spec(c.leaf_key.get(), c.intermediate.get(), c.intermediate_key.get());
  ls.not_before = k_now - days(30);
  ls.not_after = k_now - days(10);
  auto expired = make_cert(ls);
  CHECK(validate_code_signing_chain(to_chain({expired.get(), c.intermediate.get(), c.root.get()})) == "");
  CHECK(validate_code_signing_chain({}) == "certificate chain must contain at least one certificate");
}

TEST_CASE("x509: single self-signed leaf")
{
  auto key = make_key("ec", 256);
  CertSpec s;
  s.subject = "CN=Self,O=Notary,ST=WA,C=US";
  s.key = key.get();
  s.key_usage = k_ku_digital_signature;
  s.ekus = {"codeSigning"};
  s.eku_critical = true;
  s.basic_constraints = false;
  auto cert = make_cert(s);
  CHECK(validate_code_signing_chain(to_chain({cert.get()})) == "");

  s.basic_constraints = true;
  s.is_ca = true;
  s.key_usage = k_ku_digital_signature | k_ku_key_cert_sign;
  auto ca = make_cert(s);
  std::string e = validate_code_signing_chain(to_chain({ca.get()}));
  CHECK(contains(e, "invalid self-signed certificate. Error: "));
  CHECK(contains(e, "the ca field must be set to false"));

  // A leaf alone, not self-signed.
  auto c = make_chain(make_key("rsa", 2048));
  e = validate_code_signing_chain(to_chain({c.leaf.get()}));
  CHECK(contains(e, "invalid self-signed certificate. subject: \"CN=Test Leaf"));
  CHECK(contains(e, "crypto/rsa: verification error"));
}

TEST_CASE("x509: chain structure errors")
{
  auto c = make_chain(make_key("rsa", 2048));
  SUBCASE("chain not ending in a self-signed root")
  {
    std::string e = validate_code_signing_chain(to_chain({c.leaf.get(), c.intermediate.get()}));
    CHECK(contains(e, "root certificate with subject \"CN=Test Intermediate"));
    CHECK(contains(e, "is invalid or not self-signed"));
  }
  SUBCASE("wrong order")
  {
    std::string e = validate_code_signing_chain(to_chain({c.intermediate.get(), c.leaf.get(), c.root.get()}));
    CHECK(contains(e, "is not issued by"));
  }
  SUBCASE("root repeated / self-signed leaf")
  {
    std::string e = validate_code_signing_chain(to_chain({c.leaf.get(), c.intermediate.get(), c.root.get(), c.root.get()}));
    CHECK(contains(e, "intermediate certificate with subject \"CN=Test Root"));
    CHECK(contains(e, "is self-signed"));
    e = validate_code_signing_chain(to_chain({c.root.get(), c.root.get()}));
    CHECK(contains(e, "leaf certificate with subject \"CN=Test Root"));
  }
  SUBCASE("chain longer than k_max_chain_length: refused before any signature check")
  {
    std::vector<X509*> certs = {c.leaf.get()};
    while (certs.size() < k_max_chain_length) certs.push_back(c.intermediate.get());
    certs.push_back(c.root.get());
    REQUIRE(certs.size() == k_max_chain_length + 1);
    std::string e = validate_code_signing_chain(to_chain(certs));
    CHECK(e == "certificate chain is too long: it has 101 certificates, at most 100 are accepted");
    CHECK(validate_timestamping_chain(to_chain(certs)) == e);
    // At the bound the chain is walked (and fails on the repeated intermediate).
    certs.erase(certs.begin() + 1);
    e = validate_code_signing_chain(to_chain(certs));
    CHECK_FALSE(contains(e, "too long"));
    CHECK(contains(e, "is not issued by"));
  }
  SUBCASE("intermediate without CA")
  {
    auto key = make_key("rsa", 2048);
    auto is = ca_spec("CN=Not A CA,O=Notary,ST=WA,C=US", key.get(), c.root.get(), c.root_key.get());
    is.is_ca = false;
    auto notca = make_cert(is);
    auto ls = leaf_spec(c.leaf_key.get(), notca.get(), key.get());
    auto leaf = make_cert(ls);
    std::string e = validate_code_signing_chain(to_chain({leaf.get(), notca.get(), c.root.get()}));
    // Go's CheckSignatureFrom refuses a non-CA parent before the CA rules run.
    CHECK(contains(e, "parent certificate cannot sign this kind of certificate"));
    CHECK(contains(validate_code_signing_ca(notca.get(), 0), "ca field in basic constraints must be present"));
  }
  SUBCASE("intermediate KU not critical / no keyCertSign")
  {
    auto key = make_key("rsa", 2048);
    auto is = ca_spec("CN=Soft CA,O=Notary,ST=WA,C=US", key.get(), c.root.get(), c.root_key.get());
    is.ku_critical = false;
    auto soft = make_cert(is);
    auto leaf = make_cert(leaf_spec(c.leaf_key.get(), soft.get(), key.get()));
    CHECK(contains(validate_code_signing_chain(to_chain({leaf.get(), soft.get(), c.root.get()})),
                   "key usage extension must be marked critical"));
    // Timestamping chains do not require KU criticality.
    CHECK(validate_timestamping_ca(soft.get(), 0) == "");
  }
  SUBCASE("pathLen")
  {
    auto k1 = make_key("rsa", 2048);
    auto k2 = make_key("rsa", 2048);
    auto i1s = ca_spec("CN=I1,O=Notary,ST=WA,C=US", k1.get(), c.root.get(), c.root_key.get());
    i1s.path_len = 0;  // but another CA sits below it
    auto i1 = make_cert(i1s);
    auto i2 = make_cert(ca_spec("CN=I2,O=Notary,ST=WA,C=US", k2.get(), i1.get(), k1.get()));
    auto leaf = make_cert(leaf_spec(c.leaf_key.get(), i2.get(), k2.get()));
    std::string e = validate_code_signing_chain(to_chain({leaf.get(), i2.get(), i1.get(), c.root.get()}));
    CHECK(contains(e, "certificate with subject \"CN=I1,O=Notary,ST=WA,C=US\": expected path length of 1 but certificate has path length 0 instead"));
  }
  SUBCASE("SHA-1 signed certificates are rejected")
  {
    auto ls = leaf_spec(c.leaf_key.get(), c.intermediate.get(), c.intermediate_key.get());
    ls.md = "sha1";
    auto leaf = make_cert(ls);
    std::string e = validate_code_signing_chain(to_chain({leaf.get(), c.intermediate.get(), c.root.get()}));
    CHECK(contains(e, "insecure algorithm"));
    auto key = make_key("rsa", 2048);
    CertSpec s;
    s.key = key.get();
    s.key_usage = k_ku_digital_signature;
    s.md = "sha1";
    auto self = make_cert(s);
    CHECK(contains(validate_code_signing_chain(to_chain({self.get()})), "insecure algorithm"));
    CHECK_FALSE(is_self_signed(self.get()));
  }
}

TEST_CASE("x509: leaf rules")
{
  auto c = make_chain(make_key("rsa", 2048));
  auto check_leaf = [&](const std::function<void(CertSpec&)>& edit) {
    auto ls = leaf_spec(c.leaf_key.get(), c.intermediate.get(), c.intermediate_key.get());
    edit(ls);
    auto leaf = make_cert(ls);
    return validate_code_signing_chain(to_chain({leaf.get(), c.intermediate.get(), c.root.get()}));
  };
  CHECK(check_leaf([](CertSpec&) {}) == "");
  CHECK(check_leaf([](CertSpec& s) { s.ekus = {"anyExtendedKeyUsage"}; }) == "");  // SPEC≠IMPL: allowed
  CHECK(check_leaf([](CertSpec& s) { s.ekus.clear(); }) == "");
  CHECK(check_leaf([](CertSpec& s) { s.basic_constraints = false; }) == "");
  CHECK(contains(check_leaf([](CertSpec& s) { s.is_ca = true; }), "the ca field must be set to false"));
  CHECK(contains(check_leaf([](CertSpec& s) { s.ekus = {"codeSigning", "serverAuth"}; }),
                 "extended key usage must not contain ServerAuth eku"));
  CHECK(contains(check_leaf([](CertSpec& s) { s.ekus = {"timeStamping"}; }),
                 "extended key usage must not contain Timestamping eku"));
  CHECK(contains(check_leaf([](CertSpec& s) { s.ekus = {"OCSPSigning"}; }), "must not contain OCSPSigning eku"));
  CHECK(contains(check_leaf([](CertSpec& s) { s.ku_critical = false; }), "key usage extension must be marked critical"));
  CHECK(contains(check_leaf([](CertSpec& s) { s.key_usage = -1; }), "key usage extension must be present"));
  CHECK(contains(check_leaf([](CertSpec& s) { s.key_usage = k_ku_key_encipherment; }),
                 "The key usage must have the bit positions for \"Digital Signature\" set"));
  CHECK(contains(check_leaf([](CertSpec& s) { s.key_usage = k_ku_digital_signature | k_ku_key_encipherment; }),
                 "The key usage must be \"Digital Signature\" only, but found \"KeyEncipherment\""));
  auto small = make_key("rsa", 1024);
  CHECK(contains(check_leaf([&](CertSpec& s) { s.key = small.get(); }), "rsa key size 1024 bits is not supported"));
}

TEST_CASE("x509: timestamping chain rules")
{
  auto c = make_chain(make_key("rsa", 2048));
  auto tsa_key = make_key("rsa", 2048);
  auto ts = leaf_spec(tsa_key.get(), c.intermediate.get(), c.intermediate_key.get());
  ts.subject = "CN=Test TSA,O=Notary,ST=WA,C=US";
  ts.ekus = {"timeStamping"};
  ts.eku_critical = true;
  ts.ku_critical = false;
  auto tsa = make_cert(ts);
  CHECK(validate_timestamping_chain(to_chain({tsa.get(), c.intermediate.get(), c.root.get()})) == "");
  // As a code-signing chain it fails: timeStamping EKU and KU not critical.
  CHECK_FALSE(validate_code_signing_chain(to_chain({tsa.get(), c.intermediate.get(), c.root.get()})).empty());
  ts.eku_critical = false;
  auto soft = make_cert(ts);
  CHECK(contains(validate_timestamping_leaf(soft.get()), "must have extended key usage extension marked as critical"));
  ts.eku_critical = true;
  ts.ekus = {"timeStamping", "codeSigning"};
  auto two = make_cert(ts);
  CHECK(contains(validate_timestamping_leaf(two.get()), "must have and only have Timestamping as extended key usage"));
  // The code-signing leaf as a TSA leaf.
  CHECK(contains(validate_timestamping_leaf(c.leaf.get()), "must have and only have Timestamping"));
}

// ---- upstream fixtures (CASES.md §10) --------------------------------------------------

namespace {

X509Ptr fixture(const std::filesystem::path& dir, const std::string& name)
{
  std::string data = read_file(dir / name);
  Chain certs = parse_certificates(data, name);
  return std::move(certs.front());
}

} // namespace

TEST_CASE("x509: notation-core-go certificate fixtures (CASES.md §10)")
{
  auto root_dir = notation_vectors_dir();
  if (!root_dir) {
    MESSAGE("../shared/notation not found (set FERRY_SHARED): skipping upstream x509 fixtures");
    return;
  }
  auto fx = *root_dir / "notation-core-go" / "x509-validation-fixtures";
  auto x5 = *root_dir / "notation-core-go" / "x509";
  auto leaf = fixture(fx, "codesigning__codeSigningLeafPem.pem");
  auto int1 = fixture(fx, "codesigning__intermediateCertPem1.pem");
  auto int2 = fixture(fx, "codesigning__intermediateCertPem2.pem");
  auto root = fixture(fx, "codesigning__rootCertPem.pem");
  auto unrelated = fixture(fx, "codesigning__unrelatedCertPem.pem");
  auto g = [](X509Ptr& p) { return p.get(); };

  // 10.1
  CHECK(validate_code_signing_chain(to_chain({g(leaf), g(int2), g(int1), g(root)})) == "");
  // 10.2
  auto minimum = fixture(x5, "openssl-minimum-self-signed.pem");
  CHECK(validate_code_signing_chain(to_chain({g(minimum)})) == "");
  // 10.3
  CHECK(validate_code_signing_chain(to_chain({g(leaf)})) ==
        "invalid self-signed certificate. subject: \"CN=CodeSigningLeaf\". Error: crypto/rsa: verification error");
  // 10.5
  CHECK(contains(validate_code_signing_chain(to_chain({g(leaf), g(int2), g(int1)})),
                 "root certificate with subject \"CN=Intermediate1\" is invalid or not self-signed."));
  // 10.6
  CHECK(validate_code_signing_chain(to_chain({g(leaf), g(int1), g(int2), g(root)})) ==
        "invalid certificates or certificate with subject \"CN=CodeSigningLeaf\" is not issued by \"CN=Intermediate1\". "
        "Error: crypto/rsa: verification error");
  // 10.7
  CHECK(validate_code_signing_chain(to_chain({g(leaf), g(unrelated), g(int1), g(root)})) ==
        "invalid certificates or certificate with subject \"CN=CodeSigningLeaf\" is not issued by \"CN=Hello\". Error: "
        "x509: invalid signature: parent certificate cannot sign this kind of certificate");
  // 10.8
  CHECK(contains(validate_code_signing_chain(to_chain({g(root), g(root), g(root)})),
                 "leaf certificate with subject \"CN=Root\" is self-signed."));
  // 10.9
  CHECK(contains(validate_code_signing_chain(to_chain({g(leaf), g(int2), g(int1), g(root), g(root)})),
                 "intermediate certificate with subject \"CN=Root\" is self-signed."));
  // 10.10
  auto alt_leaf = fixture(fx, "codesigning__codeSigningLeafInvalidPathLenPem.pem");
  auto alt_int = fixture(fx, "codesigning__intermediateCertInvalidPathLenPem.pem");
  CHECK(validate_code_signing_chain(to_chain({g(alt_leaf), g(alt_int), g(int2), g(int1), g(root)})) ==
        "certificate with subject \"CN=Intermediate2\": expected path length of 1 but certificate has path length 0 instead");
  // 10.11
  CHECK(validate_code_signing_ca(root.get(), 3) ==
        "certificate with subject \"CN=Root\": expected path length of 3 but certificate has path length 2 instead");
  // 10.12
  for (const char* f : {"codesigning__noBasicConstraintsCaPem.pem", "codesigning__basicConstraintsNotCaPem.pem"}) {
    CAPTURE(f);
    CHECK(validate_code_signing_ca(fixture(fx, f).get(), 3) ==
          "certificate with subject \"CN=Hello\": ca field in basic constraints must be present, critical, and set to true");
  }
  // 10.13
  CHECK(validate_code_signing_ca(fixture(fx, "codesigning__kuNotCriticalCertSignCaPem.pem").get(), 3) ==
        "certificate with subject \"CN=Hello\": key usage extension must be marked critical");
  CHECK(validate_code_signing_ca(fixture(fx, "codesigning__kuMissingCaPem.pem").get(), 3) ==
        "certificate with subject \"CN=Hello\": key usage extension must be present");
  CHECK(validate_code_signing_ca(fixture(fx, "codesigning__kuNotCertSignCaPem.pem").get(), 3) ==
        "certificate with subject \"CN=Hello\": key usage must have the bit positions for key cert sign set");
  // 10.14
  CHECK(validate_code_signing_leaf(fixture(fx, "codesigning__validNoOptionsLeafPem.pem").get()) == "");
  // 10.15
  CHECK(validate_code_signing_leaf(fixture(fx, "codesigning__caTrueLeafPem.pem").get()) ==
        "certificate with subject \"CN=Hello\": if the basic constraints extension is present, the ca field must be set to false");
  // 10.16
  CHECK(validate_code_signing_leaf(fixture(fx, "codesigning__kuNoDigitalSignatureLeafPem.pem").get()) ==
        "the certificate with subject \"CN=Hello\" is invalid. The key usage must have the bit positions for \"Digital Signature\" set");
  CHECK(validate_code_signing_leaf(fixture(fx, "codesigning__kuWrongValuesLeafPem.pem").get()) ==
        "the certificate with subject \"CN=Hello\" is invalid. The key usage must be \"Digital Signature\" only, but found \"CertSign\", \"CRLSign\"");
  // 10.17
  CHECK(validate_code_signing_leaf(fixture(fx, "codesigning__rsaKeyTooSmallLeafPem.pem").get()) ==
        "certificate with subject \"CN=Hello\": rsa key size 1024 bits is not supported");
  CHECK(validate_code_signing_leaf(fixture(fx, "codesigning__ecdsaKeyTooSmallLeafPem.pem").get()) ==
        "certificate with subject \"CN=Hello\": ecdsa key size 224 bits is not supported");
  // 10.18
  CHECK(validate_code_signing_leaf(fixture(fx, "codesigning__ekuWrongValuesCodeLeafPem.pem").get()) ==
        "certificate with subject \"CN=Hello\": extended key usage must not contain ServerAuth eku");
  CHECK(validate_code_signing_leaf(fixture(fx, "codesigning__ekuMissingCodeSigningLeafPem.pem").get()) ==
        "certificate with subject \"CN=Hello\": extended key usage must not contain OCSPSigning eku");
  // 10.19
  auto ts_leaf = fixture(x5, "timestamp_leaf.crt");
  auto ts_int = fixture(x5, "timestamp_intermediate.crt");
  auto ts_root = fixture(x5, "timestamp_root.crt");
  CHECK(validate_timestamping_chain(to_chain({g(ts_leaf), g(ts_int), g(ts_root)})) == "");
  CHECK_FALSE(validate_timestamping_chain(to_chain({g(ts_int), g(ts_leaf), g(ts_root)})).empty());
  CHECK_FALSE(validate_timestamping_chain(to_chain({g(ts_leaf), g(ts_int)})).empty());
  CHECK_FALSE(validate_timestamping_chain(to_chain({g(ts_leaf), g(ts_int), g(ts_root), g(ts_root)})).empty());
  CHECK_FALSE(validate_timestamping_chain(to_chain({g(ts_leaf), g(ts_root)})).empty());
  // 10.20
  CHECK(validate_timestamping_leaf(fixture(fx, "timestamping__ekuNonCriticalTimeLeafPem.pem").get()) ==
        "timestamp signing certificate with subject \"CN=TimeStampingLeaf\" must have extended key usage extension marked as critical");
  for (const char* f : {"timestamping__ekuWrongValuesTimeLeafPem.pem", "timestamping__ekuMissingTimestampingLeafPem.pem",
                        "codesigning__validNoOptionsLeafPem.pem"}) {
    CAPTURE(f);
    CHECK(validate_timestamping_leaf(fixture(fx, f).get()) ==
          "timestamp signing certificate with subject \"CN=Hello\" must have and only have Timestamping as extended key usage");
  }
}

#include <doctest/doctest.h>

#include <ferry/error.hpp>
#include <ferry/verify/dn.hpp>
#include <ferry/verify/openssl.hpp>
#include <ferry/verify/trust_policy.hpp>

#include "test_clock.hpp"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace ferry;
using namespace ferry::verify;

namespace {

struct NameEntry {
  std::string field;
  std::string value;
  int type = MBSTRING_UTF8;
  bool join_previous = false; ///< add to the previous RDN (multi-valued RDN)
};

/// A self-signed P-256 certificate with the given subject (entries in DER order).
X509Ptr dn_test_cert(const std::vector<NameEntry>& subject)
{
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  REQUIRE(key);
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), test_clock::k_now_time_t);
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), test_clock::k_now_time_t + 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& e : subject)
    REQUIRE(X509_NAME_add_entry_by_txt(name, e.field.c_str(), e.type, reinterpret_cast<const unsigned char*>(e.value.data()),
                                       static_cast<int>(e.value.size()), -1, e.join_previous ? -1 : 0) == 1);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
  return cert;
}

std::string go_string_of(const std::vector<NameEntry>& subject) { return go_subject_string(dn_test_cert(subject).get()); }

std::string dn_error(std::string_view dn)
{
  try {
    parse_notation_dn(dn);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string ldap_error(std::string_view dn)
{
  try {
    parse_dn(dn);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

/// ../shared/notation (FERRY_SHARED, or found walking up from the current directory).
std::optional<std::filesystem::path> dn_shared_notation()
{
  namespace fs = std::filesystem;
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

X509Ptr read_pem_cert(const std::filesystem::path& path)
{
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  Chain chain = parse_certificates(s.str(), path.string());
  REQUIRE(!chain.empty());
  return std::move(chain.front());
}

} // namespace

TEST_CASE("dn: go-ldap ParseDN splits RDNs, trims and unescapes")
{
  auto dn = parse_dn(" CN = a b ,O=Org;C=US+ST=WA");
  REQUIRE(dn.size() == 3);
  CHECK(dn[0][0].type == "CN");
  CHECK(dn[0][0].value == "a b");
  CHECK(dn[1][0].type == "O");
  REQUIRE(dn[2].size() == 2);
  CHECK(dn[2][0].type == "C");
  CHECK(dn[2][1].type == "ST");
  CHECK(dn[2][1].value == "WA");

  CHECK(parse_dn("CN=a\\,b\\+c\\;d\\\"e\\<f\\>g\\\\h\\=i\\#j")[0][0].value == "a,b+c;d\"e<f>g\\h=i#j");
  CHECK(parse_dn("CN=\\2C\\41\\c3\\a9")[0][0].value == ",A\xc3\xa9");
  CHECK(parse_dn("CN=\\ lead")[0][0].value == " lead");
  CHECK(parse_dn("CN=trail\\ ")[0][0].value == "trail ");
  CHECK(parse_dn("CN=trail\\  ")[0][0].value == "trail ");
  CHECK(parse_dn("CN=a=b")[0][0].value == "a=b");
  CHECK(parse_dn("CN=#0c03616263")[0][0].value == "abc");
  CHECK(parse_dn("").empty());
  CHECK(parse_dn(" \t ").empty());
  // Non-ASCII text passes through; invalid UTF-8 becomes U+FFFD as with Go's []rune.
  CHECK(parse_dn("CN=\xc3\xa9t\xc3\xa9")[0][0].value == "\xc3\xa9t\xc3\xa9");
  CHECK(parse_dn("CN=a\xff" "b")[0][0].value == "a\xef\xbf\xbd" "b");
}

TEST_CASE("dn: go-ldap ParseDN errors")
{
  CHECK(ldap_error("CN") == "DN ended with incomplete type, value pair");
  CHECK(ldap_error("C=US,") == "DN ended with incomplete type, value pair");
  CHECK(ldap_error(",C=US") == "incomplete type, value pair");
  CHECK(ldap_error("C=US+,O=x") == "incomplete type, value pair");
  CHECK(ldap_error("CN=abc\\").find("got corrupted escaped character") == 0);
  CHECK(ldap_error("CN=abc\\\\").empty());
  CHECK(ldap_error("CN=a\\zz").find("failed to decode escaped character") != std::string::npos);
  CHECK(ldap_error("CN=a\\4").find("failed to decode escaped character") != std::string::npos);
  CHECK(ldap_error("CN=#zz").find("failed to decode BER encoding") != std::string::npos);
  CHECK(ldap_error("CN=#0c05ab").find("failed to decode BER encoding") != std::string::npos);
}

TEST_CASE("dn: notation ParseDistinguishedName rules")
{
  auto dn = parse_notation_dn("C=US, ST=WA, L=Seattle, O=Notary, CN=e2e");
  CHECK(dn.size() == 5);
  CHECK(dn_get(dn, "ST") == "WA");
  CHECK(dn_get(dn, "OU").empty());

  // S is an alias of ST.
  auto s = parse_notation_dn("C=US,S=WA,O=x");
  CHECK(dn_get(s, "ST") == "WA");
  CHECK(s.count("S") == 0);

  CHECK(dn_error(" CN=e2e,L=Seattle,ST=WA,C=US") ==
        "distinguished name (DN) \" CN=e2e,L=Seattle,ST=WA,C=US\" has no mandatory RDN attribute for \"O\", it must "
        "contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum");
  CHECK(dn_error("C=US,O=x").find("no mandatory RDN attribute for \"ST\"") != std::string::npos);
  CHECK(dn_error("ST=WA,O=x").find("no mandatory RDN attribute for \"C\"") != std::string::npos);
  // Types are case-sensitive, as in notation.
  CHECK(dn_error("c=US,ST=WA,O=x").find("no mandatory RDN attribute for \"C\"") != std::string::npos);
  // An empty value counts as absent (Go map lookup), and may be repeated.
  CHECK(dn_error("C=,ST=WA,O=x").find("no mandatory RDN attribute for \"C\"") != std::string::npos);
  CHECK(dn_error("C=,C=US,ST=WA,O=x").empty());

  CHECK(dn_error("C=US,ST=WA,O=x,OU=a,OU=b") ==
        "distinguished name (DN) \"C=US,ST=WA,O=x,OU=a,OU=b\" has duplicate RDN attribute for \"OU\", DN can only "
        "have unique RDN attributes");
  CHECK(dn_error("C=US,ST=WA,S=WA,O=x").find("duplicate RDN attribute for \"ST\"") != std::string::npos);
  CHECK(dn_error("C=US+ST=WA,O=x").find("has multi-valued RDN attributes") != std::string::npos);
  CHECK(dn_error("C=bad=#identity,O=LOL,ST=LOL") ==
        "unsupported distinguished name (DN) \"C=bad=#identity,O=LOL,ST=LOL\": notation does not support x509.subject "
        "identities containing \"=#\"");
  CHECK(dn_error("C=US,ST=WA,O=#0c0141").find("containing \"=#\"") != std::string::npos);
  CHECK(dn_error("C=US,ST=WA,O").find("parsing distinguished name (DN) \"C=US,ST=WA,O\" failed with err: DN ended with "
                                     "incomplete type, value pair") == 0);
  CHECK(dn_error("   ").find("no mandatory RDN attribute for \"C\"") != std::string::npos);
}

TEST_CASE("dn: subset match is exact and case-sensitive")
{
  auto leaf = parse_notation_dn("C=US,ST=WA,L=Seattle,O=SomeOrg,OU=SomeOU,CN=SomeCN");
  CHECK(is_subset_dn(parse_notation_dn("C=US,O=SomeOrg,ST=WA"), leaf));
  CHECK(is_subset_dn(parse_notation_dn("C=US, O=SomeOrg, S=WA, CN=SomeCN"), leaf));
  CHECK_FALSE(is_subset_dn(parse_notation_dn("C=US,O=someorg,ST=WA"), leaf));
  CHECK_FALSE(is_subset_dn(parse_notation_dn("C=US,O=SomeOrg,ST=WA,CN=Other"), leaf));
  CHECK_FALSE(is_subset_dn(parse_notation_dn("C=US,O=SomeOrg,ST=WA,DC=x"), leaf));
  CHECK(is_subset_dn(leaf, leaf));
  CHECK(is_subset_dn(DnMap{}, leaf));
}

TEST_CASE("dn: Go pkix.Name.String attribute order")
{
  // Go regroups the known attributes: SERIALNUMBER, CN, OU, O, POSTALCODE, STREET, L, ST, C.
  CHECK(go_string_of({{"C", "US"}, {"ST", "WA"}, {"L", "Seattle"}, {"O", "Notary"}, {"CN", "e2e"}}) ==
        "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US");
  CHECK(go_string_of({{"CN", "e2e"}, {"O", "Notary"}, {"C", "US"}, {"ST", "WA"}}) == "CN=e2e,O=Notary,ST=WA,C=US");
  CHECK(go_string_of({{"serialNumber", "42"}, {"street", "Main St"}, {"postalCode", "98101"}, {"OU", "Eng"}, {"C", "US"}}) ==
        "SERIALNUMBER=42,OU=Eng,POSTALCODE=98101,STREET=Main St,C=US");
  // Repeated types form one multi-valued RDN in document order; only the last CN survives.
  CHECK(go_string_of({{"C", "US"}, {"OU", "a"}, {"OU", "b"}, {"CN", "first"}, {"CN", "second"}}) ==
        "CN=second,OU=a+OU=b,C=US");
  // A multi-valued RDN of different types is flattened.
  CHECK(go_string_of({{"C", "US"}, {"ST", "WA", MBSTRING_UTF8, true}, {"O", "x"}}) == "O=x,ST=WA,C=US");
  // Empty CN is dropped; empty values of list attributes stay.
  CHECK(go_string_of({{"L", "", V_ASN1_UTF8STRING}, {"CN", "", V_ASN1_UTF8STRING}}) == "L=");
  CHECK(go_string_of({}) == "");
}

TEST_CASE("dn: Go renders unknown attribute types as OID=#hex, last first")
{
  // emailAddress has '@' (not PrintableString): re-encoded as UTF8String (0x0c).
  CHECK(go_string_of({{"C", "US"}, {"emailAddress", "a@b.c", V_ASN1_IA5STRING}, {"CN", "x"}}) ==
        "CN=x,C=US,1.2.840.113549.1.9.1=#0c05614062" "2e63");
  // UID and DC: PrintableString (0x13) when every byte allows it.
  CHECK(go_string_of({{"DC", "com"}, {"DC", "example"}, {"UID", "jdoe"}, {"O", "x"}}) ==
        "O=x,0.9.2342.19200300.100.1.1=#13046a646f65,0.9.2342.19200300.100.1.25=#13076578616d706c65,"
        "0.9.2342.19200300.100.1.25=#1303636f6d");
  CHECK(go_string_of({{"1.2.3.4", "a*b", V_ASN1_UTF8STRING}}) == "1.2.3.4=#0c03612a62");
  // Invalid UTF-8 (T61String bytes) cannot be marshalled: the OID and the escaped value.
  CHECK(go_string_of({{"1.2.3.4", "a\xff", V_ASN1_T61STRING}}) == "1.2.3.4=a\xef\xbf\xbd");
}

TEST_CASE("dn: Go escaping and string types")
{
  CHECK(go_string_of({{"CN", "a,b+c\"d\\e<f>g;h"}}) == "CN=a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h");
  CHECK(go_string_of({{"CN", " lead and trail "}}) == "CN=\\ lead and trail\\ ");
  CHECK(go_string_of({{"CN", "#x#"}}) == "CN=\\#x#");
  CHECK(go_string_of({{"CN", "Bad=#CN"}}) == "CN=Bad=#CN");
  CHECK(go_string_of({{"CN", "caf\xc3\xa9"}}) == "CN=caf\xc3\xa9");
  CHECK(go_string_of({{"CN", std::string("\x00\xe9", 2), V_ASN1_BMPSTRING}}) == "CN=\xc3\xa9");

  CHECK(go_name(X509_get_subject_name(dn_test_cert({{"CN", "x", V_ASN1_PRINTABLESTRING}}).get())).parsable);
  CHECK(go_name(X509_get_subject_name(dn_test_cert({{"CN", "a@b", V_ASN1_PRINTABLESTRING}}).get())).parsable == false);
  CHECK(go_name(X509_get_subject_name(dn_test_cert({{"CN", std::string("\0\0\0x", 4), V_ASN1_UNIVERSALSTRING}}).get())).parsable == false);
  CHECK(go_name(X509_get_subject_name(dn_test_cert({{"CN", "\xff", V_ASN1_UTF8STRING}}).get())).parsable == false);
  CHECK(go_name(X509_get_subject_name(dn_test_cert({{"CN", "\xff", V_ASN1_T61STRING}}).get())).parsable);
}

TEST_CASE("dn: a Go-rendered subject parses back to its values")
{
  std::vector<NameEntry> subject{{"C", "US"}, {"ST", " W,A "}, {"O", "a+b;c\"d\\"}, {"CN", "#lead  "}};
  auto dn = parse_notation_dn(go_string_of(subject));
  CHECK(dn_get(dn, "C") == "US");
  CHECK(dn_get(dn, "ST") == " W,A ");
  CHECK(dn_get(dn, "O") == "a+b;c\"d\\");
  CHECK(dn_get(dn, "CN") == "#lead  ");
}

TEST_CASE("dn: Go quoting")
{
  CHECK(go_quote("plain") == "\"plain\"");
  CHECK(go_quote("q\"b\\") == "\"q\\\"b\\\\\"");
  CHECK(go_quote("\n\t\x01\x7f") == "\"\\n\\t\\x01\\x7f\"");
  CHECK(go_quote("\xff") == "\"\\xff\"");
  CHECK(go_quote("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  CHECK(go_quote_dn_maps({DnMap{{"O", "x"}, {"C", "US"}}, DnMap{{"ST", "WA"}}}) ==
        "[map[\"C\":\"US\" \"O\":\"x\"] map[\"ST\":\"WA\"]]");
}

TEST_CASE("dn: upstream certificates (CASES.md §9)")
{
  auto shared = dn_shared_notation();
  if (!shared) {
    MESSAGE("../shared/notation not found; skipping upstream fixtures");
    return;
  }
  auto dir = *shared / "notation-go" / "verifier-testdata" / "verifier";
  auto good = read_pem_cert(dir / "signing-cert.pem");
  CHECK(go_subject_string(good.get()) == "CN=SomeCN,OU=SomeOU,O=SomeOrg,L=Seattle,ST=WA,C=US");
  auto bad = read_pem_cert(dir / "bad-cert.pem");
  CHECK(go_subject_string(bad.get()).find("CN=Bad=#CN") != std::string::npos);
  CHECK(dn_error(go_subject_string(bad.get())).find("containing \"=#\"") != std::string::npos);
}

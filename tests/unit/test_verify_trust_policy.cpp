#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <ferry/util/file.hpp>

#include <ferry/error.hpp>
#include <ferry/verify/dn.hpp>
#include <ferry/verify/openssl.hpp>
#include <ferry/verify/trust_policy.hpp>
#include <ferry/verify/trust_store.hpp>

#include "test_clock.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace ferry;
using namespace ferry::verify;
using nlohmann::json;

namespace {

namespace fs = std::filesystem;
using ferry::TempDir;
using fixtures::write_into;

/// A statement notation accepts; tests change one thing at a time.
json good_statement(const std::string& name = "test-statement-name",
                    const std::string& scope = "registry.acme-rockets.io/software/net-monitor")
{
  return {{"name", name},
          {"registryScopes", {scope}},
          {"signatureVerification", {{"level", "strict"}}},
          {"trustStores", {"ca:valid-trust-store", "signingAuthority:valid-trust-store"}},
          {"trustedIdentities", {"x509.subject:C=US, ST=WA, L=Seattle, O=wabbit-networks.io, OU=Finance, CN=SecureBuilder"}}};
}

json doc_of(std::vector<json> statements) { return {{"version", "1.0"}, {"trustPolicies", std::move(statements)}}; }

TrustPolicyDocument parse_json(const json& j) { return TrustPolicyDocument::parse(j.dump(), "tp.json"); }

/// The error message of parsing `text` ("" when it parses), without the "tp.json: " source.
std::string policy_error(const std::string& text)
{
  try {
    TrustPolicyDocument::parse(text, "tp.json");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_argument);
    std::string m = e.what();
    REQUIRE(m.rfind("tp.json: ", 0) == 0);
    return m.substr(9);
  }
  return "";
}
std::string policy_error(const char* text) { return policy_error(std::string(text)); }
std::string policy_error(const json& j) { return policy_error(j.dump()); }

std::string statement_error(const json& statement) { return policy_error(doc_of({statement})); }

/// A self-signed P-256 certificate with the given subject, `{field, value}` in DER order.
X509Ptr identity_cert(const std::vector<std::pair<std::string, std::string>>& subject)
{
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  REQUIRE(key);
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 7);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), test_clock::k_now_time_t);
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), test_clock::k_now_time_t + 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const auto& [field, value] : subject)
    REQUIRE(X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(value.data()), static_cast<int>(value.size()),
                                       -1, 0) == 1);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  REQUIRE(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0);
  return cert;
}

/// ../shared/notation (FERRY_SHARED, or found walking up from the current directory).
std::optional<fs::path> policy_shared_notation()
{
  if (const char* env = std::getenv("FERRY_SHARED")) {
    for (fs::path p : {fs::path(env) / "notation", fs::path(env)})
      if (fs::is_directory(p / "notation-e2e")) return p;
  }
  std::error_code ec;
  for (fs::path dir = fs::current_path(ec); !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / "shared" / "notation", ec)) return dir / "shared" / "notation";
    if (dir == dir.parent_path()) break;
  }
  return std::nullopt;
}

std::string slurp(const fs::path& p)
{
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace

TEST_CASE("trust policy: a valid document and its statements")
{
  json skip = {{"name", "skipper"}, {"registryScopes", {"localhost:5000/skip"}}, {"signatureVerification", {{"level", "skip"}}}};
  json custom = good_statement("custom", "domain:1234/rep");
  custom["signatureVerification"] = {{"level", "permissive"},
                                     {"override", {{"authenticity", "log"}, {"revocation", "skip"}, {"expiry", "enforce"}}},
                                     {"verifyTimestamp", "afterCertExpiry"}};
  json wildcard = good_statement("any", "*");
  wildcard["trustedIdentities"] = {"*"};
  wildcard["trustStores"] = {"ca:e2e", "tsa:tsa-store"};
  auto doc = parse_json(doc_of({good_statement(), skip, custom, wildcard}));
  REQUIRE(doc.statements().size() == 4);

  const auto& s = doc.statements()[0];
  CHECK(s.name == "test-statement-name");
  CHECK(s.registry_scopes == std::vector<std::string>{"registry.acme-rockets.io/software/net-monitor"});
  CHECK(s.verify_timestamp == "always");
  REQUIRE(s.trust_stores.size() == 2);
  CHECK(s.trust_stores[0] == std::make_pair(std::string("ca"), std::string("valid-trust-store")));
  CHECK(s.trust_stores[1] == std::make_pair(std::string("signingAuthority"), std::string("valid-trust-store")));
  CHECK(s.trusted_identities.size() == 1);
  CHECK(s.verification.level == Level::strict);

  const auto& k = doc.statements()[1];
  CHECK(k.verification.level == Level::skip);
  CHECK(k.verification.integrity == Action::skip);
  CHECK(k.verification.revocation == Action::skip);
  CHECK(k.trust_stores.empty());

  const auto& c = doc.statements()[2];
  CHECK(c.verification.level == Level::permissive);
  CHECK(c.verification.integrity == Action::enforce);
  CHECK(c.verification.authenticity == Action::log);
  CHECK(c.verification.authentic_timestamp == Action::log);
  CHECK(c.verification.expiry == Action::enforce);
  CHECK(c.verification.revocation == Action::skip);
  CHECK(c.verify_timestamp == "afterCertExpiry");

  CHECK(doc.statements()[3].trust_stores[1].first == "tsa");
}

TEST_CASE("trust policy: level table (SPEC §6)")
{
  auto level_of = [](const std::string& level) {
    json st = good_statement();
    st["signatureVerification"]["level"] = level;
    if (level == "skip") {
      st.erase("trustStores");
      st.erase("trustedIdentities");
    }
    return parse_json(doc_of({st})).statements()[0].verification;
  };
  auto strict = level_of("strict");
  CHECK((strict.integrity == Action::enforce && strict.authenticity == Action::enforce &&
         strict.authentic_timestamp == Action::enforce && strict.expiry == Action::enforce &&
         strict.revocation == Action::enforce));
  auto permissive = level_of("permissive");
  CHECK((permissive.integrity == Action::enforce && permissive.authenticity == Action::enforce &&
         permissive.authentic_timestamp == Action::log && permissive.expiry == Action::log &&
         permissive.revocation == Action::log));
  auto audit = level_of("audit");
  CHECK((audit.integrity == Action::enforce && audit.authenticity == Action::log && audit.authentic_timestamp == Action::log &&
         audit.expiry == Action::log && audit.revocation == Action::log));
  auto skip = level_of("skip");
  CHECK((skip.integrity == Action::skip && skip.authenticity == Action::skip && skip.authentic_timestamp == Action::skip &&
         skip.expiry == Action::skip && skip.revocation == Action::skip));
  CHECK(std::string(level_name(Level::permissive)) == "permissive");
  CHECK(std::string(level_name(Level::skip)) == "skip");
  CHECK(std::string(action_name(Action::enforce)) == "enforce");
  CHECK(std::string(action_name(Action::log)) == "log");
}

TEST_CASE("trust policy: document-level validation messages")
{
  CHECK(policy_error(json{{"trustPolicies", {good_statement()}}}) ==
        "oci trust policy document has empty version, version must be specified");
  CHECK(policy_error(json{{"version", "invalid"}, {"trustPolicies", {good_statement()}}}) ==
        "oci trust policy document uses unsupported version \"invalid\"");
  CHECK(policy_error(json{{"version", "1.0"}}) == "oci trust policy document can not have zero trust policy statements");
  CHECK(policy_error(doc_of({})) == "oci trust policy document can not have zero trust policy statements");
  CHECK(policy_error("null") == "oci trust policy document has empty version, version must be specified");

  json second = good_statement();
  second["registryScopes"] = {"registry.acme-rockets.io/software/legacy/metrics"};
  CHECK(policy_error(doc_of({good_statement(), second})) ==
        "multiple oci trust policy statements use the same name \"test-statement-name\", statement names must be unique");

  CHECK(policy_error(doc_of({good_statement("a"), good_statement("b")})) ==
        "registry scope \"registry.acme-rockets.io/software/net-monitor\" is present in multiple oci trust policy "
        "statements, one registry scope value can only be associated with one statement");
  CHECK(policy_error(doc_of({good_statement("a", "*"), good_statement("b", "*")})) ==
        "registry scope \"*\" is present in multiple oci trust policy statements, one registry scope value can only be "
        "associated with one statement");
  json twice = good_statement();
  twice["registryScopes"] = {"a.io/x", "a.io/x"};
  CHECK(statement_error(twice).find("registry scope \"a.io/x\" is present in multiple") == 0);
}

TEST_CASE("trust policy: an invalid statement anywhere fails the whole document")
{
  json bad = good_statement("bad", "other.io/repo");
  bad["signatureVerification"]["override"] = {{"integrity", "log"}};
  CHECK(policy_error(doc_of({good_statement(), bad})) ==
        "oci trust policy: trust policy statement \"bad\" has invalid signatureVerification: \"integrity\" verification "
        "can not be overridden in custom signature verification");
  json bad_scope = good_statement("bad", "other.io/repo:tag");
  CHECK(policy_error(doc_of({good_statement(), bad_scope})).find("registry scope \"other.io/repo:tag\" is not valid") == 0);
}

TEST_CASE("trust policy: statement validation messages")
{
  json st = good_statement();
  st["name"] = "";
  CHECK(statement_error(st) == "oci trust policy: a trust policy statement is missing a name, every statement requires a name");
  st = good_statement();
  st.erase("name");
  CHECK(statement_error(st).find("is missing a name") != std::string::npos);

  st = good_statement();
  st.erase("registryScopes");
  CHECK(statement_error(st) == "oci trust policy statement \"test-statement-name\" has zero registry scopes, it must specify "
                               "registry scopes with at least one value");
  st["registryScopes"] = json::array();
  CHECK(statement_error(st).find("has zero registry scopes") != std::string::npos);
  st["registryScopes"] = {"*", "registry.acme-rockets.io/software/net-monitor"};
  CHECK(statement_error(st) == "oci trust policy statement \"test-statement-name\" uses wildcard registry scope '*', a "
                               "wildcard scope cannot be used in conjunction with other scope values");

  st = good_statement();
  st["signatureVerification"] = {{"level", "invalid"}};
  CHECK(statement_error(st) == "oci trust policy: trust policy statement \"test-statement-name\" has invalid "
                               "signatureVerification: invalid signature verification level \"invalid\"");
  st["signatureVerification"] = json::object();
  CHECK(statement_error(st) == "oci trust policy: trust policy statement \"test-statement-name\" has invalid "
                               "signatureVerification: signature verification level is empty or missing in the trust "
                               "policy statement");
  st.erase("signatureVerification");
  CHECK(statement_error(st).find("signature verification level is empty or missing") != std::string::npos);
  st["signatureVerification"] = {{"level", "Strict"}};
  CHECK(statement_error(st).find("invalid signature verification level \"Strict\"") != std::string::npos);

  st = good_statement();
  st["signatureVerification"]["verifyTimestamp"] = "invalid";
  CHECK(statement_error(st) == "oci trust policy: trust policy statement \"test-statement-name\" has invalid "
                               "signatureVerification: verifyTimestamp must be \"always\" or \"afterCertExpiry\", but got "
                               "\"invalid\"");
  st["signatureVerification"]["verifyTimestamp"] = "always";
  CHECK(statement_error(st).empty());

  st = good_statement();
  st["trustStores"] = json::array();
  CHECK(statement_error(st) == "oci trust policy: trust policy statement \"test-statement-name\" is either missing trust "
                               "stores or trusted identities, both must be specified");
  st = good_statement();
  st.erase("trustedIdentities");
  CHECK(statement_error(st).find("is either missing trust stores or trusted identities") != std::string::npos);

  st = good_statement();
  st["signatureVerification"] = {{"level", "skip"}};
  CHECK(statement_error(st) == "oci trust policy: trust policy statement \"test-statement-name\" is set to skip signature "
                               "verification but configured with trust stores and/or trusted identities, remove them if "
                               "signature verification needs to be skipped");
  st["trustStores"] = json::array();
  st["trustedIdentities"] = json::array();
  CHECK(statement_error(st).empty());
}

TEST_CASE("trust policy: overrides")
{
  auto with_override = [](json override, const std::string& level = "strict") {
    json st = good_statement();
    st["signatureVerification"] = {{"level", level}, {"override", std::move(override)}};
    return statement_error(st);
  };
  const std::string prefix = "oci trust policy: trust policy statement \"test-statement-name\" has invalid "
                             "signatureVerification: ";
  CHECK(with_override({{"integrity", "log"}}) ==
        prefix + "\"integrity\" verification can not be overridden in custom signature verification");
  CHECK(with_override({{"integrity", "enforce"}}) ==
        prefix + "\"integrity\" verification can not be overridden in custom signature verification");
  CHECK(with_override({{"authenticity", "skip"}}) ==
        prefix + "\"authenticity\" verification can not be skipped in custom signature verification");
  CHECK(with_override({{"expiry", "skip"}}).find("\"expiry\" verification can not be skipped") != std::string::npos);
  CHECK(with_override({{"authenticTimestamp", "skip"}}).find("can not be skipped") != std::string::npos);
  CHECK(with_override({{"revocation", "skip"}}).empty());
  CHECK(with_override({{"bogus", "log"}}) ==
        prefix + "verification type \"bogus\" in custom signature verification is not supported, supported values are "
                 "[\"integrity\" \"authenticity\" \"authenticTimestamp\" \"expiry\" \"revocation\"]");
  CHECK(with_override({{"expiry", "warn"}}) ==
        prefix + "verification action \"warn\" in custom signature verification is not supported, supported values are "
                 "[\"enforce\" \"log\" \"skip\"]");
  CHECK(with_override({{"expiry", nullptr}}).find("verification action \"\" in custom") != std::string::npos);
  CHECK(with_override({{"expiry", "log"}}, "skip") ==
        prefix + "signature verification level \"skip\" can't be used to customize signature verification");
  CHECK(with_override(json::object(), "audit").empty());

  json st = good_statement();
  st["signatureVerification"] = {{"level", "audit"}, {"override", {{"authenticity", "enforce"}, {"expiry", "enforce"}}}};
  auto v = parse_json(doc_of({st})).statements()[0].verification;
  CHECK(v.level == Level::audit);
  CHECK(v.authenticity == Action::enforce);
  CHECK(v.expiry == Action::enforce);
  CHECK(v.authentic_timestamp == Action::log);
}

TEST_CASE("trust policy: trust store values")
{
  auto with_stores = [](json stores) {
    json st = good_statement();
    st["trustStores"] = std::move(stores);
    return statement_error(st);
  };
  const std::string prefix = "oci trust policy: trust policy statement \"test-statement-name\" ";
  CHECK(with_stores({"ca"}) == prefix + "has malformed trust store value \"ca\". The required format is "
                                        "<TrustStoreType>:<TrustStoreName>");
  CHECK(with_stores({"*"}).find("has malformed trust store value \"*\"") != std::string::npos);
  CHECK(with_stores({"invalid:test-trust-store"}) ==
        prefix + "uses an unsupported trust store type \"invalid\" in trust store value \"invalid:test-trust-store\"");
  CHECK(with_stores({"CA:x"}).find("unsupported trust store type \"CA\"") != std::string::npos);
  CHECK(with_stores({"ca:"}) == prefix + "uses an unsupported trust store name \"\" in trust store value \"ca:\". Named "
                                         "store name needs to follow [a-zA-Z0-9_.-]+ format");
  CHECK(with_stores({"ca:a/b"}).find("unsupported trust store name \"a/b\"") != std::string::npos);
  CHECK(with_stores({"ca:a:b"}).find("unsupported trust store name \"a:b\"") != std::string::npos);
  CHECK(with_stores({"ca:Store_1.a-b", "tsa:t", "signingAuthority:s", "ca:Store_1.a-b"}).empty());
}

TEST_CASE("trust policy: trusted identity values")
{
  auto with_ids = [](json ids) {
    json st = good_statement();
    st["trustedIdentities"] = std::move(ids);
    return statement_error(st);
  };
  const std::string prefix = "oci trust policy: trust policy statement \"test-statement-name\" ";
  CHECK(with_ids({""}) == prefix + "has an empty trusted identity");
  CHECK(with_ids({nullptr}) == prefix + "has an empty trusted identity");
  CHECK(with_ids({"*", "test-identity"}) ==
        prefix + "uses a wildcard trusted identity '*', a wildcard identity cannot be used in conjunction with other values");
  CHECK(with_ids({"*"}).empty());
  CHECK(with_ids({"x509.subject"}) == prefix + "has trusted identity \"x509.subject\" missing separator");
  CHECK(with_ids({"x509.subject:"}) == prefix + "has trusted identity \"x509.subject:\" without an identity value");
  CHECK(with_ids({"x509.subject: CN=x,ST=WA,C=US"}) ==
        prefix + "has trusted identity \"x509.subject: CN=x,ST=WA,C=US\" with invalid identity value: distinguished name "
                 "(DN) \" CN=x,ST=WA,C=US\" has no mandatory RDN attribute for \"O\", it must contain 'C', 'ST' or 'S', "
                 "and 'O' RDN attributes at a minimum");
  CHECK(with_ids({"x509.subject:C=US,S=WA,O=x"}).empty());
  CHECK(with_ids({"x509.subject:C=US,ST=WA,O=x,OU=a,OU=b"}).find("duplicate RDN attribute for \"OU\"") != std::string::npos);
  CHECK(with_ids({"x509.subject:C=US+ST=WA,O=x"}).find("multi-valued RDN attributes") != std::string::npos);
  CHECK(with_ids({"x509.subject:C=US,ST=WA,O=#0c0141"}).find("containing \"=#\"") != std::string::npos);
  // Other prefixes are for plugins: accepted and not parsed.
  CHECK(with_ids({"nonX509Prefix:my-custom-identity"}).empty());
  CHECK(with_ids({"x509.subject :C=US"}).empty());
  // Overlaps: one identity's attributes are a subset of another's.
  CHECK(with_ids({"x509.subject: C=US, ST=WA, O=x", "x509.subject: C=US, ST=WA, O=x, CN=y"}) ==
        prefix + "has overlapping x509 trustedIdentities, \"x509.subject: C=US, ST=WA, O=x\" overlaps with "
                 "\"x509.subject: C=US, ST=WA, O=x, CN=y\"");
  CHECK(with_ids({"x509.subject:C=US,ST=WA,O=x", "x509.subject:O=x,S=WA,C=US"}).find("overlapping") != std::string::npos);
  CHECK(with_ids({"x509.subject:C=US,ST=WA,O=x,CN=a", "x509.subject:C=US,ST=WA,O=x,CN=b"}).empty());
}

TEST_CASE("trust policy: registry scope syntax (notation's regexes)")
{
  auto with_scope = [](const std::string& scope) {
    json st = good_statement();
    st["registryScopes"] = {scope};
    return statement_error(st);
  };
  for (const char* scope : {"*", "example.com/rep", "example.com:8080/rep/rep2", "example.com/rep/subrep/subsub",
                            "10.10.10.10:8080/rep/rep2", "domain/rep", "domain:1234/rep", "local/myOCILayout",
                            "localhost:5000/test-repo", "Reg-1.Example.COM/a__b/c.d/e---f/g_h", "a/b", "docker.io/alpine"}) {
    CAPTURE(scope);
    if (std::string(scope) == "local/myOCILayout") {
      // Uppercase is not allowed in repository paths (the hint's example notwithstanding).
      CHECK(with_scope(scope).find("is not valid") != std::string::npos);
      continue;
    }
    CHECK(with_scope(scope).empty());
  }
  const std::string ensure = "make sure it is a fully qualified repository without the scheme, protocol or tag. For "
                             "example domain.com/my/repository or a local scope like local/myOCILayout";
  for (const char* scope : {"", "1:1", "a,b", "abcd", "1111", "1,2", "example.com/rep:tag", "example.com/rep/subrep/sub:latest",
                            "example.com", "rep/rep2:latest", "repository", "10.10.10.10", "10.10.10.10:8080/rep/rep2:latest",
                            "localhost:5000\\test-repo", "https://example.com/rep", "example.com/", "/rep",
                            "example.com/rep@sha256:abc", "-a.com/rep", "a-.com/rep", "a..com/rep", "a.com:/rep",
                            "a.com:x1/rep", "example.com/Rep", "example.com/rep/", "example.com//rep", "example.com/.rep",
                            "example.com/rep.", "example.com/a._b", "example.com/a___b", "[::1]:5000/rep"}) {
    CAPTURE(scope);
    CHECK(with_scope(scope) == "registry scope " + go_quote(scope) + " is not valid, " + ensure);
  }
  for (const char* scope : {"example.com/*", "*/", "example*/", "ex*test"}) {
    CAPTURE(scope);
    CHECK(with_scope(scope) == "registry scope \"" + std::string(scope) + "\" with wild card(s) is not valid, " + ensure);
  }
  // Long inputs are linear (no regex backtracking).
  CHECK(with_scope("example.com/" + std::string(5000, 'a') + "!").find("is not valid") != std::string::npos);
}

TEST_CASE("trust policy: applicable statement")
{
  json exact = good_statement("exact", "localhost:5000/test-repo9");
  json wildcard = good_statement("wildcard", "*");
  json other = good_statement("other", "other.io/a");
  for (const auto& order : {std::vector<json>{exact, wildcard, other}, std::vector<json>{wildcard, other, exact}}) {
    auto doc = parse_json(doc_of(order));
    REQUIRE(doc.applicable("localhost:5000/test-repo9"));
    CHECK(doc.applicable("localhost:5000/test-repo9")->name == "exact");
    CHECK(doc.applicable("other.io/a")->name == "other");
    CHECK(doc.applicable("localhost:5000/test-repo")->name == "wildcard");
    CHECK(doc.applicable("")->name == "wildcard");
  }
  auto no_wildcard = parse_json(doc_of({exact, other}));
  CHECK(no_wildcard.applicable("localhost:5000/test-repo") == nullptr);
  CHECK(no_wildcard.applicable("localhost:5000/test-repo9:tag") == nullptr);
  CHECK(no_wildcard.applicable("localhost:5000/test-repo9")->name == "exact");
}

TEST_CASE("trust policy: scopes are matched normalised on both sides (design §8)")
{
  json strict = good_statement("strict", "Registry.Internal:443/team/app");
  json lax = good_statement("lax", "*");
  lax["signatureVerification"]["level"] = "skip";
  lax.erase("trustStores");
  lax.erase("trustedIdentities");
  json hub = good_statement("hub", "docker.io/alpine");
  json other = good_statement("other", "index.docker.io:443/user/app");
  auto doc = parse_json(doc_of({lax, strict, hub, other}));
  // Validation keeps the scopes as written; matching uses their normalised form.
  CHECK(doc.statements()[1].registry_scopes == std::vector<std::string>{"Registry.Internal:443/team/app"});
  CHECK(doc.statements()[1].normalised_scopes == std::vector<std::string>{"registry.internal/team/app"});
  CHECK(doc.statements()[0].normalised_scopes == std::vector<std::string>{"*"});
  for (const char* scope : {"registry.internal/team/app", "REGISTRY.INTERNAL/team/app", "registry.internal:443/team/app",
                            "registry.internal:80/team/app", "Registry.Internal:0443/team/app"}) {
    CAPTURE(scope);
    REQUIRE(doc.applicable(scope));
    CHECK(doc.applicable(scope)->name == "strict");
  }
  for (const char* scope : {"docker.io/alpine", "docker.io/library/alpine", "index.docker.io/library/alpine",
                            "registry-1.docker.io/alpine", "Docker.IO:443/alpine"}) {
    CAPTURE(scope);
    CHECK(doc.applicable(scope)->name == "hub");
  }
  CHECK(doc.applicable("docker.io/user/app")->name == "other");
  // Other ports, other paths and other hosts are other repositories.
  for (const char* scope : {"registry.internal:5000/team/app", "registry.internal:8443/team/app", "registry.internal/team/App",
                            "registry.internal/team/app/sub", "registry.internal.evil.example/team/app",
                            "docker.io/library/alpine/x", "docker.io:5000/alpine"}) {
    CAPTURE(scope);
    CHECK(doc.applicable(scope)->name == "lax");
  }
}

TEST_CASE("trust policy: statements whose scopes are equal once normalised are refused")
{
  const std::string tail = " once normalised (host lowercased, default port dropped, docker.io/library/ expanded), one repository "
                           "can only be associated with one statement";
  CHECK(policy_error(doc_of({good_statement("a", "registry.internal/team/app"),
                             good_statement("b", "Registry.Internal:443/team/app")})) ==
        "registry scopes \"registry.internal/team/app\" (statement \"a\") and \"Registry.Internal:443/team/app\" (statement "
        "\"b\") name the same repository \"registry.internal/team/app\"" +
            tail);
  CHECK(policy_error(doc_of({good_statement("hub", "docker.io/alpine"), good_statement("mirror", "reg.io/x"),
                             good_statement("official", "index.docker.io/library/alpine")})) ==
        "registry scopes \"docker.io/alpine\" (statement \"hub\") and \"index.docker.io/library/alpine\" (statement "
        "\"official\") name the same repository \"docker.io/library/alpine\"" +
            tail);
  json two = good_statement("two", "reg.io:0080/x");
  two["registryScopes"].push_back("reg.io:5000/y");
  CHECK(policy_error(doc_of({two, good_statement("one", "REG.IO/x")})).find(
            "registry scopes \"reg.io:0080/x\" (statement \"two\") and \"REG.IO/x\" (statement \"one\")") == 0);
  // Spelled identically, notation's own check (and message) comes first.
  CHECK(policy_error(doc_of({good_statement("a", "reg.io/x"), good_statement("b", "reg.io/x")}))
            .find("registry scope \"reg.io/x\" is present in multiple oci trust policy statements") == 0);
  // Within one statement two spellings of one repository are not ambiguous (and let one policy
  // serve notation, which matches literally, and ferry).
  json both = good_statement("both", "docker.io/alpine");
  both["registryScopes"].push_back("docker.io/library/alpine");
  both["registryScopes"].push_back("Registry.Internal:443/team/app");
  both["registryScopes"].push_back("registry.internal/team/app");
  auto doc = parse_json(doc_of({both, good_statement("other", "reg.io/x")}));
  CHECK(doc.applicable("index.docker.io/alpine")->name == "both");
  CHECK(doc.applicable("registry.internal:443/team/app")->name == "both");
  // Different ports are different repositories, not duplicates.
  CHECK_NOTHROW(parse_json(doc_of({good_statement("a", "reg.io/x"), good_statement("b", "reg.io:5000/x")})));
}

TEST_CASE("trust policy: JSON decoding follows Go's encoding/json")
{
  // Keys match fields case-insensitively; unknown keys are ignored.
  json st = {{"NAME", "n"},
             {"RegistryScopes", {"a.io/b"}},
             {"signatureverification", {{"LEVEL", "audit"}, {"comment", "x"}}},
             {"TrustStores", {"ca:x"}},
             {"trustedidentities", {"*"}},
             {"globalPolicy", true}};
  auto doc = TrustPolicyDocument::parse(json{{"Version", "1.0"}, {"TRUSTPOLICIES", {st}}, {"extra", 1}}.dump(), "tp.json");
  REQUIRE(doc.statements().size() == 1);
  CHECK(doc.statements()[0].name == "n");
  CHECK(doc.statements()[0].verification.level == Level::audit);
  // When two keys match one field, the later one wins.
  CHECK(policy_error(R"({"version":"2.0","Version":"1.0","trustPolicies":[]})") ==
        "oci trust policy document can not have zero trust policy statements");
  // null leaves the zero value.
  json nulls = good_statement();
  nulls["trustStores"] = nullptr;
  CHECK(statement_error(nulls).find("is either missing trust stores or trusted identities") != std::string::npos);
  CHECK(policy_error(R"({"version":"1.0","trustPolicies":[null]})").find("is missing a name") != std::string::npos);
  // One JSON value is decoded; what follows it is not read (json.Decoder.Decode).
  CHECK(policy_error(doc_of({good_statement()}).dump() + " trailing").empty());
}

TEST_CASE("trust policy: malformed documents")
{
  for (const char* text : {"", "{", "[]", "\"1.0\"", R"({"version":1.0,"trustPolicies":[]})",
                           R"({"version":"1.0","trustPolicies":{}})", R"({"version":"1.0","trustPolicies":[1]})",
                           R"({"version":"1.0","trustPolicies":[{"name":"a","registryScopes":"*"}]})",
                           R"({"version":"1.0","trustPolicies":[{"name":"a","trustStores":[1]}]})",
                           R"({"version":"1.0","trustPolicies":[{"name":"a","signatureVerification":"strict"}]})",
                           R"({"version":"1.0","trustPolicies":[{"name":"a","signatureVerification":{"override":[]}}]})",
                           R"({"version":"1.0","trustPolicies":[{"name":"a","signatureVerification":{"level":1}}]})"}) {
    CAPTURE(text);
    std::string err = policy_error(std::string(text));
    CHECK(err.rfind("malformed trust policy", 0) == 0);
    CHECK(err.find("https://notaryproject.dev/docs/quickstart/#create-a-trust-policy") != std::string::npos);
  }
}

TEST_CASE("trust policy: load from a file")
{
  TempDir dir;
  auto load_error = [](const fs::path& p) -> std::string {
    try {
      TrustPolicyDocument::load(p);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  auto missing = dir.path() / "trustpolicy.json";
  CHECK(load_error(missing) == missing.string() +
                                   ": trust policy is not present. To create a trust policy, see: "
                                   "https://notaryproject.dev/docs/quickstart/#create-a-trust-policy");
  {
    std::ofstream out(missing);
    out << doc_of({good_statement()}).dump();
  }
  CHECK(TrustPolicyDocument::load(missing).statements().size() == 1);
  auto link = dir.path() / "trustpolicy.oci.json";
  fs::create_symlink(missing, link);
  CHECK(load_error(link).find("trust policy is not a regular file (symlinks are not supported)") != std::string::npos);
  fs::create_directory(dir.path() / "sub");
  CHECK(load_error(dir.path() / "sub").find("is not a regular file") != std::string::npos);
  {
    std::ofstream out(missing);
    out << "{";
  }
  CHECK(load_error(missing).find(missing.string() + ": malformed trust policy") == 0);
}

TEST_CASE("trusted identities: subset match over the Go-rendered leaf subject")
{
  auto leaf = identity_cert({{"C", "US"}, {"ST", "WA"}, {"L", "Seattle"}, {"O", "SomeOrg"}, {"OU", "SomeOU"}, {"CN", "SomeCN"}});
  auto matches = [&](std::vector<std::string> ids, X509* cert = nullptr) {
    return trusted_identity_matches(ids, cert ? cert : leaf.get());
  };
  CHECK(matches({"*"}));
  CHECK(matches({"x509.subject:C=US,O=SomeOrg,ST=WA"}));
  CHECK(matches({"x509.subject: C=US, S=WA, O=SomeOrg, CN=SomeCN, OU=SomeOU, L=Seattle"}));
  CHECK(matches({"x509.subject:C=US,O=SomeOrg,ST=WA", "nonX509Prefix:my-custom-identity"}));
  CHECK(matches({"x509.subject:C=IND,O=SomeOrg,ST=TS", "x509.subject:C=US,O=SomeOrg,ST=WA"}));
  CHECK_FALSE(matches({"x509.subject:C=IND,O=SomeOrg,ST=TS"}));
  CHECK_FALSE(matches({"x509.subject:C=US,O=someorg,ST=WA"}));
  CHECK_FALSE(matches({"x509.subject:C=US,O=SomeOrg,ST=WA,CN=Other"}));
  CHECK_FALSE(matches({"nonX509Prefix:my-custom-identity"}));
  CHECK_FALSE(matches({}));

  CHECK(trusted_identity_failure("p", {"nonX509Prefix:my-custom-identity"}, leaf.get()) ==
        "no x509 trusted identities are configured in the trust policy \"p\"");
  CHECK(trusted_identity_failure("p", {"x509.subject:C=IND,O=SomeOrg,ST=TS"}, leaf.get()) ==
        "signing certificate from the digital signature does not match the X.509 trusted identities "
        "[map[\"C\":\"IND\" \"O\":\"SomeOrg\" \"ST\":\"TS\"]] defined in the trust policy \"p\"");
  CHECK(trusted_identity_failure("p", {"x509.subject:C=bad=#identity,O=LOL,ST=LOL"}, leaf.get())->find("=#") !=
        std::string::npos);
  CHECK(trusted_identity_failure("p", {"x509.subject"}, leaf.get()) ==
        "trust policy statement \"p\" has trusted identity \"x509.subject\" missing separator");
  CHECK_FALSE(trusted_identity_failure("p", {"*"}, nullptr));

  // Values with special characters round-trip through Go's escaping.
  auto special = identity_cert({{"C", "US"}, {"ST", "WA"}, {"O", "Acme, Inc. + \"Co\""}, {"CN", " spaced "}});
  CHECK(matches({"x509.subject:C=US,ST=WA,O=Acme\\, Inc. \\+ \\\"Co\\\",CN=\\ spaced\\ "}, special.get()));
  CHECK(matches({"x509.subject:C=US,ST=WA,O=Acme\\2C Inc. \\2B \\22Co\\22"}, special.get()));
  CHECK_FALSE(matches({"x509.subject:C=US,ST=WA,O=Acme\\, Inc. \\+ \\\"Co\\\",CN=spaced"}, special.get()));
}

TEST_CASE("trusted identities: leaf subjects only '*' can match")
{
  auto check_only_wildcard = [](X509* cert, const std::string& why) {
    CAPTURE(why);
    CHECK(trusted_identity_matches({"*"}, cert));
    CHECK_FALSE(trusted_identity_matches({"x509.subject:C=US,ST=WA,O=Org"}, cert));
    auto failure = trusted_identity_failure("p", {"x509.subject:C=US,ST=WA,O=Org"}, cert);
    REQUIRE(failure);
    CHECK(failure->rfind("error while parsing the certificate subject from the digital signature. error : ", 0) == 0);
  };
  auto email = identity_cert({{"C", "US"}, {"ST", "WA"}, {"O", "Org"}, {"emailAddress", "a@b.c"}});
  check_only_wildcard(email.get(), "emailAddress renders as OID=#hex");
  auto uid = identity_cert({{"C", "US"}, {"ST", "WA"}, {"O", "Org"}, {"UID", "jdoe"}});
  check_only_wildcard(uid.get(), "UID");
  auto dc = identity_cert({{"DC", "com"}, {"C", "US"}, {"ST", "WA"}, {"O", "Org"}});
  check_only_wildcard(dc.get(), "DC");
  auto two_ou = identity_cert({{"C", "US"}, {"ST", "WA"}, {"O", "Org"}, {"OU", "a"}, {"OU", "b"}});
  check_only_wildcard(two_ou.get(), "repeated OU is a multi-valued RDN in Go's rendering");
  auto two_o = identity_cert({{"C", "US"}, {"ST", "WA"}, {"O", "Org"}, {"O", "Org2"}});
  check_only_wildcard(two_o.get(), "repeated O");
  auto no_o = identity_cert({{"C", "US"}, {"ST", "WA"}, {"CN", "x"}});
  auto failure = trusted_identity_failure("p", {"x509.subject:C=US,ST=WA,O=Org"}, no_o.get());
  REQUIRE(failure);
  CHECK(failure->find("has no mandatory RDN attribute for \\\"O\\\"") != std::string::npos);
  CHECK(trusted_identity_matches({"*"}, no_o.get()));
  auto hash = identity_cert({{"C", "US"}, {"ST", "WA"}, {"O", "Org"}, {"CN", "Bad=#CN"}});
  check_only_wildcard(hash.get(), "a subject containing =#");

  // Two CNs: Go keeps only the last, so matching sees one CN.
  auto two_cn = identity_cert({{"C", "US"}, {"ST", "WA"}, {"O", "Org"}, {"CN", "first"}, {"CN", "second"}});
  CHECK(trusted_identity_matches({"x509.subject:C=US,ST=WA,O=Org,CN=second"}, two_cn.get()));
  CHECK_FALSE(trusted_identity_matches({"x509.subject:C=US,ST=WA,O=Org,CN=first"}, two_cn.get()));
}

TEST_CASE("trust policy: upstream e2e policies (CASES.md §1, §2)")
{
  auto shared = policy_shared_notation();
  if (!shared) {
    MESSAGE("../shared/notation not found; skipping upstream fixtures");
    return;
  }
  const fs::path dir = *shared / "notation-e2e" / "trustpolicies";
  auto error_of = [&](const std::string& file) -> std::string {
    try {
      TrustPolicyDocument::load(dir / file);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  auto load = [&](const std::string& file) { return TrustPolicyDocument::load(dir / file); };

  struct Expect {
    const char* row;
    const char* file;
    const char* error; // substring
  };
  const Expect invalid[] = {
      {"2.1", "unset_trust_store_trustpolicy.json",
       "trust policy statement \"e2e\" is either missing trust stores or trusted identities, both must be specified"},
      {"2.3", "malformed_trust_store_trustpolicy.json",
       "trust policy statement \"e2e\" uses an unsupported trust store name \"\" in trust store value \"ca:\". Named store "
       "name needs to follow [a-zA-Z0-9_.-]+ format"},
      {"2.4", "wildcard_trust_store_trustpolicy.json",
       "trust policy statement \"e2e\" has malformed trust store value \"*\". The required format is "
       "<TrustStoreType>:<TrustStoreName>"},
      {"2.5", "unset_trusted_identity_trustpolicy.json",
       "is either missing trust stores or trusted identities, both must be specified"},
      {"2.6", "malformed_trusted_identity_trustpolicy.json",
       "trust policy statement \"e2e\" has trusted identity \"x509.subject CN=e2e,O=Notary,L=Seattle,ST=WA,C=US\" missing "
       "separator"},
      {"2.7", "empty_trusted_identity_trustpolicy.json", "trust policy statement \"e2e\" has an empty trusted identity"},
      {"2.8", "overlapped_trusted_identity_trustpolicy.json",
       "trust policy statement \"e2e\" has overlapping x509 trustedIdentities"},
      {"2.9", "wildcard_plus_other_trusted_identity_trustpolicy.json",
       "uses a wildcard trusted identity '*', a wildcard identity cannot be used in conjunction with other values"},
      {"2.10", "missing_organization_trusted_identity_trustpolicy.json",
       "distinguished name (DN) \" CN=e2e,L=Seattle,ST=WA,C=US\" has no mandatory RDN attribute for \"O\", it must "
       "contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum"},
      {"2.11", "missing_state_trusted_identity_trustpolicy.json",
       "has no mandatory RDN attribute for \"ST\", it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum"},
      {"2.12", "missing_country_trusted_identity_trustpolicy.json",
       "has no mandatory RDN attribute for \"C\", it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum"},
      {"2.13", "multi_statements_with_the_same_registry_scope_trustpolicy.json",
       "registry scope \"localhost:5000/test-repo8\" is present in multiple oci trust policy statements, one registry "
       "scope value can only be associated with one statement"},
      {"2.14", "multi_statements_with_the_same_name_trustpolicy.json",
       "multiple oci trust policy statements use the same name \"e2e\", statement names must be unique"},
      {"2.15", "multi_statements_with_multi_wildcard_registry_scope_trustpolicy.json",
       "registry scope \"*\" is present in multiple oci trust policy statements"},
      {"2.17", "empty_registry_scope_trustpolicy.json", "trust policy statement \"e2e\" has zero registry scopes"},
      {"2.18", "malformed_registry_scope_trustpolicy.json",
       "registry scope \"localhost:5000\\\\test-repo\" is not valid, make sure it is a fully qualified repository without "
       "the scheme, protocol or tag. For example domain.com/my/repository or a local scope like local/myOCILayout"},
      {"2.19", "overlapped_registry_scope_trustpolicy.json",
       "registry scope \"localhost:5000/test-repo6\" is present in multiple oci trust policy statements"},
      {"2.20", "wildcard_plus_other_registry_scope_trustpolicy.json",
       "trust policy statement \"e2e\" uses wildcard registry scope '*', a wildcard scope cannot be used in conjunction "
       "with other scope values"},
      {"2.23", "invalid_format_trustpolicy.json", "malformed trust policy"},
      {"1.12", "override_integrity_for_permissive_trustpolicy.json",
       "\"integrity\" verification can not be overridden in custom signature verification"},
      {"blob", "blob_trust_policy.json", "has zero registry scopes"},
  };
  for (const auto& e : invalid) {
    CAPTURE(e.row);
    CAPTURE(e.file);
    std::string err = error_of(e.file);
    CHECK(err.find(e.error) != std::string::npos);
  }
  {
    CAPTURE("2.24");
    CHECK(error_of("no_such_trustpolicy.json").find("trust policy is not present") != std::string::npos);
  }

  // Every other policy file is valid.
  for (const char* file : {"trustpolicy.json", "permissive_trustpolicy.json", "audit_trustpolicy.json", "skip_trustpolicy.json",
                           "override_strict_trustpolicy.json", "override_permissive_trustpolicy.json",
                           "override_audit_trustpolicy.json", "valid_trusted_identity_trustpolicy.json",
                           "invalid_trusted_identity_trustpolicy.json", "multiple_trusted_identity_trustpolicy.json",
                           "multiple_trust_store_trustpolicy.json", "overlapped_trust_store_trustpolicy.json",
                           "invalid_trust_store_trustpolicy.json", "invalid_registry_scope_trustpolicy.json",
                           "registry_scope_trustpolicy.json", "multiple_registry_scope_trustpolicy.json",
                           "any_registry_scope_trust_policy.json", "multi_statements_with_wildcard_registry_scope_trustpolicy.json",
                           "timestamp_trustpolicy.json", "timestamp_after_cert_expiry_trustpolicy.json",
                           "generate_test_trustpolicy.json", "quickstart_trustpolicy.json"}) {
    CAPTURE(file);
    CHECK(error_of(file).empty());
  }

  // 1.x levels and overrides.
  CHECK(load("trustpolicy.json").statements()[0].verification.authenticity == Action::enforce);
  CHECK(load("audit_trustpolicy.json").statements()[0].verification.authenticity == Action::log);
  CHECK(load("permissive_trustpolicy.json").statements()[0].verification.expiry == Action::log);
  CHECK(load("skip_trustpolicy.json").statements()[0].verification.level == Level::skip);
  auto ostrict = load("override_strict_trustpolicy.json").statements()[0].verification;
  CHECK((ostrict.authenticity == Action::log && ostrict.expiry == Action::log &&
         ostrict.authentic_timestamp == Action::log && ostrict.revocation == Action::log));
  auto operm = load("override_permissive_trustpolicy.json").statements()[0].verification;
  CHECK((operm.authenticity == Action::log && operm.expiry == Action::enforce));
  auto oaudit = load("override_audit_trustpolicy.json").statements()[0].verification;
  CHECK((oaudit.authenticity == Action::enforce && oaudit.expiry == Action::enforce));
  CHECK(load("timestamp_after_cert_expiry_trustpolicy.json").statements()[0].verify_timestamp == "afterCertExpiry");

  // 2.2: the policy is valid; the store it names does not exist.
  {
    auto doc = load("invalid_trust_store_trustpolicy.json");
    const auto& store = doc.statements()[0].trust_stores[0];
    try {
      TrustStore(*shared / "notation-e2e" / "truststores" / "e2e").load(store.first, store.second);
      FAIL("expected the trust store load to fail");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("the trust store \"invalid_store\" of type \"ca\" does not exist") !=
            std::string::npos);
    }
  }
  // 2.16: exact scope for localhost:5000/test-repo9, else '*'.
  {
    auto doc = load("multi_statements_with_wildcard_registry_scope_trustpolicy.json");
    CHECK(doc.applicable("localhost:5000/test-repo9")->name == "e2e");
    CHECK(doc.applicable("localhost:5000/e2e")->name == "e2e2");
  }
  // 2.21: no statement applies to any other repository.
  CHECK(load("invalid_registry_scope_trustpolicy.json").applicable("localhost:5000/test-repo") == nullptr);
  // 2.22: listed scopes apply.
  CHECK(load("registry_scope_trustpolicy.json").applicable("localhost:5000/test-repo") != nullptr);
  CHECK(load("multiple_registry_scope_trustpolicy.json").applicable("localhost:5000/test-repo2") != nullptr);
  CHECK(load("multiple_registry_scope_trustpolicy.json").applicable("localhost:5000/test-repo3") != nullptr);
  CHECK(load("multiple_registry_scope_trustpolicy.json").applicable("localhost:5000/test-repo4") == nullptr);
  CHECK(load("any_registry_scope_trust_policy.json").applicable("localhost:5000/anything") != nullptr);

  // 1.2-1.4: trusted identities against the e2e signer (e2e.crt is the envelope's leaf).
  auto e2e = parse_certificates(slurp(*shared / "notation-e2e" / "truststores" / "e2e" / "x509" / "ca" / "e2e" / "e2e.crt"),
                                "e2e.crt");
  REQUIRE(!e2e.empty());
  CHECK(go_subject_string(e2e[0].get()) == "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US");
  auto ids = [&](const std::string& file) { return load(file).statements()[0].trusted_identities; };
  CHECK(trusted_identity_matches(ids("valid_trusted_identity_trustpolicy.json"), e2e[0].get()));
  auto failure = trusted_identity_failure("e2e", ids("invalid_trusted_identity_trustpolicy.json"), e2e[0].get());
  REQUIRE(failure);
  CHECK(failure->find("signing certificate from the digital signature does not match the X.509 trusted identities") == 0);
  CHECK(trusted_identity_matches(ids("multiple_trusted_identity_trustpolicy.json"), e2e[0].get()));
  auto new_e2e = parse_certificates(
      slurp(*shared / "notation-e2e" / "truststores" / "new_e2e" / "x509" / "ca" / "e2e" / "new_e2e.crt"), "new_e2e.crt");
  CHECK(trusted_identity_matches(ids("multiple_trusted_identity_trustpolicy.json"), new_e2e[0].get()));
  CHECK_FALSE(trusted_identity_matches(ids("valid_trusted_identity_trustpolicy.json"), new_e2e[0].get()));
}

TEST_CASE("trusted identities: upstream DN cases (CASES.md §9)")
{
  auto shared = policy_shared_notation();
  if (!shared) {
    MESSAGE("../shared/notation not found; skipping upstream fixtures");
    return;
  }
  const fs::path dir = *shared / "notation-go" / "verifier-testdata" / "verifier";
  auto signing = parse_certificates(slurp(dir / "signing-cert.pem"), "signing-cert.pem");
  auto bad = parse_certificates(slurp(dir / "bad-cert.pem"), "bad-cert.pem");
  REQUIRE(!signing.empty());
  REQUIRE(!bad.empty());
  X509* good = signing[0].get();
  const std::string x509 = "x509.subject:";
  CHECK(trusted_identity_matches({x509 + "C=US,O=SomeOrg,ST=WA"}, good));
  CHECK(trusted_identity_matches({x509 + "C=US,O=SomeOrg,ST=WA", "nonX509Prefix:my-custom-identity"}, good));
  CHECK(trusted_identity_matches({x509 + "C=US,O=SomeOrg,ST=WA", x509 + "C=IND,O=SomeOrg,ST=TS"}, good));
  CHECK(trusted_identity_failure("test", {"nonX509Prefix:my-custom-identity"}, good) ==
        "no x509 trusted identities are configured in the trust policy \"test\"");
  CHECK(trusted_identity_matches({"*"}, good));
  CHECK_FALSE(trusted_identity_matches({x509 + "C=IND,O=SomeOrg,ST=TS"}, good));
  CHECK_FALSE(trusted_identity_matches({x509 + "C=IND,O=SomeOrg,ST=TS", "nonX509Prefix:my-custom-identity"}, good));
  CHECK_FALSE(trusted_identity_matches({x509 + "C=IND,O=SomeOrg,ST=TS", x509 + "C=LOL,O=LOL,ST=LOL"}, good));
  auto hash = trusted_identity_failure("test", {x509 + "C=bad=#identity,O=LOL,ST=LOL"}, good);
  REQUIRE(hash);
  CHECK(hash->find("notation does not support x509.subject identities containing \"=#\"") != std::string::npos);
  auto leaf_hash = trusted_identity_failure("test", {x509 + "C=US,O=SomeOrg,ST=WA"}, bad[0].get());
  REQUIRE(leaf_hash);
  CHECK(leaf_hash->rfind("error while parsing the certificate subject from the digital signature", 0) == 0);
  CHECK(trusted_identity_matches({"*"}, bad[0].get()));
}

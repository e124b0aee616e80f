#include <doctest/doctest.h>

#include "fake_http_client.hpp"

#include <ferry/error.hpp>
#include <ferry/remote/auth.hpp>
#include <ferry/util/base64.hpp>

#include <random>

using namespace ferry;
using namespace ferry::remote;

namespace {

HttpHeaders challenge_headers(const std::string& value)
{
  HttpHeaders headers;
  headers.add("WWW-Authenticate", value);
  return headers;
}

Credential user_credential()
{
  Credential c;
  c.username = "alice";
  c.password = "s3cret";
  c.source = "test config";
  return c;
}

HttpRequest get(const std::string& url, const std::string& method = "GET")
{
  HttpRequest r;
  r.method = method;
  r.url = url;
  return r;
}

std::string header_or_empty(const HttpRequest& r, const std::string& name)
{
  return r.headers.get(name).value_or("");
}

} // namespace

TEST_CASE("auth: parse several challenges in one header")
{
  auto cs = parse_www_authenticate(
      R"(Basic realm="simple", Bearer realm="https://auth.example/token",service="reg.example",scope="repository:app:pull")");
  REQUIRE(cs.size() == 2);
  CHECK(cs[0].scheme == "basic");
  CHECK(cs[0].params.at("realm") == "simple");
  CHECK(cs[1].scheme == "bearer");
  CHECK(cs[1].params.at("realm") == "https://auth.example/token");
  CHECK(cs[1].params.at("service") == "reg.example");
  CHECK(cs[1].params.at("scope") == "repository:app:pull");
}

TEST_CASE("auth: quoted strings with escaped quotes and commas")
{
  auto cs = parse_www_authenticate(R"(Newauth realm="apps", type=1, title="Login to \"apps\", now", Basic realm="x\\y")");
  REQUIRE(cs.size() == 2);
  CHECK(cs[0].scheme == "newauth");
  CHECK(cs[0].params.at("realm") == "apps");
  CHECK(cs[0].params.at("type") == "1");
  CHECK(cs[0].params.at("title") == "Login to \"apps\", now");
  CHECK(cs[1].params.at("realm") == "x\\y");

  auto scopes = parse_www_authenticate(R"(Bearer realm="r",scope="repository:a:pull,push repository:b:pull")");
  REQUIRE(scopes.size() == 1);
  CHECK(scopes[0].params.at("scope") == "repository:a:pull,push repository:b:pull");
}

TEST_CASE("auth: scheme and parameter names are case-insensitive")
{
  auto cs = parse_www_authenticate("BEARER Realm=\"https://a/t\" , SERVICE = svc");
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].scheme == "bearer");
  CHECK(cs[0].params.at("realm") == "https://a/t");
  CHECK(cs[0].params.at("service") == "svc");
}

TEST_CASE("auth: token68 challenges")
{
  auto cs = parse_www_authenticate("Negotiate YWJj==, Basic realm=r");
  REQUIRE(cs.size() == 2);
  CHECK(cs[0].scheme == "negotiate");
  CHECK(cs[0].token68 == "YWJj==");
  CHECK(cs[0].params.empty());
  CHECK(cs[1].params.at("realm") == "r");
}

TEST_CASE("auth: malformed headers never crash and keep what is sound")
{
  CHECK(parse_www_authenticate("").empty());
  CHECK(parse_www_authenticate(" , ,, ").empty());
  CHECK(parse_www_authenticate("=").empty());
  CHECK(parse_www_authenticate("\"").empty());
  auto unterminated = parse_www_authenticate("Bearer realm=\"https://a/t");
  REQUIRE(unterminated.size() == 1);
  CHECK(unterminated[0].params.at("realm") == "https://a/t");
  auto garbage = parse_www_authenticate("@@@ , Bearer ,,, realm=\"r\", (junk), service=s");
  REQUIRE(garbage.size() == 1);
  CHECK(garbage[0].params.at("realm") == "r");
  CHECK(garbage[0].params.at("service") == "s");
  auto repeated = parse_www_authenticate("Bearer realm=a, realm=b");
  REQUIRE(repeated.size() == 1);
  CHECK(repeated[0].params.at("realm") == "a");

  std::mt19937 rng(7);
  const std::string alphabet = "Bearer realm=\"\\, \t=abc/:;()@\r\n\x01\xff";
  for (int i = 0; i < 5000; ++i) {
    std::string s;
    int len = static_cast<int>(rng() % 40);
    for (int k = 0; k < len; ++k) s += alphabet[rng() % alphabet.size()];
    CHECK_NOTHROW(parse_www_authenticate(s));
  }
}

TEST_CASE("auth: scope derivation from registry URLs")
{
  CHECK(derive_scope("GET", "https://r.example/v2/team/app/manifests/v1") == "repository:team/app:pull");
  CHECK(derive_scope("HEAD", "https://r.example:5000/v2/app/blobs/sha256:ab") == "repository:app:pull");
  CHECK(derive_scope("POST", "https://r.example/v2/app/blobs/uploads/?mount=sha256:ab&from=x") ==
        "repository:app:pull,push");
  CHECK(derive_scope("PATCH", "https://r.example/v2/app/blobs/uploads/uuid-1") == "repository:app:pull,push");
  CHECK(derive_scope("PUT", "https://r.example/v2/app/manifests/v1") == "repository:app:pull,push");
  CHECK(derive_scope("DELETE", "https://r.example/v2/app/manifests/sha256:ab") == "repository:app:delete");
  CHECK(derive_scope("GET", "https://r.example/v2/app/tags/list?n=10") == "repository:app:pull");
  CHECK(derive_scope("GET", "https://r.example/v2/a/referrers/sha256:ab") == "repository:a:pull");
  CHECK(derive_scope("GET", "https://r.example/v2/a/tags/b/manifests/x") == "repository:a/tags/b:pull");
  CHECK(derive_scope("GET", "https://r.example/v2/") == "");
  CHECK(derive_scope("GET", "https://r.example/v2/_catalog") == "");
  CHECK(derive_scope("GET", "https://r.example/other/app/manifests/x") == "");
  CHECK(url_host("https://Reg.Example:5000/v2/") == "reg.example:5000");
  CHECK(url_host("http://user@reg.example/x") == "reg.example");
}

TEST_CASE("auth: Basic challenge is answered with the host's credentials, then sent at once")
{
  FakeHttpClient fake;
  const std::string expected = "Basic " + base64_encode("alice:s3cret");
  fake.handler = [&](const HttpRequest& r) {
    if (header_or_empty(r, "Authorization") == expected) return make_response(200, "ok");
    return make_response(401, "", challenge_headers("Basic realm=\"Registry Realm\""));
  };
  std::vector<std::string> looked_up;
  AuthClient auth(fake, [&](const std::string& host) {
    looked_up.push_back(host);
    return user_credential();
  });

  auto response = auth.send(get("https://reg.example:5000/v2/app/manifests/v1"));
  CHECK(response.status == 200);
  CHECK(response.read_body() == "ok");
  REQUIRE(fake.count() == 2);
  CHECK_FALSE(fake.request(0).headers.get("Authorization"));
  CHECK(header_or_empty(fake.request(1), "Authorization") == expected);
  CHECK(looked_up.at(0) == "reg.example:5000");

  fake.clear();
  CHECK(auth.send(get("https://reg.example:5000/v2/app/blobs/sha256:ab", "HEAD")).status == 200);
  REQUIRE(fake.count() == 1);
  CHECK(header_or_empty(fake.request(0), "Authorization") == expected);

  // Another host does not get alice's credentials proactively.
  fake.clear();
  fake.handler = [&](const HttpRequest&) { return make_response(200); };
  CHECK(auth.send(get("https://other.example/v2/app/manifests/v1")).status == 200);
  CHECK_FALSE(fake.request(0).headers.get("Authorization"));
}

TEST_CASE("auth: Basic challenge without credentials is unauthorized naming the host")
{
  FakeHttpClient fake;
  fake.handler = [&](const HttpRequest&) { return make_response(401, "", challenge_headers("Basic realm=r")); };
  AuthClient auth(fake, [](const std::string&) {
    Credential c;
    c.source = "anonymous";
    return c;
  });
  try {
    auth.send(get("https://reg.example/v2/app/manifests/v1"));
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unauthorized);
    CHECK(std::string(e.what()).find("reg.example") != std::string::npos);
  }
}

TEST_CASE("auth: wrong Basic credentials fail with the credential source")
{
  FakeHttpClient fake;
  fake.handler = [&](const HttpRequest&) { return make_response(401, "", challenge_headers("Basic realm=r")); };
  AuthClient auth(fake, [](const std::string&) { return user_credential(); });
  try {
    auth.send(get("https://reg.example/v2/app/manifests/v1"));
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unauthorized);
    CHECK(std::string(e.what()) == "reg.example: authentication failed (credentials from test config)");
    CHECK(std::string(e.what()).find("s3cret") == std::string::npos);
  }
  CHECK(fake.count() == 2);
}

namespace {

/// A registry at reg.example whose tokens come from auth.example; `valid` tokens pass.
struct BearerRegistry {
  FakeHttpClient fake;
  std::vector<std::string> valid{"T1"};
  std::string challenge_scope = "repository:app:pull";
  std::string token_reply = R"({"token":"T1","expires_in":300})";
  int token_requests = 0;

  BearerRegistry()
  {
    fake.handler = [this](const HttpRequest& r) {
      if (url_host(r.url) == "auth.example") {
        ++token_requests;
        return make_response(200, token_reply);
      }
      std::string authz = header_or_empty(r, "Authorization");
      for (const auto& t : valid)
        if (authz == "Bearer " + t) return make_response(200, "content");
      std::string value = R"(Bearer realm="https://auth.example/token",service="reg.example")";
      if (!challenge_scope.empty()) value += ",scope=\"" + challenge_scope + "\"";
      return make_response(401, R"({"errors":[{"code":"UNAUTHORIZED"}]})", challenge_headers(value));
    };
  }
};

} // namespace

TEST_CASE("auth: Bearer flow fetches a token from the realm and caches it per scope")
{
  BearerRegistry reg;
  AuthClient auth(reg.fake, [](const std::string& host) {
    CHECK(host == "reg.example");
    return user_credential();
  });

  auto response = auth.send(get("https://reg.example/v2/app/manifests/v1"));
  CHECK(response.status == 200);
  REQUIRE(reg.fake.count() == 3);
  HttpRequest token_request = reg.fake.request(1);
  CHECK(token_request.method == "GET");
  CHECK(token_request.url ==
        "https://auth.example/token?service=reg.example&scope=repository%3Aapp%3Apull&account=alice");
  // The realm gets the host's credential, and nothing else of the registry request.
  CHECK(header_or_empty(token_request, "Authorization") == "Basic " + base64_encode("alice:s3cret"));
  CHECK(header_or_empty(reg.fake.request(2), "Authorization") == "Bearer T1");

  // Same host and scope: the cached token goes out at once, no 401 round trip.
  reg.fake.clear();
  CHECK(auth.send(get("https://reg.example/v2/app/blobs/sha256:ab", "HEAD")).status == 200);
  REQUIRE(reg.fake.count() == 1);
  CHECK(header_or_empty(reg.fake.request(0), "Authorization") == "Bearer T1");
  CHECK(reg.token_requests == 1);

  // A push needs a wider scope: not covered by the pull token, so a new challenge.
  reg.fake.clear();
  reg.challenge_scope = "repository:app:pull,push";
  reg.token_reply = R"({"access_token":"T2"})";
  reg.valid = {"T2"};
  HttpRequest post = get("https://reg.example/v2/app/blobs/uploads/", "POST");
  CHECK(auth.send(post).status == 200);
  REQUIRE(reg.fake.count() == 3);
  CHECK_FALSE(reg.fake.request(0).headers.get("Authorization"));
  CHECK(reg.fake.request(1).url.find("scope=repository%3Aapp%3Apull%2Cpush") != std::string::npos);
  CHECK(header_or_empty(reg.fake.request(2), "Authorization") == "Bearer T2");

  // The pull,push token covers a later pull of the same repository.
  reg.fake.clear();
  CHECK(auth.send(get("https://reg.example/v2/app/manifests/v1")).status == 200);
  REQUIRE(reg.fake.count() == 1);
  CHECK(header_or_empty(reg.fake.request(0), "Authorization") == "Bearer T2");

  // Another repository is another scope.
  reg.fake.clear();
  reg.challenge_scope = "repository:other:pull";
  CHECK(auth.send(get("https://reg.example/v2/other/manifests/v1")).status == 200);
  CHECK(reg.fake.count() == 3);
}

TEST_CASE("auth: a challenge without scope uses the scope derived from the URL")
{
  BearerRegistry reg;
  reg.challenge_scope.clear();
  AuthClient auth(reg.fake, [](const std::string&) { return Credential{}; });
  HttpRequest put = get("https://reg.example/v2/team/app/manifests/v1", "PUT");
  put.body = body_from_string("{}");
  put.body_size = 2;
  CHECK(auth.send(put).status == 200);
  REQUIRE(reg.fake.count() == 3);
  CHECK(reg.fake.request(1).url ==
        "https://auth.example/token?service=reg.example&scope=repository%3Ateam%2Fapp%3Apull%2Cpush");
  // Anonymous: no Authorization to the realm.
  CHECK_FALSE(reg.fake.request(1).headers.get("Authorization"));
  // The body was sent again with the token.
  CHECK(reg.fake.body(0) == "{}");
  CHECK(reg.fake.body(2) == "{}");
}

TEST_CASE("auth: a rejected cached token is replaced; the realm never sees the registry token")
{
  BearerRegistry reg;
  AuthClient auth(reg.fake, [](const std::string&) { return user_credential(); });
  CHECK(auth.send(get("https://reg.example/v2/app/manifests/v1")).status == 200);

  // The registry revokes T1; the next token is T9.
  reg.valid = {"T9"};
  reg.token_reply = R"({"token":"T9"})";
  reg.fake.clear();
  CHECK(auth.send(get("https://reg.example/v2/app/manifests/v2")).status == 200);
  REQUIRE(reg.fake.count() == 3);
  CHECK(header_or_empty(reg.fake.request(0), "Authorization") == "Bearer T1");
  CHECK(url_host(reg.fake.request(1).url) == "auth.example");
  CHECK(header_or_empty(reg.fake.request(1), "Authorization") == "Basic " + base64_encode("alice:s3cret"));
  CHECK(header_or_empty(reg.fake.request(2), "Authorization") == "Bearer T9");
}

TEST_CASE("auth: a 401 after a fresh token is unauthorized")
{
  BearerRegistry reg;
  reg.valid.clear();
  AuthClient auth(reg.fake, [](const std::string&) { return user_credential(); });
  try {
    auth.send(get("https://reg.example/v2/app/manifests/v1"));
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unauthorized);
    CHECK(std::string(e.what()) == "reg.example: authentication failed (credentials from test config)");
  }
  CHECK(reg.fake.count() == 3);
}

TEST_CASE("auth: token endpoint refusing the credentials is unauthorized")
{
  FakeHttpClient fake;
  fake.handler = [&](const HttpRequest& r) {
    if (url_host(r.url) == "auth.example") return make_response(401, "{}");
    return make_response(401, "",
                         challenge_headers(R"(Bearer realm="https://auth.example/token",service="reg.example")"));
  };
  AuthClient auth(fake, [](const std::string&) { return user_credential(); });
  try {
    auth.send(get("https://reg.example/v2/app/manifests/v1"));
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unauthorized);
    CHECK(std::string(e.what()).find("auth.example") != std::string::npos);
    CHECK(std::string(e.what()).find("test config") != std::string::npos);
  }
}

TEST_CASE("auth: identity token uses the OAuth2 refresh_token grant")
{
  BearerRegistry reg;
  reg.token_reply = R"({"access_token":"T1","expires_in":60})";
  AuthClient auth(reg.fake, [](const std::string&) {
    Credential c;
    c.identity_token = "refresh-me";
    c.source = "docker-credential-test";
    return c;
  });
  CHECK(auth.send(get("https://reg.example/v2/app/manifests/v1")).status == 200);
  REQUIRE(reg.fake.count() == 3);
  HttpRequest token_request = reg.fake.request(1);
  CHECK(token_request.method == "POST");
  CHECK(token_request.url == "https://auth.example/token");
  CHECK(header_or_empty(token_request, "Content-Type") == "application/x-www-form-urlencoded");
  CHECK_FALSE(token_request.headers.get("Authorization"));
  CHECK(reg.fake.body(1) ==
        "grant_type=refresh_token&refresh_token=refresh-me&client_id=ferry&service=reg.example"
        "&scope=repository%3Aapp%3Apull");
}

TEST_CASE("auth: 403 is returned; a redirect target's 401 is not answered")
{
  FakeHttpClient fake;
  fake.handler = [&](const HttpRequest& r) {
    if (r.url.find("/denied/") != std::string::npos) return make_response(403, "denied");
    auto response = make_response(401, "", challenge_headers("Basic realm=r"));
    response.effective_url = "https://storage.example/blob";
    return response;
  };
  bool looked_up = false;
  AuthClient auth(fake, [&](const std::string&) {
    looked_up = true;
    return user_credential();
  });
  CHECK(auth.send(get("https://reg.example/v2/denied/manifests/v1")).status == 403);
  CHECK(auth.send(get("https://reg.example/v2/app/blobs/sha256:ab")).status == 401);
  CHECK_FALSE(looked_up);
  CHECK(fake.count() == 2);
}

TEST_CASE("auth: plain-http realm does not receive credentials of an https registry")
{
  FakeHttpClient fake;
  fake.handler = [&](const HttpRequest&) {
    return make_response(401, "", challenge_headers(R"(Bearer realm="http://auth.example/token")"));
  };
  AuthClient auth(fake, [](const std::string&) { return user_credential(); });
  CHECK_THROWS_AS(auth.send(get("https://reg.example/v2/app/manifests/v1")), Error);
  CHECK(fake.count() == 1);
}

#include <doctest/doctest.h>

#include "fake_http_client.hpp"

#include <ferry/error.hpp>
#include <ferry/remote/retry.hpp>

using namespace ferry;
using namespace ferry::remote;
using std::chrono::milliseconds;

namespace {

struct Script {
  FakeHttpClient fake;
  std::vector<milliseconds> sleeps;
  RetryOptions options;

  Script()
  {
    options.sleep = [this](milliseconds d) { sleeps.push_back(d); };
  }
};

HttpRequest get(const std::string& url)
{
  HttpRequest r;
  r.url = url;
  return r;
}

} // namespace

TEST_CASE("retry: 503 then 200")
{
  Script s;
  int calls = 0;
  s.fake.handler = [&](const HttpRequest&) { return ++calls == 1 ? make_response(503, "busy") : make_response(200, "ok"); };
  RetryingHttpClient client(s.fake, s.options);
  auto response = client.send(get("https://r.example/v2/"));
  CHECK(response.status == 200);
  CHECK(response.read_body() == "ok");
  CHECK(s.fake.count() == 2);
  REQUIRE(s.sleeps.size() == 1);
  CHECK(s.sleeps[0] >= milliseconds(100));
  CHECK(s.sleeps[0] <= milliseconds(200));
}

TEST_CASE("retry: 429 with Retry-After is honoured, and capped")
{
  Script s;
  int calls = 0;
  s.fake.handler = [&](const HttpRequest&) {
    ++calls;
    HttpHeaders h;
    if (calls == 1) h.add("Retry-After", "7");
    if (calls == 2) h.add("Retry-After", "3600");
    return calls <= 2 ? make_response(429, "", h) : make_response(200);
  };
  RetryingHttpClient client(s.fake, s.options);
  CHECK(client.send(get("https://r.example/v2/")).status == 200);
  REQUIRE(s.sleeps.size() == 2);
  CHECK(s.sleeps[0] == milliseconds(7000));
  CHECK(s.sleeps[1] == milliseconds(30000));
}

TEST_CASE("retry: gives up after max attempts with the last response, backing off exponentially")
{
  Script s;
  s.options.max_attempts = 4;
  int calls = 0;
  s.fake.handler = [&](const HttpRequest&) { return make_response(500 + (++calls == 4 ? 2 : 0), "x"); };
  RetryingHttpClient client(s.fake, s.options);
  auto response = client.send(get("https://r.example/v2/"));
  CHECK(response.status == 502);
  CHECK(s.fake.count() == 4);
  REQUIRE(s.sleeps.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    milliseconds full(200 << i);
    CHECK(s.sleeps[i] >= full / 2);
    CHECK(s.sleeps[i] <= full);
  }
}

TEST_CASE("retry: backoff is capped")
{
  Script s;
  s.options.max_attempts = 10;
  s.fake.handler = [&](const HttpRequest&) { return make_response(504); };
  RetryingHttpClient client(s.fake, s.options);
  CHECK(client.send(get("https://r.example/v2/")).status == 504);
  REQUIRE(s.sleeps.size() == 9);
  for (auto d : s.sleeps) CHECK(d <= milliseconds(10000));
  CHECK(s.sleeps.back() >= milliseconds(5000));
}

TEST_CASE("retry: network exceptions are retried, others are not")
{
  Script s;
  int calls = 0;
  s.fake.handler = [&](const HttpRequest&) -> HttpResponse {
    if (++calls < 3) throw Error(Errc::network, "GET https://r.example/v2/: Connection reset by peer");
    return make_response(200);
  };
  RetryingHttpClient client(s.fake, s.options);
  CHECK(client.send(get("https://r.example/v2/")).status == 200);
  CHECK(calls == 3);

  calls = 0;
  s.fake.handler = [&](const HttpRequest&) -> HttpResponse {
    ++calls;
    throw Error(Errc::unauthorized, "r.example: authentication failed");
  };
  CHECK_THROWS_AS(client.send(get("https://r.example/v2/")), Error);
  CHECK(calls == 1);

  calls = 0;
  s.options.max_attempts = 2;
  RetryingHttpClient two(s.fake, s.options);
  s.fake.handler = [&](const HttpRequest&) -> HttpResponse {
    ++calls;
    throw Error(Errc::network, "down");
  };
  try {
    two.send(get("https://r.example/v2/"));
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::network);
  }
  CHECK(calls == 2);
}

TEST_CASE("retry: replayable bodies are resent, one-shot bodies are not retried")
{
  Script s;
  int calls = 0;
  s.fake.handler = [&](const HttpRequest&) { return ++calls == 1 ? make_response(503) : make_response(202); };
  RetryingHttpClient client(s.fake, s.options);

  HttpRequest put;
  put.method = "PUT";
  put.url = "https://r.example/v2/app/blobs/uploads/1?digest=sha256:ab";
  put.body = body_from_string("payload");
  put.body_size = 7;
  CHECK(client.send(put).status == 202);
  REQUIRE(s.fake.count() == 2);
  CHECK(s.fake.body(0) == "payload");
  CHECK(s.fake.body(1) == "payload");

  s.fake.clear();
  calls = 0;
  HttpRequest post;
  post.method = "POST";
  post.url = "https://r.example/v2/app/blobs/uploads/";
  post.body = body_from_string("stream");
  post.body_replayable = false;
  CHECK(client.send(post).status == 503);
  CHECK(s.fake.count() == 1);
  CHECK(s.sleeps.size() == 1); // only the PUT's

  s.fake.clear();
  s.fake.handler = [&](const HttpRequest&) -> HttpResponse { throw Error(Errc::network, "reset"); };
  CHECK_THROWS_AS(client.send(post), Error);
  CHECK(s.fake.count() == 1);
}

TEST_CASE("retry: 4xx other than 429 is returned at once")
{
  Script s;
  s.fake.handler = [&](const HttpRequest&) { return make_response(404); };
  RetryingHttpClient client(s.fake, s.options);
  CHECK(client.send(get("https://r.example/v2/x/manifests/y")).status == 404);
  CHECK(s.fake.count() == 1);
  CHECK(s.sleeps.empty());
}

TEST_CASE("retry: Retry-After parsing")
{
  CHECK(parse_retry_after("120") == std::chrono::seconds(120));
  CHECK(parse_retry_after(" 0 ") == std::chrono::seconds(0));
  CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  CHECK_FALSE(parse_retry_after(""));
  CHECK_FALSE(parse_retry_after("-1"));
  CHECK(parse_retry_after("99999999999999999999") == std::chrono::seconds(1000000));
}

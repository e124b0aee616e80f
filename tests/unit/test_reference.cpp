#include <doctest/doctest.h>

#include <ferry/error.hpp>
#include <ferry/reference.hpp>

#include <vector>

using namespace ferry;

TEST_CASE("reference: docker.io normalisation")
{
  auto r = Reference::parse("alpine");
  CHECK(r.registry == "docker.io");
  CHECK(r.repository == "library/alpine");
  CHECK(r.tag.empty());
  CHECK(r.ref_or_default() == "latest");
  CHECK(r.endpoint_host() == "registry-1.docker.io");

  auto u = Reference::parse("user/app:1.0");
  CHECK(u.registry == "docker.io");
  CHECK(u.repository == "user/app");
  CHECK(u.tag == "1.0");

  CHECK(Reference::parse("index.docker.io/library/busybox").name() == "docker.io/library/busybox");
}

TEST_CASE("reference: registries with ports, localhost, IPs, digests")
{
  auto r = Reference::parse("127.0.0.1:5000/team/app:v1");
  CHECK(r.registry == "127.0.0.1:5000");
  CHECK(r.repository == "team/app");
  CHECK(r.tag == "v1");
  CHECK(r.str() == "127.0.0.1:5000/team/app:v1");

  auto l = Reference::parse("localhost/app");
  CHECK(l.registry == "localhost");
  CHECK(l.repository == "app");

  std::string hex(64, 'a');
  auto d = Reference::parse("reg.example.com/a/b/c@sha256:" + hex);
  CHECK(d.registry == "reg.example.com");
  CHECK(d.repository == "a/b/c");
  CHECK(d.digest->hex() == hex);
  CHECK(d.ref_or_default() == "sha256:" + hex);

  auto both = Reference::parse("reg:5000/a:v1@sha256:" + hex);
  CHECK(both.tag == "v1");
  CHECK(both.digest.has_value());

  CHECK(Reference::parse("[::1]:5000/app:x").registry == "[::1]:5000");
  CHECK(Reference::parse("Reg.Example/app").registry == "Reg.Example");
}

TEST_CASE("reference: separators in path components")
{
  CHECK_NOTHROW(Reference::parse("r.io/a_b/c__d/e-f/g--h/i.j"));
  CHECK_THROWS_AS(Reference::parse("r.io/a___b"), Error);
  CHECK_THROWS_AS(Reference::parse("r.io/-a"), Error);
  CHECK_THROWS_AS(Reference::parse("r.io/a-"), Error);
  CHECK_THROWS_AS(Reference::parse("r.io/a//b"), Error);
}

TEST_CASE("reference: invalid references are rejected with the input named")
{
  for (std::string bad : std::vector<std::string>{"", "UPPER/Case", "r.io/app:", "r.io/app:-tag", "r.io/app@sha256:123", "r.io/app:t@",
                          ":tag", "r.io/App", std::string("r.io/app:") + std::string(129, 'a')}) {
    CAPTURE(bad);
    try {
      Reference::parse(bad);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_reference);
      CHECK(std::string(e.what()).find("invalid reference") != std::string::npos);
    }
  }
}

TEST_CASE("push target parsing")
{
  auto t = Target::parse("127.0.0.1:5001/mirror/team");
  CHECK(t.registry == "127.0.0.1:5001");
  CHECK(t.ns == "mirror/team");
  CHECK(Target::parse("reg.local").ns.empty());
  CHECK(Target::parse("reg.local/").ns.empty());
  CHECK_THROWS_AS(Target::parse("/x"), Error);
  CHECK_THROWS_AS(Target::parse("reg.local/BAD"), Error);
}

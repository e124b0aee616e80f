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

TEST_CASE("scope normalisation: each rule")
{
  // Host lowercased; the path is lowercase by grammar and kept as written.
  CHECK(Reference::normalise_scope("Registry.Internal/team/app") == "registry.internal/team/app");
  CHECK(Reference::normalise_scope("REGISTRY.INTERNAL:5000/team/app") == "registry.internal:5000/team/app");
  // Default ports dropped, other ports kept; a port's leading zeros dropped first.
  CHECK(Reference::normalise_scope("registry.internal:443/team/app") == "registry.internal/team/app");
  CHECK(Reference::normalise_scope("registry.internal:80/team/app") == "registry.internal/team/app");
  CHECK(Reference::normalise_scope("registry.internal:0443/team/app") == "registry.internal/team/app");
  CHECK(Reference::normalise_scope("registry.internal:00080/team/app") == "registry.internal/team/app");
  CHECK(Reference::normalise_scope("registry.internal:5000/team/app") == "registry.internal:5000/team/app");
  CHECK(Reference::normalise_scope("registry.internal:05000/team/app") == "registry.internal:5000/team/app");
  CHECK(Reference::normalise_scope("registry.internal:4430/team/app") == "registry.internal:4430/team/app");
  CHECK(Reference::normalise_scope("registry.internal:8443/team/app") == "registry.internal:8443/team/app");
  CHECK(Reference::normalise_scope("registry.internal:0/team/app") == "registry.internal:0/team/app");
  CHECK(Reference::normalise_scope("registry.internal:000/team/app") == "registry.internal:0/team/app");
  CHECK(Reference::normalise_scope("localhost:5000/app") == "localhost:5000/app");
  CHECK(Reference::normalise_scope("127.0.0.1:443/app") == "127.0.0.1/app");
  // docker.io aliases, in any case and with a default port.
  CHECK(Reference::normalise_scope("index.docker.io/library/alpine") == "docker.io/library/alpine");
  CHECK(Reference::normalise_scope("registry-1.docker.io/library/alpine") == "docker.io/library/alpine");
  CHECK(Reference::normalise_scope("Index.Docker.IO:443/user/app") == "docker.io/user/app");
  CHECK(Reference::normalise_scope("docker.io:5000/alpine") == "docker.io:5000/alpine");  // another registry
  // A single-component docker.io repository is an official image.
  CHECK(Reference::normalise_scope("docker.io/alpine") == "docker.io/library/alpine");
  CHECK(Reference::normalise_scope("index.docker.io/alpine") == "docker.io/library/alpine");
  CHECK(Reference::normalise_scope("DOCKER.IO:443/alpine") == "docker.io/library/alpine");
  CHECK(Reference::normalise_scope("docker.io/user/app") == "docker.io/user/app");
  CHECK(Reference::normalise_scope("registry.internal/alpine") == "registry.internal/alpine");
  // IPv6 literals: lowercased inside the brackets, default ports dropped after them.
  CHECK(Reference::normalise_scope("[FE80::ABCD]:5000/app") == "[fe80::abcd]:5000/app");
  CHECK(Reference::normalise_scope("[FE80::ABCD]:443/app") == "[fe80::abcd]/app");
  CHECK(Reference::normalise_scope("[::1]/app") == "[::1]/app");
  // The first component is the registry, never an implied docker.io (notation's scopes are
  // fully qualified).
  CHECK(Reference::normalise_scope("local/e2e") == "local/e2e");
  CHECK(Reference::normalise_scope("library/alpine") == "library/alpine");
  // The wildcard scope and what the grammar rejects are left as they are.
  CHECK(Reference::normalise_scope("*") == "*");
  CHECK(Reference::normalise_scope("Reg.IO:443/Team/App") == "reg.io/Team/App");
  CHECK(Reference::normalise_scope("reg.io:https/app") == "reg.io:https/app");
  CHECK(Reference::normalise_scope("reg.io:/app") == "reg.io:/app");
  CHECK(Reference::normalise_scope("") == "");
}

TEST_CASE("scope normalisation: idempotent, and one scope for every spelling of a reference")
{
  for (std::string s : {"Registry.Internal:443/team/app", "registry.internal:0443/team/app", "docker.io/alpine",
                        "Index.Docker.IO:80/alpine", "[FE80::1]:0080/a/b", "reg.io:05000/x", "local/e2e", "*", "",
                        "reg.io:/Bad"}) {
    CAPTURE(s);
    auto once = Reference::normalise_scope(s);
    CHECK(Reference::normalise_scope(once) == once);
  }
  // Reference::parse keeps the spelling (uppercase host, port); scope() normalises it.
  auto upper = Reference::parse("REGISTRY.internal:443/team/app:v1");
  CHECK(upper.registry == "REGISTRY.internal:443");
  CHECK(upper.name() == "REGISTRY.internal:443/team/app");
  CHECK(upper.scope() == "registry.internal/team/app");
  for (std::string spelling : std::vector<std::string>{"registry.internal/team/app", "Registry.Internal/team/app:v1",
                                                       "registry.internal:443/team/app",
                                                       "REGISTRY.INTERNAL:80/team/app@sha256:" + std::string(64, 'a')}) {
    CAPTURE(spelling);
    CHECK(Reference::parse(spelling).scope() == "registry.internal/team/app");
  }
  for (std::string spelling : {"alpine", "docker.io/alpine", "docker.io/library/alpine:3", "index.docker.io/alpine",
                               "Index.Docker.IO/alpine", "registry-1.docker.io:443/library/alpine"}) {
    CAPTURE(spelling);
    CHECK(Reference::parse(spelling).scope() == "docker.io/library/alpine");
  }
  CHECK(Reference::parse("[::1]:5000/app:x").scope() == "[::1]:5000/app");
}

#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <ferry/util/file.hpp>

#include <ferry/error.hpp>
#include <ferry/remote/credentials.hpp>
#include <ferry/util/base64.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sys/stat.h>

using namespace ferry;
using namespace ferry::remote;
namespace fs = std::filesystem;
using ferry::TempDir;
using fixtures::write_into;

namespace {

/// A temporary directory removed at scope exit.
/// Sets (or unsets, with nullopt) an environment variable for a scope.
struct EnvGuard {
  std::string name;
  std::optional<std::string> old;
  EnvGuard(std::string n, const std::optional<std::string>& value) : name(std::move(n))
  {
    if (const char* v = std::getenv(name.c_str())) old = v;
    if (value) ::setenv(name.c_str(), value->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
  ~EnvGuard()
  {
    if (old) ::setenv(name.c_str(), old->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
};

CredentialStore store_for(const fs::path& config)
{
  CredentialOptions options;
  options.config_path = config.string();
  return CredentialStore(options);
}

/// Writes docker-credential-ferrytest into `dir`: it knows reg.example (user/pass),
/// token.example (identity token) and Docker Hub; it logs each server URL it is asked for.
void write_helper(const TempDir& dir)
{
  fs::path script = write_into(dir.path(), "docker-credential-ferrytest", R"(#!/bin/sh
[ "$1" = get ] || { echo "unknown action $1"; exit 2; }
url=$(cat)
echo "$url" >> "$(dirname "$0")/helper.log"
case "$url" in
  reg.example) echo '{"ServerURL":"reg.example","Username":"helper-user","Secret":"helper-pass"}' ;;
  token.example) echo '{"ServerURL":"token.example","Username":"<token>","Secret":"refresh-123"}' ;;
  https://index.docker.io/v1/) echo '{"Username":"hubuser","Secret":"hubpass"}' ;;
  broken.example) echo 'something went wrong' >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
)");
  ::chmod(script.c_str(), 0755);
}

std::string path_with(const TempDir& dir)
{
  const char* path = std::getenv("PATH");
  return dir.path().string() + ":" + (path ? path : "/usr/bin:/bin");
}

} // namespace

TEST_CASE("credentials: auths with base64 auth")
{
  TempDir dir;
  auto config = write_into(dir.path(), "config.json", R"({"auths":{"reg.example:5000":{"auth":")" +
                                             base64_encode("alice:s3:cret") + R"("}}})");
  auto store = store_for(config);
  Credential c = store.lookup("reg.example:5000");
  CHECK(c.username == "alice");
  CHECK(c.password == "s3:cret");
  CHECK(c.source == "docker config " + config.string());
  CHECK(store.config_path() == config.string());

  Credential other = store.lookup("reg.example");
  CHECK(other.empty());
  CHECK(other.source == "anonymous");
}

TEST_CASE("credentials: username/password fields, identitytoken and registrytoken")
{
  TempDir dir;
  auto config = write_into(dir.path(), "config.json", R"({"auths":{
    "https://reg.example/v2/": {"username": "bob", "password": "pw"},
    "tok.example": {"auth": ")" + base64_encode("bob:") + R"(", "identitytoken": "refresh"},
    "rt.example": {"registrytoken": "bearer-xyz"},
    "empty.example": {}
  }})");
  auto store = store_for(config);
  Credential c = store.lookup("reg.example");
  CHECK(c.username == "bob");
  CHECK(c.password == "pw");
  Credential t = store.lookup("tok.example");
  CHECK(t.identity_token == "refresh");
  CHECK(t.username == "bob");
  CHECK(store.lookup("rt.example").registry_token == "bearer-xyz");
  CHECK(store.lookup("empty.example").empty());
}

TEST_CASE("credentials: Docker Hub spellings are one registry")
{
  CHECK(normalize_registry_host("https://index.docker.io/v1/") == "docker.io");
  CHECK(normalize_registry_host("registry-1.docker.io") == "docker.io");
  CHECK(normalize_registry_host("Docker.IO") == "docker.io");
  CHECK(normalize_registry_host("http://reg.example:5000/v2/") == "reg.example:5000");

  TempDir dir;
  auto config = write_into(dir.path(), "config.json", R"({"auths":{"https://index.docker.io/v1/":{"auth":")" +
                                             base64_encode("hub:pw") + R"("}}})");
  auto store = store_for(config);
  CHECK(store.lookup("registry-1.docker.io").username == "hub");
  CHECK(store.lookup("docker.io").username == "hub");
  CHECK(store.lookup("index.docker.io").username == "hub");
  CHECK(store.lookup("quay.io").empty());
}

TEST_CASE("credentials: explicit --username wins for every host")
{
  TempDir dir;
  auto config = write_into(dir.path(), "config.json", R"({"auths":{"reg.example":{"auth":")" + base64_encode("alice:x") +
                                             R"("}},"credsStore":"does-not-exist"})");
  CredentialOptions options;
  options.config_path = config.string();
  options.username = "cli-user";
  options.password = "cli-pass";
  CredentialStore store(options);
  for (const char* host : {"reg.example", "other.example:5000", "docker.io"}) {
    Credential c = store.lookup(host);
    CHECK(c.username == "cli-user");
    CHECK(c.password == "cli-pass");
    CHECK(c.source == "--username");
  }
}

TEST_CASE("credentials: credHelpers run docker-credential-<name> per host")
{
  TempDir dir;
  write_helper(dir);
  EnvGuard path("PATH", path_with(dir));
  auto config = write_into(dir.path(), "config.json", R"({
    "auths": {"plain.example": {"auth": ")" + base64_encode("file:pw") + R"("}},
    "credHelpers": {"reg.example": "ferrytest", "token.example": "ferrytest", "index.docker.io": "ferrytest",
                    "missing.example": "ferrytest", "broken.example": "ferrytest"}
  })");
  auto store = store_for(config);

  Credential c = store.lookup("reg.example");
  CHECK(c.username == "helper-user");
  CHECK(c.password == "helper-pass");
  CHECK(c.source == "docker-credential-ferrytest");

  Credential t = store.lookup("token.example");
  CHECK(t.username.empty());
  CHECK(t.identity_token == "refresh-123");

  CHECK(store.lookup("registry-1.docker.io").username == "hubuser");
  CHECK(store.lookup("missing.example").empty()); // "credentials not found" = anonymous
  CHECK(store.lookup("plain.example").username == "file");

  try {
    store.lookup("broken.example");
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::io);
    CHECK(std::string(e.what()).find("docker-credential-ferrytest") != std::string::npos);
    CHECK(std::string(e.what()).find("something went wrong") != std::string::npos);
  }

  // Cached: a second lookup does not run the helper again.
  store.lookup("reg.example");
  std::ifstream log(dir.path() / "helper.log");
  std::string line;
  std::vector<std::string> asked;
  while (std::getline(log, line)) asked.push_back(line);
  CHECK(std::count(asked.begin(), asked.end(), "reg.example") == 1);
  CHECK(std::count(asked.begin(), asked.end(), "https://index.docker.io/v1/") == 1);
}

TEST_CASE("credentials: credsStore is the default helper")
{
  TempDir dir;
  write_helper(dir);
  EnvGuard path("PATH", path_with(dir));
  auto config = write_into(dir.path(), "config.json", R"({"auths":{"reg.example":{}},"credsStore":"ferrytest"})");
  auto store = store_for(config);
  CHECK(store.lookup("reg.example").username == "helper-user");
  Credential none = store.lookup("unknown.example");
  CHECK(none.empty());
  CHECK(none.source == "anonymous");
}

TEST_CASE("credentials: a helper that is not on PATH is not_found")
{
  TempDir dir;
  auto config = write_into(dir.path(), "config.json", R"({"credHelpers":{"reg.example":"ferry-no-such-helper"}})");
  auto store = store_for(config);
  try {
    store.lookup("reg.example");
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::not_found);
    CHECK(std::string(e.what()).find("docker-credential-ferry-no-such-helper") != std::string::npos);
  }
}

TEST_CASE("credentials: helper timeout")
{
  TempDir dir;
  fs::path script = write_into(dir.path(), "docker-credential-ferryslow", "#!/bin/sh\nexec sleep 30\n");
  ::chmod(script.c_str(), 0755);
  EnvGuard path("PATH", path_with(dir));
  auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(run_credential_helper("ferryslow", "reg.example", std::chrono::milliseconds(300)), Error);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  CHECK_THROWS_AS(run_credential_helper("../evil", "reg.example", std::chrono::milliseconds(300)), Error);
}

TEST_CASE("credentials: config file errors name the file")
{
  TempDir dir;
  std::string missing = (dir.path() / "nope.json").string();
  try {
    store_for(missing);
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::not_found);
    CHECK(std::string(e.what()).find(missing) != std::string::npos);
  }

  auto bad = write_into(dir.path(), "bad.json", "{\"auths\": ");
  try {
    store_for(bad);
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::io);
    CHECK(std::string(e.what()).find(bad.string()) != std::string::npos);
  }

  auto bad_auth = write_into(dir.path(), "badauth.json", R"({"auths":{"reg.example":{"auth":"!!!"}}})");
  auto store = store_for(bad_auth);
  CHECK_THROWS_AS(store.lookup("reg.example"), Error);
  CHECK(store.lookup("other.example").empty());
}

TEST_CASE("credentials: default locations; a missing default file is fine")
{
  TempDir dir;
  fs::create_directories(dir.path() / "home/.docker");
  fs::create_directories(dir.path() / "dockercfg");
  {
    EnvGuard home("HOME", (dir.path() / "home").string());
    EnvGuard docker_config("DOCKER_CONFIG", std::nullopt);
    CredentialStore store(CredentialOptions{});
    CHECK(store.config_path().empty());
    CHECK(store.lookup("reg.example").empty());

    write_into(dir.path(), "home/.docker/config.json", R"({"auths":{"reg.example":{"username":"home","password":"p"}}})");
    CHECK(CredentialStore(CredentialOptions{}).lookup("reg.example").username == "home");

    EnvGuard docker_config2("DOCKER_CONFIG", (dir.path() / "dockercfg").string());
    write_into(dir.path(), "dockercfg/config.json", R"({"auths":{"reg.example":{"username":"dc","password":"p"}}})");
    CHECK(CredentialStore(CredentialOptions{}).lookup("reg.example").username == "dc");
  }
}

#include <doctest/doctest.h>

#include "fake_registry.hpp"

#include <ferry/error.hpp>
#include <ferry/imageset.hpp>
#include <ferry/remote/repository.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace ferry;
using namespace fixtures;

namespace {

std::vector<std::string> strs(const std::vector<Reference>& refs)
{
  std::vector<std::string> out;
  for (const auto& r : refs) out.push_back(r.str());
  return out;
}

/// The error message of parsing `yaml`, or "" when it parses.
std::string parse_error(const std::string& yaml)
{
  try {
    ImageSet::parse(yaml, "set.yaml");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_argument);
    return e.what();
  }
  return {};
}

/// A fake registry at fake.test whose repository `repo` has `tags` (all one manifest).
struct TagRegistry {
  FakeRegistry reg;
  std::vector<std::string> log;
  TagRegistry(const std::string& repo, const std::vector<std::string>& tags)
  {
    std::string m = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]})";
    std::string d = reg.put_manifest(repo, "application/vnd.oci.image.manifest.v1+json", m);
    for (const auto& t : tags) reg.repos[repo].tags[t] = d;
  }
  RepositoryOpener opener()
  {
    return [this](const std::string& registry, const std::string& repository) {
      CHECK(registry == "fake.test");
      return std::make_shared<remote::Repository>(reg.client, FakeRegistry::k_base, repository);
    };
  }
  Logger logger()
  {
    return [this](const std::string& line) { log.push_back(line); };
  }
};

} // namespace

TEST_CASE("imageset: skopeo sync YAML, every key")
{
  const std::string yaml = R"(# a skopeo sync file
registry.example.com:5000:
  images:
    app:
      - v1
      - "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    whole/repo: []
    also-whole:
  images-by-tag-regex:
    tools/debug: ^v[0-9]+$
  images-by-semver:
    charts/web: ">= 1.2, < 2"
  credentials:
    username: alice
    password: s3cret
  tls-verify: false
  cert-dir: /etc/certs/reg
docker.io:
  images:
    busybox: ["1.36"]
  tls-verify: true
)";
  ImageSet set = ImageSet::parse(yaml, "sync.yaml");
  CHECK(set.yaml);
  CHECK(set.file == "sync.yaml");
  CHECK(set.digest == Digest::of(yaml));
  REQUIRE(set.entries.size() == 6);
  using R = ImageSetEntry::Rule;
  CHECK(set.entries[0].rule == R::tags);
  CHECK(set.entries[0].registry == "registry.example.com:5000");
  CHECK(set.entries[0].repository == "app");
  CHECK(set.entries[0].line == 4);
  CHECK(set.entries[0].tags ==
        std::vector<std::string>{"v1", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"});
  CHECK(set.entries[1].rule == R::all_tags);
  CHECK(set.entries[1].repository == "whole/repo");
  CHECK(set.entries[1].line == 7);
  CHECK(set.entries[2].rule == R::all_tags);  // a key with no value: an empty list too
  CHECK(set.entries[2].repository == "also-whole");
  CHECK(set.entries[3].rule == R::tag_regex);
  CHECK(set.entries[3].pattern == "^v[0-9]+$");
  CHECK(set.entries[3].line == 10);
  CHECK(set.entries[4].rule == R::semver);
  CHECK(set.entries[4].pattern == ">= 1.2, < 2");
  CHECK(set.entries[5].registry == "docker.io");
  CHECK(set.entries[5].repository == "library/busybox");  // normalised as skopeo does
  CHECK(set.entries[5].tags == std::vector<std::string>{"1.36"});
  REQUIRE(set.registries.size() == 2);
  CHECK(set.registries[0].registry == "registry.example.com:5000");
  CHECK(set.registries[0].host == "registry.example.com:5000");
  CHECK(set.registries[0].username == "alice");
  CHECK(set.registries[0].password == "s3cret");
  CHECK(set.registries[0].tls_verify == std::optional<bool>(false));
  CHECK(set.registries[0].cert_dir == "/etc/certs/reg");
  CHECK(set.registries[1].tls_verify == std::optional<bool>(true));
  CHECK(set.registries[1].username.empty());
}

TEST_CASE("imageset: a registry key with a namespace, as skopeo allows")
{
  ImageSet set = ImageSet::parse("quay.example:8443/team:\n  images:\n    app: [v2]\n", "s.yaml");
  REQUIRE(set.entries.size() == 1);
  CHECK(set.entries[0].registry == "quay.example:8443");
  CHECK(set.entries[0].repository == "team/app");
  CHECK(set.registries[0].host == "quay.example:8443");
}

TEST_CASE("imageset: the plain list is told apart by content, not name")
{
  const std::string list = "# images\n127.0.0.1:5000/demo/app:v1   # the app\n\n  reg.test/x/y@sha256:"
                           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nbusybox\n";
  ImageSet set = ImageSet::parse(list, "images.yaml");  // a .yaml name does not make it YAML
  CHECK_FALSE(set.yaml);
  REQUIRE(set.entries.size() == 3);
  CHECK(set.entries[0].rule == ImageSetEntry::Rule::reference);
  CHECK(set.entries[0].line == 2);
  CHECK(set.entries[0].reference->str() == "127.0.0.1:5000/demo/app:v1");
  CHECK(set.entries[1].line == 4);
  CHECK(set.entries[1].reference->digest.has_value());
  CHECK(set.entries[2].reference->str() == "docker.io/library/busybox");
  // One line is a YAML scalar, several lines too: still a list.
  CHECK_FALSE(ImageSet::parse("reg.test/a:v1\n", "l").yaml);
  CHECK(ImageSet::parse("", "empty").entries.empty());
  // A bad line is named.
  CHECK_THROWS_WITH_AS(ImageSet::parse("reg.test/a:v1\nreg.test/UPPER:v1\n", "list.txt"), doctest::Contains("list.txt:2:"),
                       Error);
  // Expansion keeps the list as written.
  TagRegistry fake("a", {});
  const ImageSet listed = ImageSet::parse("reg.test/a:v1\nreg.test/b:v2\n", "l");  // outlives exp (exp.set)
  auto exp = expand(listed, fake.opener(), fake.logger());
  CHECK(strs(exp.references()) == std::vector<std::string>{"reg.test/a:v1", "reg.test/b:v2"});
  CHECK(fake.reg.client.count() == 0);
  auto rec = nlohmann::json::parse(exp.record_json());
  CHECK(rec["format"] == "list");
  REQUIRE(rec["entries"].size() == 2);
  CHECK(rec["entries"][1] == nlohmann::json{{"line", 2},
                                            {"rule", "reference"},
                                            {"registry", "reg.test"},
                                            {"repository", "b"},
                                            {"references", nlohmann::json::array({"reg.test/b:v2"})}});
}

TEST_CASE("imageset: errors name FILE:LINE")
{
  CHECK(parse_error("reg.test:\n  images:\n    app: [v1]\n  image-by-tag-regex:\n    x: y\n") ==
        "set.yaml:4: unknown key \"image-by-tag-regex\" under reg.test (skopeo sync keys: images, images-by-tag-regex, "
        "images-by-semver, credentials, tls-verify, cert-dir)");
  CHECK(parse_error("reg.test:\n  images-by-tag-regex:\n    app: \"v(1\"\n")
            .rfind("set.yaml:3: tag regex \"v(1\" does not compile", 0) == 0);
  CHECK(parse_error("reg.test:\n  images-by-semver:\n    app: \">= 1.x.y.z\"\n")
            .rfind("set.yaml:3: semver constraint \">= 1.x.y.z\" does not parse", 0) == 0);
  CHECK(parse_error("reg.test:\n  images:\n    app:\n      - v1\n      - \"bad tag\"\n") ==
        "set.yaml:5: \"bad tag\" is not a valid tag or digest");
  CHECK(parse_error("reg.test:\n  images:\n    app:\n      - sha256:abc\n") ==
        "set.yaml:4: \"sha256:abc\" is not a valid tag or digest");
  CHECK(parse_error("reg.test:\n  credentials:\n    user: a\n").rfind("set.yaml:3: unknown key \"user\" in credentials", 0) == 0);
  CHECK(parse_error("reg.test:\n  tls-verify: maybe\n") == "set.yaml:2: tls-verify must be true or false, not \"maybe\"");
  CHECK(parse_error("reg.test:\n  images:\n    app: v1\n") ==
        "set.yaml:3: reg.test/app: images takes a list of tags or digests");
  CHECK(parse_error("reg.test:\n  images:\n    Bad/Repo: []\n").rfind("set.yaml:3: \"reg.test/Bad/Repo\" is not a repository", 0) == 0);
  CHECK(parse_error("reg.test:\n  images:\n    app: [v1]\n  images:\n    b: [v1]\n").rfind("set.yaml:4: ", 0) == 0);
  CHECK(parse_error("reg.test:\n  images:\n    app: [v1\n  x: 1\n").rfind("set.yaml:", 0) == 0);  // not valid YAML
}

TEST_CASE("imageset: semver versions as Masterminds NewVersion reads tags")
{
  struct Case {
    const char* tag;
    bool ok;
    std::uint64_t major, minor, patch;
    const char* pre;
  };
  for (const Case& c : std::vector<Case>{{"1.2.3", true, 1, 2, 3, ""},
                                          {"v1.2.3", true, 1, 2, 3, ""},
                                          {"v2", true, 2, 0, 0, ""},
                                          {"1.2", true, 1, 2, 0, ""},
                                          {"1.2.3-rc.1", true, 1, 2, 3, "rc.1"},
                                          {"1.2.3-rc.01", false, 0, 0, 0, ""},
                                          {"latest", false, 0, 0, 0, ""},
                                          {"1.2.3.4", false, 0, 0, 0, ""},
                                          {"V1.2.3", false, 0, 0, 0, ""},
                                          {"1.2.3_build", false, 0, 0, 0, ""},
                                          {"99999999999999999999.0.0", false, 0, 0, 0, ""}}) {
    CAPTURE(c.tag);
    auto v = SemverVersion::parse(c.tag);
    CHECK(v.has_value() == c.ok);
    if (v && c.ok) {
      CHECK(v->major == c.major);
      CHECK(v->minor == c.minor);
      CHECK(v->patch == c.patch);
      CHECK(v->prerelease == c.pre);
    }
  }
  auto cmp = [](const char* a, const char* b) { return SemverVersion::parse(a)->compare(*SemverVersion::parse(b)); };
  CHECK(cmp("1.0.0-alpha", "1.0.0") < 0);
  CHECK(cmp("1.0.0-alpha", "1.0.0-alpha.1") < 0);
  CHECK(cmp("1.0.0-alpha.1", "1.0.0-alpha.beta") < 0);
  CHECK(cmp("1.0.0-beta.2", "1.0.0-beta.11") < 0);
  CHECK(cmp("1.0.0-rc.1", "1.0.0-beta.11") > 0);
  CHECK(cmp("v1.10.0", "1.9.9") > 0);
  CHECK(cmp("v1.2", "1.2.0") == 0);
}

TEST_CASE("imageset: semver constraints (Masterminds/semver v3 semantics)")
{
  struct Case {
    const char* constraint;
    const char* tag;
    bool match;
  };
  for (const Case& c : std::vector<Case>{
           {"1.2.3", "1.2.3", true},          {"=1.2.3", "v1.2.3", true},       {"= 1.2.3", "1.2.4", false},
           {"!=1.2.3", "1.2.4", true},        {"!=1.2.3", "1.2.3", false},      {"!=1.x", "1.5.0", false},
           {"!=1.x", "2.0.0", true},          {">1.2.3", "1.2.4", true},        {">1.2.3", "1.2.3", false},
           {">1", "1.9.0", false},            {">1", "2.0.0", true},            {">1.2", "1.2.9", false},
           {">1.2", "1.3.0", true},           {"<1.2.3", "1.2.2", true},        {"<1.2.3", "1.2.3", false},
           {">=1.2.3", "1.2.3", true},        {"=>1.2.3", "1.2.2", false},      {"<=1.2.3", "1.2.3", true},
           {"<=1.2", "1.2.9", true},          {"<=1.2", "1.3.0", false},        {"=<1.x", "1.9.9", true},
           {"~1.2.3", "1.2.9", true},         {"~1.2.3", "1.3.0", false},       {"~1.2.3", "1.2.2", false},
           {"~1", "1.9.0", true},             {"~1", "2.0.0", false},           {"~>1.2", "1.2.7", true},
           {"^1.2.3", "1.9.0", true},         {"^1.2.3", "2.0.0", false},       {"^1.2.3", "1.2.2", false},
           {"^0.2.3", "0.2.9", true},         {"^0.2.3", "0.3.0", false},       {"^0.0.3", "0.0.3", true},
           {"^0.0.3", "0.0.4", false},        {"^0", "0.9.0", true},            {"^0", "1.0.0", false},
           {"1.2.x", "1.2.7", true},          {"1.2.x", "1.3.0", false},        {"1.x", "1.7.7", true},
           {"*", "7.0.0", true},              {"x", "0.0.1", true},             {"1.X", "2.0.0", false},
           {"1.2 - 1.4.5", "1.3.0", true},    {"1.2 - 1.4.5", "1.4.6", false},  {"1.2 - 1.4.5", "1.1.9", false},
           {">= 1.2, < 2", "1.9.9", true},    {">= 1.2, < 2", "2.0.0", false},  {">= 1.2 < 2", "1.5.0", true},
           {"<1 || >=3", "0.5.0", true},      {"<1 || >=3", "2.0.0", false},    {"<1 || >=3", "v3.1.0", true},
           // Pre-releases match only a constraint that names one.
           {">=1.0.0", "1.1.0-rc.1", false},  {">=1.0.0-0", "1.1.0-rc.1", true}, {"1.x", "1.1.0-beta", false},
           {"~1.2.0-alpha", "1.2.0-beta", true}, {"^1.0.0", "1.5.0-rc.1", false}, {"<2.0.0", "2.0.0-rc.1", false},
           // Tags that are not versions are skipped, never matched.
           {"*", "latest", false},            {">=0", "main-2024", false}}) {
    CAPTURE(c.constraint);
    CAPTURE(c.tag);
    CHECK(SemverConstraint::parse(c.constraint).matches(c.tag) == c.match);
  }
  for (const char* bad : {"", "abc", ">= 1.2 ||", ">>1", "1.2.3.4", "~ 1.2 - ", "1.2.3 -- 2", ">=1.x.y"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(SemverConstraint::parse(bad), Error);
  }
}

TEST_CASE("imageset: tag regex is an unanchored search, as Go's MatchString")
{
  TagRegistry fake("app", {"v1", "v10", "v1-debug", "xv1", "latest", "V2"});
  auto expand_regex = [&](const std::string& pattern) {
    auto set = ImageSet::parse("fake.test:\n  images-by-tag-regex:\n    app: '" + pattern + "'\n", "s.yaml");
    return strs(expand(set, fake.opener(), fake.logger()).references());
  };
  CHECK(expand_regex("v1") == std::vector<std::string>{"fake.test/app:v1", "fake.test/app:v1-debug", "fake.test/app:v10",
                                                       "fake.test/app:xv1"});
  CHECK(expand_regex("^v[0-9]+$") == std::vector<std::string>{"fake.test/app:v1", "fake.test/app:v10"});
  CHECK(expand_regex("(?i)^v2$") == std::vector<std::string>{"fake.test/app:V2"});
  CHECK(expand_regex("^nothing$").empty());
  CHECK(fake.log.back().find("(matches no tag)") != std::string::npos);
}

TEST_CASE("imageset: expansion through paginated tags lists (n and Link), sorted, recorded")
{
  std::vector<std::string> tags;
  for (int i = 0; i < 2500; ++i) tags.push_back("t" + std::to_string(i));
  tags.push_back("1.0.0");
  tags.push_back("v1.5.0");
  tags.push_back("2.0.0");
  tags.push_back("1.6.0-rc.1");
  TagRegistry fake("big/repo", tags);
  fake.reg.tags_page_size = 700;  // the registry pages however it likes; Link leads on
  const std::string yaml = "fake.test:\n  images:\n    big/repo: []\n    other: [v9, v8]\n"
                           "  images-by-semver:\n    big/repo: '>= 1.0, < 2'\n"
                           "  images-by-tag-regex:\n    big/repo: '^t24[0-9]{2}$'\n"
                           "  credentials:\n    username: mirror\n    password: topsecret\n";
  ImageSet set = ImageSet::parse(yaml, "big.yaml");
  auto exp = expand(set, fake.opener(), fake.logger());
  REQUIRE(exp.items.size() == 4);
  CHECK(exp.items[0].references.size() == 2504);
  CHECK(exp.items[0].listed == 2504);
  auto all = strs(exp.items[0].references);
  CHECK(std::is_sorted(all.begin(), all.end()));
  CHECK(all.front() == "fake.test/big/repo:1.0.0");
  CHECK(strs(exp.items[1].references) == std::vector<std::string>{"fake.test/other:v8", "fake.test/other:v9"});
  CHECK(strs(exp.items[2].references) == std::vector<std::string>{"fake.test/big/repo:1.0.0", "fake.test/big/repo:v1.5.0"});
  CHECK(exp.items[3].references.size() == 100);  // t2400 … t2499
  // The tags list was read page by page, following Link.
  std::size_t pages = 0;
  for (std::size_t i = 0; i < fake.reg.client.count(); ++i)
    if (fake.reg.client.request(i).url.find("/tags/list") != std::string::npos) ++pages;
  CHECK(pages >= 4);  // 2504 tags in pages of 700 (each entry's repository is listed once per opener call)
  // References: each once, in entry order.
  CHECK(exp.references().size() == 2506);
  // One log line per entry: rule, pattern, how many tags.
  REQUIRE(fake.log.size() == 4);
  CHECK(fake.log[0] == "big.yaml:3: all-tags every tag in fake.test/big/repo: 2504 tags of 2504 listed");
  CHECK(fake.log[1] == "big.yaml:4: tags 2 given in fake.test/other: 2 tags");
  CHECK(fake.log[2] == "big.yaml:6: semver \">= 1.0, < 2\" in fake.test/big/repo: 2 tags of 2504 listed");
  // The record: file, digest, every entry with rule, pattern and references; no credentials.
  auto rec = nlohmann::json::parse(exp.record_json());
  CHECK(rec["file"] == "big.yaml");
  CHECK(rec["digest"] == Digest::of(yaml).str());
  CHECK(rec["format"] == "skopeo-sync-yaml");
  REQUIRE(rec["entries"].size() == 4);
  CHECK(rec["entries"][2]["rule"] == "semver");
  CHECK(rec["entries"][2]["pattern"] == ">= 1.0, < 2");
  CHECK(rec["entries"][2]["references"] ==
        nlohmann::json::array({"fake.test/big/repo:1.0.0", "fake.test/big/repo:v1.5.0"}));
  CHECK(rec["entries"][1]["tags"] == nlohmann::json::array({"v9", "v8"}));
  CHECK(rec["entries"][0]["listed"] == 2504);
  // How the references were reached is not what was chosen: no credentials in the record.
  CHECK(exp.record_json().find("topsecret") == std::string::npos);
  CHECK(exp.record_json().find("mirror") == std::string::npos);
}

TEST_CASE("imageset: a repository that does not list its tags is an error naming it")
{
  TagRegistry fake("app", {"v1"});
  fake.reg.tags_api = false;
  auto set = ImageSet::parse("fake.test:\n  images:\n    app: []\n", "s.yaml");
  CHECK_THROWS_WITH_AS(expand(set, fake.opener(), fake.logger()),
                       doctest::Contains("s.yaml:3: cannot list the tags of fake.test/app"), Error);
  // A tag list given by name needs no listing.
  auto named = ImageSet::parse("fake.test:\n  images:\n    app: [v1]\n", "s.yaml");
  CHECK(strs(expand(named, fake.opener(), fake.logger()).references()) == std::vector<std::string>{"fake.test/app:v1"});
}

// ferry serve's registry half (issue 17): repositories from a saved bundle, the pull side of
// distribution-spec v1.1 answered from them, and the bytes served checked to be the file that
// was verified. The HTTP half is driven end to end by tests/e2e/test_serve.py.
#include <doctest/doctest.h>

#include "fake_registry.hpp"
#include "fixtures.hpp"

#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/ops.hpp>
#include <ferry/remote/repository.hpp>
#include <ferry/serve.hpp>

#include <nlohmann/json.hpp>

#include <fstream>
#include <unistd.h>

using namespace ferry;
using namespace ferry::remote;
using namespace fixtures;
namespace fs = std::filesystem;

namespace {

// image <- sig, image <- sbom <- sbom_sig; an index over image and another platform, tagged
// v1 in repository team/app of a fake registry, saved into a bundle.
struct Served {
  FakeRegistry reg;
  MemoryStore store;
  Descriptor image, arm, index, sig, sbom, sbom_sig;
  TempDir tmp;
  fs::path bundle;
  std::unique_ptr<serve::Registry> registry;

  explicit Served(const std::string& name = "b", const std::vector<PushMap>& maps = {})
  {
    image = add_image(store, {"layer one", "layer two"});
    arm = add_image(store, {"arm layer"}, R"({"architecture":"arm64","os":"linux"})");
    index = add_index(store, {{image, "linux/amd64"}, {arm, "linux/arm64"}});
    sig = add_image(store, {"jws"}, {}, image, std::string(media_type::k_notary_signature));
    sbom = add_image(store, {"spdx"}, {}, image, "application/spdx+json");
    sbom_sig = add_image(store, {"jws2"}, {}, sbom, std::string(media_type::k_notary_signature));
    load(reg, "team/app", store, true);
    reg.repos["team/app"].tags["v1"] = index.digest.str();
    bundle = tmp.path() / name;
    SaveOptions opts;
    opts.references = {"fake.test/team/app:v1"};
    opts.output = bundle;
    opts.format = BundleFormat::dir;
    auto open = [this](const std::string&, const std::string& repo) {
      return std::make_shared<Repository>(reg.client, FakeRegistry::k_base, repo);
    };
    save(opts, open, [](const std::string&) {});
    std::shared_ptr<LayoutReader> reader = LayoutReader::open(bundle, BundleFormat::dir, {ReadDepth::verify, {}});
    std::vector<serve::ServedBundle> served{{reader, nullptr}};
    registry = std::make_unique<serve::Registry>(std::move(served), maps);
  }

  serve::Response get(const std::string& path, std::map<std::string, std::string> headers = {},
                      std::map<std::string, std::string> query = {}, const std::string& method = "GET") const
  {
    serve::Request r;
    r.method = method;
    r.path = path;
    r.headers = std::move(headers);
    r.query = std::move(query);
    return registry->handle(r);
  }
};

std::string header(const serve::Response& r, const std::string& name)
{
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

std::string error_code(const serve::Response& r)
{
  auto j = nlohmann::json::parse(r.body);
  return j["errors"][0]["code"];
}

// The bytes a blob response sends (from its file at its offset).
std::string body_of(const serve::Response& r)
{
  REQUIRE(r.blob);
  REQUIRE(r.blob->file.fd.get() >= 0);
  std::string out(static_cast<std::size_t>(r.blob->length), '\0');
  REQUIRE(::pread(r.blob->file.fd.get(), out.data(), out.size(), static_cast<off_t>(r.blob->offset)) ==
          static_cast<ssize_t>(out.size()));
  return out;
}

} // namespace

TEST_CASE("serve: repositories, tags and manifests come from the bundle's roots")
{
  Served s;
  CHECK(s.registry->repositories() == std::vector<std::string>{"team/app"});
  auto stats = s.registry->stats();
  CHECK(stats.repositories == 1);
  CHECK(stats.manifests == 6);  // index, 2 images, sig, sbom, sbom_sig

  auto v2 = s.get("/v2/");
  CHECK(v2.status == 200);
  CHECK(header(v2, "Docker-Distribution-API-Version") == "registry/2.0");

  auto byTag = s.get("/v2/team/app/manifests/v1");
  CHECK(byTag.status == 200);
  CHECK(byTag.body == *s.store.get(s.index.digest));
  CHECK(header(byTag, "Docker-Content-Digest") == s.index.digest.str());
  CHECK(header(byTag, "Content-Type") == media_type::k_oci_index);
  CHECK(header(byTag, "ETag") == "\"" + s.index.digest.str() + "\"");

  auto byDigest = s.get("/v2/team/app/manifests/" + s.image.digest.str());
  CHECK(byDigest.status == 200);
  CHECK(byDigest.body == *s.store.get(s.image.digest));

  // Content negotiation: an index to a client that lists only image manifests is refused.
  auto refused = s.get("/v2/team/app/manifests/v1", {{"accept", "application/vnd.oci.image.manifest.v1+json"}});
  CHECK(refused.status == 404);
  CHECK(error_code(refused) == "MANIFEST_UNKNOWN");
  CHECK(s.get("/v2/team/app/manifests/v1", {{"accept", "application/vnd.oci.image.manifest.v1+json, */*;q=0.1"}}).status == 200);
  CHECK(s.get("/v2/team/app/manifests/v1", {{"accept", std::string(media_type::k_oci_index) + ";q=0.5"}}).status == 200);

  auto cached = s.get("/v2/team/app/manifests/v1", {{"if-none-match", "\"" + s.index.digest.str() + "\""}});
  CHECK(cached.status == 304);
  CHECK(cached.body.empty());

  auto head = s.get("/v2/team/app/manifests/v1", {}, {}, "HEAD");
  CHECK(head.status == 200);
  CHECK(head.head);
  CHECK(head.content_length() == s.store.get(s.index.digest)->size());
}

TEST_CASE("serve: blobs from the verified file, with ranges")
{
  Served s;
  auto manifest = nlohmann::json::parse(*s.store.get(s.image.digest));
  Digest layer = Digest::parse(manifest["layers"][1]["digest"].get<std::string>());
  auto r = s.get("/v2/team/app/blobs/" + layer.str());
  CHECK(r.status == 200);
  CHECK(body_of(r) == "layer two");
  CHECK(header(r, "Docker-Content-Digest") == layer.str());
  CHECK(header(r, "Accept-Ranges") == "bytes");

  auto part = s.get("/v2/team/app/blobs/" + layer.str(), {{"range", "bytes=2-4"}});
  CHECK(part.status == 206);
  CHECK(body_of(part) == "yer");
  CHECK(header(part, "Content-Range") == "bytes 2-4/9");
  auto tail = s.get("/v2/team/app/blobs/" + layer.str(), {{"range", "bytes=-3"}});
  CHECK(body_of(tail) == "two");
  auto past = s.get("/v2/team/app/blobs/" + layer.str(), {{"range", "bytes=9-"}});
  CHECK(past.status == 416);
  CHECK(header(past, "Content-Range") == "bytes */9");

  // A manifest read as a blob (distribution serves it so).
  auto asBlob = s.get("/v2/team/app/blobs/" + s.sig.digest.str());
  CHECK(asBlob.status == 200);
  CHECK(asBlob.body == *s.store.get(s.sig.digest));

  auto head = s.get("/v2/team/app/blobs/" + layer.str(), {}, {}, "HEAD");
  CHECK(head.status == 200);
  CHECK(head.content_length() == 9);
  CHECK(head.blob->file.fd.get() < 0);  // nothing opened for a HEAD

  // The blob file written to after it was verified: refused, never sent.
  fs::path file = s.bundle / "blobs" / "sha256" / layer.hex();
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << "layer 2!!";
  }
  auto changed = s.get("/v2/team/app/blobs/" + layer.str());
  CHECK(changed.status == 500);
  CHECK_FALSE(changed.blob);
  CHECK(header(changed, "X-Ferry-Error").find("changed since it was verified") != std::string::npos);
}

TEST_CASE("serve: tags, catalog and pagination")
{
  Served s;
  auto tags = s.get("/v2/team/app/tags/list");
  CHECK(tags.status == 200);
  auto j = nlohmann::json::parse(tags.body);
  CHECK(j["name"] == "team/app");
  CHECK(j["tags"] == nlohmann::json::array({"v1"}));

  auto catalog = s.get("/v2/_catalog", {}, {{"n", "1"}});
  CHECK(nlohmann::json::parse(catalog.body)["repositories"] == nlohmann::json::array({"team/app"}));
  CHECK(header(catalog, "Link").empty());  // nothing after it
  auto empty = s.get("/v2/_catalog", {}, {{"n", "5"}, {"last", "team/app"}});
  CHECK(nlohmann::json::parse(empty.body)["repositories"].empty());
  CHECK(s.get("/v2/_catalog", {}, {{"n", "x"}}).status == 400);
}

TEST_CASE("serve: paginate with Link headers over many tags")
{
  Served s("b", {PushMap::parse("team/app=mirror/app")});
  CHECK(s.registry->repositories() == std::vector<std::string>{"mirror/app"});
  CHECK(s.get("/v2/team/app/tags/list").status == 404);
  auto r = s.get("/v2/mirror/app/tags/list", {}, {{"n", "0"}});
  CHECK(nlohmann::json::parse(r.body)["tags"].empty());
}

TEST_CASE("serve: the referrers API lists a subject's referrers, filtered by artifactType")
{
  Served s;
  auto r = s.get("/v2/team/app/referrers/" + s.image.digest.str());
  CHECK(r.status == 200);
  CHECK(header(r, "Content-Type") == media_type::k_oci_index);
  auto j = nlohmann::json::parse(r.body);
  REQUIRE(j["manifests"].size() == 2);
  std::set<std::string> got;
  for (const auto& m : j["manifests"]) got.insert(m["digest"].get<std::string>());
  CHECK(got == std::set<std::string>{s.sig.digest.str(), s.sbom.digest.str()});

  auto filtered = s.get("/v2/team/app/referrers/" + s.image.digest.str(), {}, {{"artifactType", "application/spdx+json"}});
  auto f = nlohmann::json::parse(filtered.body);
  REQUIRE(f["manifests"].size() == 1);
  CHECK(f["manifests"][0]["digest"] == s.sbom.digest.str());
  CHECK(f["manifests"][0]["artifactType"] == "application/spdx+json");
  CHECK(header(filtered, "OCI-Filters-Applied") == "artifactType");

  // The signature of the SBOM, one level down.
  auto nested = nlohmann::json::parse(s.get("/v2/team/app/referrers/" + s.sbom.digest.str()).body);
  REQUIRE(nested["manifests"].size() == 1);
  CHECK(nested["manifests"][0]["digest"] == s.sbom_sig.digest.str());

  // An unknown subject: an empty list, as the spec says.
  auto none = s.get("/v2/team/app/referrers/" + Digest::of("nothing").str());
  CHECK(none.status == 200);
  CHECK(nlohmann::json::parse(none.body)["manifests"].empty());
}

TEST_CASE("serve: every other request gets the spec's error codes")
{
  Served s;
  CHECK(error_code(s.get("/v2/other/manifests/v1")) == "NAME_UNKNOWN");
  CHECK(s.get("/v2/other/manifests/v1").status == 404);
  CHECK(error_code(s.get("/v2/team/app/manifests/v2")) == "MANIFEST_UNKNOWN");
  CHECK(error_code(s.get("/v2/team/app/manifests/" + Digest::of("x").str())) == "MANIFEST_UNKNOWN");
  CHECK(error_code(s.get("/v2/team/app/blobs/" + Digest::of("x").str())) == "BLOB_UNKNOWN");
  CHECK(error_code(s.get("/v2/team/app/blobs/sha256:zz")) == "DIGEST_INVALID");
  CHECK(error_code(s.get("/v2/team/app/manifests/bad:tag:x")) == "DIGEST_INVALID");
  CHECK(error_code(s.get("/v2/Team/App/manifests/v1")) == "NAME_INVALID");
  CHECK(error_code(s.get("/v2/../../etc/passwd/manifests/v1")) == "NAME_INVALID");
  CHECK(s.get("/etc/passwd").status == 404);
  CHECK(s.get("/v2/team/app/unknown/x").status == 404);
  for (const char* method : {"PUT", "POST", "PATCH", "DELETE"}) {
    auto w = s.get("/v2/team/app/manifests/v1", {}, {}, method);
    CHECK(w.status == 405);
    CHECK(error_code(w) == "UNSUPPORTED");
  }
}

TEST_CASE("serve: ranges, Accept and htpasswd parsing")
{
  bool bad = false;
  auto r = serve::parse_range("bytes=0-", 10, bad);
  REQUIRE(r);
  CHECK(r->first == 0);
  CHECK(r->second == 10);
  r = serve::parse_range("bytes=5-100", 10, bad);
  CHECK(r->second == 5);
  CHECK_FALSE(serve::parse_range("bytes=10-", 10, bad));
  CHECK(bad);
  CHECK_FALSE(serve::parse_range("bytes=5-2", 10, bad));
  CHECK_FALSE(bad);
  CHECK_FALSE(serve::parse_range("items=0-1", 10, bad));
  CHECK_FALSE(serve::parse_range("bytes=0-1,3-4", 10, bad));  // several: the whole body
  CHECK(serve::acceptable("", "a/b"));
  CHECK(serve::acceptable("application/*", "application/x"));
  CHECK_FALSE(serve::acceptable("text/plain", "application/x"));

  auto users = serve::parse_htpasswd("# users\nalice:$2y$05$abcdefghijklmnopqrstuu5Yf0.y0Q6I7U5B2q4Qq8P6l4gC6JQ/K\n", "pw");
  CHECK(users.count("alice") == 1);
  CHECK_THROWS_WITH_AS(serve::parse_htpasswd("bob:{SHA}xyz\n", "pw"), doctest::Contains("pw:1: only bcrypt"), Error);
  CHECK_THROWS_WITH_AS(serve::parse_htpasswd("nocolon\n", "pw"), doctest::Contains("pw:1"), Error);
  // A real bcrypt hash (htpasswd -nbB -C 5 alice secret).
  std::string hash = "$2y$05$iOeO0ibDJGM/bgwZx2cGMeZxXXe5kSg2vl7FrB7tGhjRZZB/YWRaG";
  CHECK(serve::bcrypt_matches("secret", hash));
  CHECK_FALSE(serve::bcrypt_matches("wrong", hash));
  CHECK_FALSE(serve::bcrypt_matches("secret", "$2y$05$short"));
}

TEST_CASE("serve: a map that matches no root, and a root without a source, are refused")
{
  CHECK_THROWS_WITH_AS(Served("b", {PushMap::parse("nothing/here=x/y")}), doctest::Contains("--map nothing/here=x/y"), Error);
}

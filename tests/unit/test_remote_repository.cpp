#include <doctest/doctest.h>

#include "fake_registry.hpp"
#include "fixtures.hpp"

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/remote/repository.hpp>

#include <cstring>
#include <set>

using namespace ferry;
using namespace ferry::remote;
using namespace fixtures;

namespace {

struct Signed {
  MemoryStore store;
  Descriptor image, sig, sbom, sbom_sig;
  Signed()
  {
    image = add_image(store, {"layer"});
    sig = add_image(store, {"jws"}, {}, image, std::string(media_type::k_notary_signature), {{"a", "1"}});
    sbom = add_image(store, {"spdx"}, {}, image, "application/spdx+json");
    sbom_sig = add_image(store, {"jws2"}, {}, sbom, std::string(media_type::k_notary_signature));
  }
};

std::set<Digest> digests(const std::vector<Descriptor>& v)
{
  std::set<Digest> s;
  for (const auto& d : v) s.insert(d.digest);
  return s;
}

} // namespace

TEST_CASE("repository: resolve checks the bytes against the digest asked for")
{
  FakeRegistry reg;
  Signed g;
  load(reg, "app", g.store, false);
  reg.repos["app"].tags["v1"] = g.image.digest.str();
  Repository repo(reg.client, FakeRegistry::k_base, "app");
  auto d = repo.resolve("v1");
  CHECK(d.digest == g.image.digest);
  CHECK(d.media_type == media_type::k_oci_manifest);
  CHECK(d.size == g.image.size);
  CHECK_THROWS_WITH_AS(repo.resolve("nope"), doctest::Contains("fake.test/app:nope"), Error);

  // A registry serving other bytes for a digest is caught.
  reg.repos["app"].manifests[g.sig.digest.str()].second = *g.store.get(g.sbom.digest);
  Repository fresh(reg.client, FakeRegistry::k_base, "app");
  CHECK_THROWS_AS(fresh.resolve(g.sig.digest.str()), Error);
  auto blob = fresh.fetch(g.sig);  // a manifest fetched by descriptor is verified too
  CHECK_THROWS_AS(read_all(*blob, 1 << 20), Error);
}

TEST_CASE("referrers: API 200, filtered client-side, paginated through Link")
{
  FakeRegistry reg;
  reg.referrers_api = true;
  reg.page_size = 1;
  Signed g;
  load(reg, "app", g.store, false);
  Repository repo(reg.client, FakeRegistry::k_base, "app");
  auto all = repo.referrers(g.image);
  CHECK(digests(all) == std::set<Digest>{g.sig.digest, g.sbom.digest});
  CHECK(reg.count("GET", "/referrers/") == 2);  // two pages
  auto sigs = repo.referrers(g.image, std::string(media_type::k_notary_signature));
  REQUIRE(sigs.size() == 1);
  CHECK(sigs[0].digest == g.sig.digest);
  CHECK(sigs[0].annotations.at("a") == "1");
  CHECK(repo.referrers_api(g.image));
  CHECK(reg.count("GET", "sha256-") == 0);  // never fell back
}

TEST_CASE("referrers: API 404 falls back to the sha256-<hex> tag")
{
  FakeRegistry reg;
  Signed g;
  load(reg, "app", g.store, true);
  Repository repo(reg.client, FakeRegistry::k_base, "app");
  auto refs = repo.referrers(g.image);
  CHECK(digests(refs) == std::set<Digest>{g.sig.digest, g.sbom.digest});
  for (const auto& r : refs) CHECK_FALSE(r.artifact_type.empty());
  CHECK(digests(repo.referrers(g.sbom)) == std::set<Digest>{g.sbom_sig.digest});
  CHECK(repo.referrers(g.sig).empty());  // no tag: no referrers, not an error
  CHECK_FALSE(repo.referrers_api(g.image));
  // The API is probed once, then the fallback is used directly.
  CHECK(reg.count("GET", "/referrers/") == 1);
}

TEST_CASE("referrers: a fallback tag resolving to the subject itself or to a non-index means none")
{
  FakeRegistry reg;
  Signed g;
  load(reg, "app", g.store, false);
  // GitLab-style: the tag points at the subject.
  reg.repos["app"].tags[g.image.digest.fallback_tag()] = g.image.digest.str();
  // Another subject whose fallback tag is an image manifest.
  reg.repos["app"].tags[g.sbom.digest.fallback_tag()] = g.sig.digest.str();
  Repository repo(reg.client, FakeRegistry::k_base, "app");
  CHECK(repo.referrers(g.image).empty());
  CHECK(repo.referrers(g.sbom).empty());
}

TEST_CASE("referrers: endless pagination is bounded")
{
  FakeHttpClient client;
  int calls = 0;
  client.handler = [&](const HttpRequest&) {
    ++calls;
    HttpHeaders h;
    h.add("Content-Type", std::string(media_type::k_oci_index));
    h.add("Link", "</v2/app/referrers/x?page=" + std::to_string(calls) + ">; rel=\"next\"");
    return make_response(200, R"({"schemaVersion":2,"manifests":[]})", h);
  };
  Repository repo(client, FakeRegistry::k_base, "app");
  Descriptor subject = desc_of(media_type::k_oci_manifest, "{}");
  CHECK_THROWS_WITH_AS(repo.referrers(subject), doctest::Contains("pages"), Error);
  CHECK(calls == k_max_referrer_pages);
}

TEST_CASE("referrers: a Link back to a page already read, or to another host, stops at once")
{
  for (std::string link : {"/v2/app/referrers/x?page=1", "http://other.test/v2/app/referrers/x?page=1",
                           "http://fake.test:8080/v2/app/referrers/x?page=1", "https://fake.test/v2/app/referrers/x?page=1"}) {
    CAPTURE(link);
    FakeHttpClient client;
    std::vector<std::string> urls;
    client.handler = [&](const HttpRequest& request) {
      urls.push_back(request.url);
      HttpHeaders h;
      h.add("Content-Type", std::string(media_type::k_oci_index));
      h.add("Link", "<" + link + ">; rel=\"next\"");
      return make_response(200, R"({"schemaVersion":2,"manifests":[]})", h);
    };
    Repository repo(client, FakeRegistry::k_base, "app");
    Descriptor subject = desc_of(media_type::k_oci_manifest, "{}");
    bool same_host = link[0] == '/';
    CHECK_THROWS_WITH_AS(repo.referrers(subject),
                         doctest::Contains(same_host ? "a page already read" : "another host"), Error);
    for (const auto& url : urls) CHECK(url.rfind("http://fake.test/", 0) == 0);
    CHECK(urls.size() == (same_host ? 2u : 1u));
  }
}

TEST_CASE("next_link parses RFC 8288 Link headers")
{
  CHECK(next_link(R"(</v2/a/referrers/x?n=1&last=b>; rel="next")") == std::optional<std::string>("/v2/a/referrers/x?n=1&last=b"));
  CHECK(next_link(R"(<http://h/p1>; rel="prev", <http://h/p3>; rel=next)") == std::optional<std::string>("http://h/p3"));
  CHECK_FALSE(next_link(R"(<http://h/p1>; rel="prev")").has_value());
  CHECK_FALSE(next_link("garbage").has_value());
}

TEST_CASE("fallback index merge: keeps what was there, adds new, dedupes, drops stale")
{
  auto d = [](const std::string& s, const std::string& at) {
    Descriptor x = desc_of(media_type::k_oci_manifest, s);
    x.artifact_type = at;
    return x;
  };
  auto foreign = d("foreign", "application/vnd.example");
  auto stale = d("stale", "application/vnd.example");
  auto sig = d("sig", std::string(media_type::k_notary_signature));
  auto sbom = d("sbom", "application/spdx+json");
  auto exists = [&](const Descriptor& x) { return x.digest != stale.digest; };

  auto m = merge_fallback_index({foreign, stale, sig}, {sig, sbom}, exists);
  CHECK(m.changed);
  REQUIRE(m.manifests.size() == 3);
  CHECK(m.manifests[0].digest == foreign.digest);
  CHECK(m.manifests[1].digest == sig.digest);
  CHECK(m.manifests[2].digest == sbom.digest);

  auto same = merge_fallback_index({foreign, sig}, {sig}, exists);
  CHECK_FALSE(same.changed);
  auto dup = merge_fallback_index({sig, sig}, {}, exists);
  CHECK(dup.changed);
  CHECK(dup.manifests.size() == 1);

  auto bytes = fallback_index_bytes({sig});
  auto j = nlohmann::json::parse(bytes);
  CHECK(j["mediaType"] == media_type::k_oci_index);
  CHECK(j["manifests"][0]["artifactType"] == media_type::k_notary_signature);
  CHECK(j["manifests"][0].contains("annotations"));
}

TEST_CASE("update_fallback_index merges with the registry's index and writes only on change")
{
  FakeRegistry reg;
  Signed g;
  load(reg, "app", g.store, false);
  MemoryStore other;
  auto foreign = add_image(other, {"cosign"}, {}, g.image, "application/vnd.dev.cosign");
  load(reg, "app", other, true);  // a foreign referrer already listed in the fallback index
  Repository repo(reg.client, FakeRegistry::k_base, "app");
  auto sig = repo.referrers(g.sig).size();  // warm nothing; just check API state later
  CHECK(sig == 0);

  Manifest m = Manifest::parse(*g.store.get(g.sig.digest), g.sig.media_type, "sig");
  CHECK(repo.update_fallback_index(g.image, {referrer_descriptor(g.sig, m)}));
  auto refs = repo.referrers(g.image);
  CHECK(digests(refs) == std::set<Digest>{foreign.digest, g.sig.digest});
  auto puts = reg.count("PUT", "/manifests/");
  CHECK_FALSE(repo.update_fallback_index(g.image, {referrer_descriptor(g.sig, m)}));
  CHECK(reg.count("PUT", "/manifests/") == puts);
}

TEST_CASE("push: blobs through POST + PUT ?digest=, manifests by digest, tags")
{
  FakeRegistry reg;
  Signed g;
  Repository repo(reg.client, FakeRegistry::k_base, "dst/app");
  for (const auto& d : g.store.all()) {
    if (media_type::is_manifest(d.media_type)) continue;
    CHECK_FALSE(repo.exists(d));
    auto r = g.store.fetch(d);
    repo.push(d, *r);
    CHECK(repo.exists(d));
  }
  auto r = g.store.fetch(g.image);
  repo.push(g.image, *r);
  CHECK(repo.exists(g.image));
  CHECK(reg.repos["dst/app"].manifests[g.image.digest.str()].first == media_type::k_oci_manifest);
  repo.tag(g.image, "v1");
  CHECK(reg.repos["dst/app"].tags["v1"] == g.image.digest.str());

  // Content that does not match its descriptor never reaches the registry.
  auto lie = desc_of("application/octet-stream", "truth");
  StringReader bad("lies!");
  CHECK_THROWS_AS(repo.push(lie, bad), Error);
  CHECK(reg.repos["dst/app"].blobs.count(lie.digest.str()) == 0);
}

TEST_CASE("push: a 201 for a blob counts only with the right Docker-Content-Digest, or when the blob is there")
{
  FakeRegistry reg;
  // 0: as the registry answers; 1: no Docker-Content-Digest; 2: that, and nothing stored; 3: another digest.
  int mode = 0;
  int heads = 0;
  FakeHttpClient client;
  client.handler = [&](const HttpRequest& r) {
    if (r.method == "HEAD") ++heads;
    bool final_put = r.method == "PUT" && r.url.find("/blobs/uploads/") != std::string::npos;
    if (final_put && mode == 2) {
      if (r.body) r.body();
      return make_response(201);
    }
    HttpResponse resp = reg.handle(r);
    if (final_put && mode == 1) std::erase_if(resp.headers.items, [](const auto& h) { return h.first == "Docker-Content-Digest"; });
    if (final_put && mode == 3) resp.headers.set("Docker-Content-Digest", "sha256:" + std::string(64, '0'));
    return resp;
  };
  Repository repo(client, FakeRegistry::k_base, "dst/app");
  for (int m : {1, 2, 3}) {
    CAPTURE(m);
    mode = m;
    auto d = desc_of("application/octet-stream", "blob " + std::to_string(m));
    StringReader content("blob " + std::to_string(m));
    if (m == 1) {
      repo.push(d, content);
      CHECK(heads == 1);
    } else {
      CHECK_THROWS_WITH_AS(repo.push(d, content), doctest::Contains(d.digest.str().c_str()), Error);
    }
  }
}

namespace {

// A body that fails with a transport error once `cut` bytes were read.
struct CutReader : Reader {
  std::string data;
  std::size_t pos, cut;
  CutReader(std::string d, std::size_t from, std::size_t c) : data(std::move(d)), pos(from), cut(c) {}
  std::size_t read(char* buf, std::size_t n) override
  {
    if (pos >= cut && pos < data.size()) throw Error(Errc::network, "connection reset by peer");
    n = std::min(n, std::min(cut, data.size()) - pos);
    std::memcpy(buf, data.data() + pos, n);
    pos += n;
    return n;
  }
};

// Serves one blob whose body is cut at each of `cuts` (absolute offsets) in turn; Range
// requests are honoured when `ranges`, else answered with the whole body.
struct CuttingRegistry {
  std::string blob;
  Descriptor desc;
  std::vector<std::size_t> cuts;
  bool ranges = true;
  std::string bad_content_range;
  FakeHttpClient client;
  explicit CuttingRegistry(std::vector<std::size_t> c) : cuts(std::move(c))
  {
    for (unsigned i = 0; i < 300000; ++i) blob += static_cast<char>('a' + (i * 7919u) % 26u);
    desc.digest = Digest::of(blob);
    desc.size = blob.size();
    desc.media_type = "application/octet-stream";
    client.handler = [this](const HttpRequest& r) {
      std::size_t from = 0;
      HttpResponse resp;
      resp.status = 200;
      if (auto range = r.headers.get("Range"); range && ranges) {
        from = std::stoul(range->substr(6));
        resp.status = 206;
        resp.headers.add("Content-Range", bad_content_range.empty()
                                              ? "bytes " + std::to_string(from) + "-" + std::to_string(blob.size() - 1) + "/" +
                                                    std::to_string(blob.size())
                                              : bad_content_range);
      }
      std::size_t cut = blob.size();
      if (!cuts.empty()) {
        cut = cuts.front();
        cuts.erase(cuts.begin());
      }
      resp.body = std::make_unique<CutReader>(blob, from, cut);
      return resp;
    };
  }
};

} // namespace

TEST_CASE("blob GET cut off mid-stream resumes with a Range request and still verifies")
{
  CuttingRegistry reg({100000, 250000});
  Repository repo(reg.client, "http://fake.test", "app");
  auto r = repo.fetch(reg.desc);
  CHECK(read_all(*r, 1 << 20) == reg.blob);
  REQUIRE(reg.client.count() == 3);
  CHECK_FALSE(reg.client.request(0).headers.get("Range"));
  CHECK(reg.client.request(1).headers.get("Range") == std::optional<std::string>("bytes=100000-"));
  CHECK(reg.client.request(2).headers.get("Range") == std::optional<std::string>("bytes=250000-"));
}

TEST_CASE("blob GET resume: a registry without Range support sends it all again, the read part is skipped")
{
  CuttingRegistry reg({120000});
  reg.ranges = false;
  Repository repo(reg.client, "http://fake.test", "app");
  auto r = repo.fetch(reg.desc);
  CHECK(read_all(*r, 1 << 20) == reg.blob);
  CHECK(reg.client.count() == 2);
}

TEST_CASE("blob GET resume is bounded, and a wrong Content-Range is an error")
{
  {
    CuttingRegistry reg({1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000});
    Repository repo(reg.client, "http://fake.test", "app");
    auto r = repo.fetch(reg.desc);
    try {
      read_all(*r, 1 << 20);
      FAIL("no exception");
    } catch (const Error& e) {
      std::string what = e.what();
      CHECK(what.find("@" + reg.desc.digest.str() + ": cut off 6 times, the last at byte ") != std::string::npos);
      CHECK(what.find("connection reset") != std::string::npos);
    }
    CHECK(reg.client.count() == 6);  // the first GET and five resumes
  }
  {
    CuttingRegistry reg({1000});
    reg.bad_content_range = "bytes 0-299999/300000";
    Repository repo(reg.client, "http://fake.test", "app");
    auto r = repo.fetch(reg.desc);
    CHECK_THROWS_WITH_AS(read_all(*r, 1 << 20), doctest::Contains("Content-Range bytes 0-"), Error);
  }
}

TEST_CASE("push: a blob over 8 MiB goes up in PATCH chunks with Content-Range, then an empty PUT")
{
  std::string big(20u << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 24);
  auto d = desc_of("application/octet-stream", big);
  for (int fault : {0, 1, 2}) {
    CAPTURE(fault);
    FakeRegistry reg;
    // fault 1: the second chunk lands but the connection fails; fault 2: it is refused once.
    int faults = 0;
    reg.patch_fault = [&](int n) { return n == 2 && faults++ == 0 ? fault : 0; };
    Repository repo(reg.client, FakeRegistry::k_base, "dst/app");
    StringReader r(big);
    repo.push(d, r);
    CHECK(reg.repos["dst/app"].blobs[d.digest.str()] == big);
    std::vector<std::string> ranges;
    bool put_empty = false;
    for (std::size_t i = 0; i < reg.client.count(); ++i) {
      auto q = reg.client.request(i);
      if (q.method == "PATCH") ranges.push_back(*q.headers.get("Content-Range"));
      if (q.method == "PUT") put_empty = reg.client.body(i).empty() && q.url.find("digest=" + d.digest.str()) != std::string::npos;
    }
    std::vector<std::string> want = {"0-8388607", "8388608-16777215", "16777216-20971519"};
    if (fault == 2) want.insert(want.begin() + 2, "8388608-16777215");  // resent after the 503
    CHECK(ranges == want);
    CHECK(put_empty);
  }
  // Content that does not match: nothing is committed.
  FakeRegistry reg;
  Repository repo(reg.client, FakeRegistry::k_base, "dst/app");
  std::string other = big;
  other[12u << 20] ^= 1;
  StringReader r(other);
  CHECK_THROWS_AS(repo.push(d, r), Error);
  CHECK(reg.repos["dst/app"].blobs.count(d.digest.str()) == 0);
}

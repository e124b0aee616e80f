#include <doctest/doctest.h>

#include "fake_registry.hpp"
#include "fixtures.hpp"

#include <ferry/error.hpp>
#include <ferry/ops.hpp>
#include <ferry/proof.hpp>
#include <ferry/remote/repository.hpp>

using namespace ferry;
using namespace ferry::remote;
using namespace fixtures;

namespace {

// image <- sig, image <- sbom <- sbom_sig; an index over image and another platform.
struct Content {
  MemoryStore store;
  Descriptor image, arm, index, sig, sbom, sbom_sig;
  Content()
  {
    image = add_image(store, {"layer"});
    arm = add_image(store, {"arm layer"}, R"({"architecture":"arm64","os":"linux"})");
    index = add_index(store, {{image, "linux/amd64"}, {arm, "linux/arm64"}});
    sig = add_image(store, {"jws"}, {}, image, std::string(media_type::k_notary_signature));
    sbom = add_image(store, {"spdx"}, {}, image, "application/spdx+json");
    sbom_sig = add_image(store, {"jws2"}, {}, sbom, std::string(media_type::k_notary_signature));
  }
};

std::string fallback_tag(const Descriptor& subject) { return subject.digest.fallback_tag(); }

std::vector<ProofGap> gaps_of_kind(const Proof& p, ProofGap::Kind kind)
{
  std::vector<ProofGap> out;
  for (const auto& g : p.missing)
    if (g.kind == kind) out.push_back(g);
  return out;
}

// The content loaded into `repo` (fallback indexes unless the registry has the API), tagged v1.
struct Loaded {
  FakeRegistry reg;
  Content c;
  Graph graph;
  std::vector<ProofRoot> roots;
  explicit Loaded(bool api = false)
  {
    reg.referrers_api = api;
    load(reg, "app", c.store, !api);
    reg.repos["app"].tags["v1"] = c.index.digest.str();
    graph.add(c.store, c.index, GraphOptions{});
    roots = {{c.index, "v1"}};
  }
  Proof prove()
  {
    Repository repo(reg.client, FakeRegistry::k_base, "app");
    return prove_destination(repo, graph, roots);
  }
};

// The content in repository src/app of a fake registry (fallback indexes), copied from there.
struct CopySource {
  FakeRegistry reg;
  Content c;
  explicit CopySource(Descriptor Content::*v1)
  {
    load(reg, "src/app", c.store, true);
    reg.repos["src/app"].tags["v1"] = (c.*v1).digest.str();
  }
  CopyResult copy_to(const std::string& source, const std::string& destination, std::function<void()> before_proof = {})
  {
    CopyOptions opts;
    opts.source = source;
    opts.destination = destination;
    opts.before_proof = std::move(before_proof);
    auto open = [this](const std::string&, const std::string& name) {
      return std::make_shared<Repository>(reg.client, FakeRegistry::k_base, name);
    };
    return copy(opts, open, [](const std::string&) {});
  }
};

} // namespace

TEST_CASE("proof: a complete destination proves every manifest, tag and referrer link")
{
  for (bool api : {false, true}) {
    CAPTURE(api);
    Loaded l(api);
    REQUIRE(l.graph.referrers.size() == 2);
    auto p = l.prove();
    CHECK(p.ok());
    CHECK(p.checked.manifests == 6);  // index, 2 images, sig, sbom, sbom_sig
    CHECK(p.checked.tags == 1);
    CHECK(p.checked.referrers == 3);
    CHECK(p.summary() == "all 6 manifests, 1 tag and 3 referrer links arrived");
  }
}

TEST_CASE("proof: a dropped fallback index is reported as missing referrer links, naming them")
{
  Loaded l;
  l.reg.repos["app"].tags.erase(fallback_tag(l.c.image));
  auto p = l.prove();
  REQUIRE_FALSE(p.ok());
  auto refs = gaps_of_kind(p, ProofGap::Kind::referrer);
  REQUIRE(refs.size() == 2);
  std::set<Digest> missing{refs[0].digest, refs[1].digest};
  CHECK(missing == std::set<Digest>{l.c.sig.digest, l.c.sbom.digest});
  CHECK(refs[0].subject == l.c.image.digest);
  CHECK(refs[0].repository == "fake.test/app");
  CHECK(refs[0].str().find("referrer link " + refs[0].digest.str() + " -> subject " + l.c.image.digest.str()) == 0);
  CHECK(refs[0].detail.find("fallback index " + fallback_tag(l.c.image)) != std::string::npos);
  CHECK(p.missing.size() == 2);  // the sbom's own signature link is still there
  CHECK(p.summary().find("2 of 10 checks failed: referrer link") == 0);
}

TEST_CASE("proof: a referrer missing from the referrers API is reported")
{
  Loaded l(true);
  l.reg.repos["app"].manifests.erase(l.c.sbom_sig.digest.str());
  auto p = l.prove();
  auto refs = gaps_of_kind(p, ProofGap::Kind::referrer);
  REQUIRE(refs.size() == 1);
  CHECK(refs[0].digest == l.c.sbom_sig.digest);
  CHECK(refs[0].detail == "not listed by the referrers API");
  auto manifests = gaps_of_kind(p, ProofGap::Kind::manifest);
  REQUIRE(manifests.size() == 1);
  CHECK(manifests[0].digest == l.c.sbom_sig.digest);
  CHECK(manifests[0].detail == "not found");
}

TEST_CASE("proof: tags must point at their root; the last root given a tag wins")
{
  Loaded l;
  l.reg.repos["app"].tags["v1"] = l.c.image.digest.str();
  auto p = l.prove();
  auto tags = gaps_of_kind(p, ProofGap::Kind::tag);
  REQUIRE(tags.size() == 1);
  CHECK(tags[0].tag == "v1");
  CHECK(tags[0].detail == "points at " + l.c.image.digest.str());

  l.roots = {{l.c.index, "v1"}, {l.c.image, "v1"}};  // two platforms saved under one tag
  CHECK(l.prove().ok());
  l.reg.repos["app"].tags.erase("v1");
  auto gone = gaps_of_kind(l.prove(), ProofGap::Kind::tag);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0].detail == "not found");
}

TEST_CASE("proof: a manifest served with other bytes is a gap, not an exception")
{
  Loaded l;
  l.reg.repos["app"].manifests[l.c.arm.digest.str()].second = *l.c.store.get(l.c.image.digest);
  auto p = l.prove();
  auto manifests = gaps_of_kind(p, ProofGap::Kind::manifest);
  REQUIRE(manifests.size() == 1);
  CHECK(manifests[0].digest == l.c.arm.digest);
  CHECK(manifests[0].detail.find("digest") != std::string::npos);
}

TEST_CASE("copy: registry to registry with referrers, idempotent, proved")
{
  CopySource src(&Content::index);
  const auto& c = src.c;
  auto first = src.copy_to("fake.test/src/app:v1", "fake.test/mirror/app");
  CHECK(first.ok());
  CHECK(first.proof.checked.manifests == 6);
  CHECK(first.proof.checked.referrers == 3);
  CHECK(first.manifests_pushed == 6);
  CHECK(first.tags_written == 1);
  CHECK(first.fallback_indexes_written == 2);
  REQUIRE(first.roots.size() == 1);
  CHECK(first.roots[0].destination == "fake.test/mirror/app:v1");
  auto& dst = src.reg.repos["mirror/app"];
  CHECK(dst.tags.at("v1") == c.index.digest.str());
  CHECK(dst.tags.count(fallback_tag(c.image)) == 1);
  CHECK(dst.tags.count(fallback_tag(c.sbom)) == 1);
  CHECK(dst.blobs.size() == src.reg.repos["src/app"].blobs.size());
  // One registry: blobs were offered for mounting from the source repository first.
  CHECK(src.reg.count("POST", "mount=") == dst.blobs.size());

  auto uploads = src.reg.uploads;
  auto second = src.copy_to("fake.test/src/app:v1", "fake.test/mirror/app");
  CHECK(second.ok());
  CHECK(second.blobs_pushed == 0);
  CHECK(second.manifests_pushed == 0);
  CHECK(second.tags_written == 0);
  CHECK(second.tags_unchanged == 1);
  CHECK(second.fallback_indexes_written == 0);
  CHECK(src.reg.uploads == uploads);
}

TEST_CASE("copy: a destination that drops a referrer between push and proof fails the proof")
{
  CopySource src(&Content::image);
  const auto& c = src.c;
  auto result = src.copy_to("fake.test/src/app:v1", "fake.test/dst/app:v2",
                            [&] { src.reg.repos["dst/app"].tags.erase(fallback_tag(c.sbom)); });
  CHECK_FALSE(result.ok());
  REQUIRE(result.proof.missing.size() == 1);
  const auto& gap = result.proof.missing[0];
  CHECK(gap.kind == ProofGap::Kind::referrer);
  CHECK(gap.digest == c.sbom_sig.digest);
  CHECK(gap.subject == c.sbom.digest);
  CHECK(src.reg.repos["dst/app"].tags.at("v2") == c.image.digest.str());
}

TEST_CASE("copy: destination tag rules and usage errors")
{
  CopySource src(&Content::image);
  const auto& c = src.c;
  auto r = src.copy_to("fake.test/src/app@" + c.image.digest.str(), "fake.test/bydigest/app");
  CHECK(r.ok());
  CHECK(src.reg.repos["bydigest/app"].tags.count("latest") == 0);
  CHECK(r.roots.at(0).destination == "fake.test/bydigest/app@" + c.image.digest.str());

  CHECK_THROWS_WITH_AS(src.copy_to("fake.test/src/app:v1", "fake.test/bydigest/app@" + c.image.digest.str()),
                       doctest::Contains("not a digest"), Error);
  CHECK_THROWS_WITH_AS(src.copy_to("fake.test/src/app:nope", "fake.test/other/app"), doctest::Contains("src/app:nope"),
                       Error);
  CHECK(src.reg.repos["other/app"].manifests.empty());
}

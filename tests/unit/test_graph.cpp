#include <doctest/doctest.h>

#include "fake_registry.hpp"
#include "fixtures.hpp"

#include <ferry/bundle.hpp>
#include <ferry/error.hpp>
#include <ferry/graph.hpp>
#include <ferry/ops.hpp>
#include <ferry/remote/repository.hpp>
#include <ferry/util/file.hpp>

#include <algorithm>

using namespace ferry;
using namespace fixtures;

namespace {

std::size_t pos(const Graph& g, const Digest& d)
{
  return static_cast<std::size_t>(std::find(g.order.begin(), g.order.end(), d) - g.order.begin());
}

struct MultiArch {
  MemoryStore store;
  Descriptor amd64, arm64, index, arm_sig, index_sbom, sbom_sig;
  MultiArch()
  {
    amd64 = add_image(store, {"amd64 layer"}, R"({"architecture":"amd64","os":"linux"})");
    arm64 = add_image(store, {"arm64 layer"}, R"({"architecture":"arm64","os":"linux"})");
    index = add_index(store, {{amd64, "linux/amd64"}, {arm64, "linux/arm64"}});
    arm_sig = add_image(store, {"jws-arm"}, {}, arm64, std::string(media_type::k_notary_signature));
    index_sbom = add_image(store, {"spdx"}, {}, index, "application/spdx+json");
    sbom_sig = add_image(store, {"jws-sbom"}, {}, index_sbom, std::string(media_type::k_notary_signature));
  }
};

} // namespace

TEST_CASE("graph: referrers of referrers and of index children, through the tag fallback")
{
  FakeRegistry reg;
  MultiArch m;
  load(reg, "multi", m.store, true);
  remote::Repository repo(reg.client, FakeRegistry::k_base, "multi");
  Graph g;
  g.add(repo, m.index, GraphOptions{});
  for (const auto& d : {m.amd64, m.arm64, m.index, m.arm_sig, m.index_sbom, m.sbom_sig}) CHECK(g.contains(d.digest));
  CHECK(g.referrer_nodes == std::set<Digest>{m.arm_sig.digest, m.index_sbom.digest, m.sbom_sig.digest});
  CHECK(g.referrers.at(m.arm64.digest).size() == 1);
  CHECK(g.referrers.at(m.index_sbom.digest).at(0).digest == m.sbom_sig.digest);
  // Children before parents; referrers after their subjects.
  CHECK(pos(g, m.amd64.digest) < pos(g, m.index.digest));
  CHECK(pos(g, m.arm64.digest) < pos(g, m.index.digest));
  CHECK(pos(g, m.index.digest) < pos(g, m.index_sbom.digest));
  CHECK(pos(g, m.index_sbom.digest) < pos(g, m.sbom_sig.digest));
  for (const auto& b : g.blobs()) CHECK(pos(g, b.digest) < g.order.size());
  CHECK(g.referrer_closure(m.index.digest).size() == 2);
  // Configs and referrer payloads are small blobs; image layers are not.
  CHECK(g.small_blobs.count(Digest::of("jws-arm")) == 1);
  CHECK(g.small_blobs.count(Digest::of("arm64 layer")) == 0);
}

TEST_CASE("memory store: the referrers index follows what is stored after a query (issue 18)")
{
  MemoryStore store;
  auto image = add_image(store, {"layer"}, R"({"architecture":"amd64","os":"linux"})");
  auto sig = add_image(store, {"jws-1"}, {}, image, std::string(media_type::k_notary_signature));
  auto refs = store.referrers(image);
  REQUIRE(refs.size() == 1);
  CHECK(refs[0].digest == sig.digest);
  CHECK(refs[0].artifact_type == media_type::k_notary_signature);
  // Stored after the first query: found by the next one, in digest order, filtered by type.
  auto sbom = add_image(store, {"spdx"}, {}, image, "application/spdx+json");
  auto sig2 = add_image(store, {"jws-2"}, {}, sbom, std::string(media_type::k_notary_signature));
  refs = store.referrers(image);
  REQUIRE(refs.size() == 2);
  CHECK(refs[0].digest < refs[1].digest);
  CHECK(store.referrers(image, "application/spdx+json").size() == 1);
  CHECK(store.referrers(image, "application/spdx+json")[0].digest == sbom.digest);
  CHECK(store.referrers(sbom).at(0).digest == sig2.digest);
  CHECK(store.referrers(sig2).empty());
  // A manifest that does not parse fails every query, as a scan of every manifest did.
  Descriptor bad;
  bad.media_type = std::string(media_type::k_oci_manifest);
  std::string bytes = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"})";
  bad.digest = Digest::of(bytes);
  bad.size = bytes.size();
  store.put(bad, bytes);
  CHECK_THROWS(store.referrers(image));
  CHECK_THROWS(store.referrers(image));
}

TEST_CASE("graph: options filter referrers")
{
  FakeRegistry reg;
  MultiArch m;
  load(reg, "multi", m.store, true);
  remote::Repository repo(reg.client, FakeRegistry::k_base, "multi");
  Graph none;
  none.add(repo, m.index, GraphOptions{false, {}});
  CHECK(none.referrer_nodes.empty());
  CHECK(reg.count("GET", "sha256-") == 0);
  Graph sigs;
  sigs.add(repo, m.index, GraphOptions{true, {std::string(media_type::k_notary_signature)}});
  CHECK(sigs.referrer_nodes == std::set<Digest>{m.arm_sig.digest});
}

TEST_CASE("graph: a referrer that cannot be fetched is an error naming it")
{
  FakeRegistry reg;
  MultiArch m;
  load(reg, "multi", m.store, true);
  reg.repos["multi"].manifests.erase(m.arm_sig.digest.str());
  remote::Repository repo(reg.client, FakeRegistry::k_base, "multi");
  Graph g;
  CHECK_THROWS_WITH_AS(g.add(repo, m.index, GraphOptions{}), doctest::Contains(m.arm_sig.digest.str().c_str()), Error);
}

TEST_CASE("graph: subjects that refer to each other terminate")
{
  // A source that claims X and Y are each other's referrers.
  struct Loop : MemoryStore {
    Descriptor x, y;
    std::vector<Descriptor> referrers(const Descriptor& s, const std::string&) override
    {
      if (s.digest == x.digest) return {y};
      if (s.digest == y.digest) return {x};
      return {};
    }
  } src;
  src.x = add_image(src, {"x"});
  src.y = add_image(src, {"y"}, {}, src.x, "application/vnd.y");
  Graph g;
  g.add(src, src.x, GraphOptions{});
  CHECK(g.contains(src.y.digest));
  CHECK(g.manifests_in_order().size() == 2);
}

TEST_CASE("graph: platform selection and index.json building")
{
  MultiArch m;
  auto sel = select_platforms(m.index, *m.store.get(m.index.digest), {Platform::parse("linux/arm64")});
  REQUIRE(sel.size() == 1);
  CHECK(sel[0].digest == m.arm64.digest);
  CHECK(select_platforms(m.index, *m.store.get(m.index.digest), {Platform::parse("windows/amd64")}).empty());

  Graph g;
  g.add(m.store, m.index, GraphOptions{});
  BundleRoot root;
  root.desc = m.index;
  root.source = Reference::parse("reg.local:5000/team/multi:v2");
  root.tag = "v2";
  auto idx = nlohmann::json::parse(build_index_json({root}, g));
  REQUIRE(idx["manifests"].size() == 4);  // the root and three referrers
  CHECK(idx["manifests"][0]["annotations"]["io.containerd.image.name"] == "reg.local:5000/team/multi:v2");
  CHECK(idx["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v2");
  for (std::size_t i = 1; i < 4; ++i) {
    CHECK_FALSE(idx["manifests"][i].contains("annotations"));
    CHECK(idx["manifests"][i].contains("artifactType"));
  }
  CHECK(is_fallback_tag(m.index.digest.fallback_tag()));
  CHECK_FALSE(is_fallback_tag("v1"));
  CHECK(content_size(g, m.arm64.digest) == m.arm64.size +
                                                 std::string(R"({"architecture":"arm64","os":"linux"})").size() +
                                                 std::string("arm64 layer").size());
}

TEST_CASE("bundle: ref.name unique within the bundle (issue 14)")
{
  auto root = [](const std::string& ref, const std::string& digest_of) {
    BundleRoot r;
    r.desc.media_type = "application/vnd.oci.image.manifest.v1+json";
    r.desc.digest = Digest::of(digest_of);
    r.source = Reference::parse(ref);
    r.tag = r.source->tag;
    return r;
  };
  auto names = root_ref_names({root("a.example/x:v1", "x"), root("b.example/y:v1", "y"), root("b.example/y:v2", "z"),
                               root("b.example/y@" + Digest::of("w").str(), "w"), root("c.example/z:v1", "x"),
                               root("c.example/z:v1", "q")});
  REQUIRE(names.size() == 6);
  CHECK(names[0] == "a.example/x:v1");
  CHECK(names[1] == "b.example/y:v1");
  CHECK(names[2] == "v2");  // unique: the tag
  CHECK(names[3].empty());  // by digest: no name
  CHECK(names[4] == "c.example/z:v1@" + Digest::of("x").str());
  CHECK(names[5] == "c.example/z:v1@" + Digest::of("q").str());

  std::vector<Descriptor> entries(3);
  for (std::size_t i = 0; i < 3; ++i) {
    entries[i].digest = Digest::of(std::to_string(i));
    entries[i].annotations["org.opencontainers.image.ref.name"] = "v1";
  }
  entries[2].digest = entries[0].digest;  // the same manifest twice is no collision
  auto warnings = ref_name_collisions(entries);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("\"v1\" names 2 different manifests") != std::string::npos);
  entries.pop_back();
  entries[1].annotations["org.opencontainers.image.ref.name"] = "v2";
  CHECK(ref_name_collisions(entries).empty());

  // Bounded: 150 names each given to two manifests, one with a 10,000-byte name.
  std::vector<Descriptor> many;
  for (int i = 0; i < 300; ++i) {
    Descriptor d;
    d.digest = Digest::of("m" + std::to_string(i));
    d.annotations["org.opencontainers.image.ref.name"] = i / 2 == 0 ? std::string(10000, 'x') : "t" + std::to_string(i / 2);
    many.push_back(d);
  }
  auto cut = ref_name_collisions(many);
  REQUIRE(cut.size() == 101);
  CHECK(cut[0].size() < 600);
  CHECK(cut[100] == "index.json: 50 more ref.names each naming several different manifests");
}

TEST_CASE("platform_image_tags: several platforms of one index, as save and copy name them (issue 14)")
{
  auto image = [](const std::string& platform, const std::string& digest_of) {
    Descriptor d;
    d.media_type = "application/vnd.oci.image.manifest.v1+json";
    d.digest = Digest::of(digest_of);
    if (!platform.empty()) d.platform = Platform::parse(platform);
    return d;
  };
  auto tags = platform_image_tags("v2", {image("linux/amd64", "a"), image("linux/arm/v7", "b"), image("windows/amd64", "c")});
  CHECK(tags == std::vector<std::string>{"v2-linux-amd64", "v2-linux-arm-v7", "v2-windows-amd64"});
  // One image, or no tag: unchanged.
  CHECK(platform_image_tags("v2", {image("linux/amd64", "a")}) == std::vector<std::string>{"v2"});
  CHECK(platform_image_tags("", {image("linux/amd64", "a"), image("linux/arm64", "b")}) ==
        std::vector<std::string>{"", ""});
  // Characters a tag cannot have become '-'; the same platform twice: the digest tells them apart.
  Descriptor odd = image("", "o");
  odd.platform = Platform{"linux", "x+y", "", ""};
  auto twice = platform_image_tags("v1", {image("linux/amd64", "a"), image("linux/amd64", "b"), odd});
  CHECK(twice[0] == "v1-" + Digest::of("a").hex().substr(0, 12));
  CHECK(twice[1] == "v1-linux-amd64");
  CHECK(twice[2] == "v1-linux-x-y");
  // A name too long for a tag (128 characters at most) falls back to the digest form.
  std::string long_tag(125, 't');
  auto longer = platform_image_tags(long_tag, {image("linux/amd64", "a"), image("linux/arm64", "b")});
  CHECK(longer[0] == long_tag.substr(0, 114) + "-" + Digest::of("a").hex().substr(0, 12));
  CHECK(Reference::is_valid_tag(longer[1]));
}

namespace {

// cosign's tag scheme: an image with a `.sig` (simple-signing layer), a `.att` (DSSE layer),
// a `.sbom`, and the `.sig` of that SBOM; plus an unrelated tag.
struct CosignTagged {
  MemoryStore store;
  Descriptor image, sig, att, sbom, sbom_sig;
  CosignTagged()
  {
    image = add_image(store, {"image layer"});
    auto cosign_manifest = [&](const std::string& layer_type, const std::string& payload) {
      auto cfg = add_blob(store, media_type::k_oci_config, R"({"architecture":"","os":""})");
      auto layer = add_blob(store, layer_type, payload);
      json m = {{"schemaVersion", 2}, {"mediaType", media_type::k_oci_manifest}, {"config", cfg.to_json_basic()},
                {"layers", json::array({layer.to_json_basic()})}};
      return add_blob(store, media_type::k_oci_manifest, m.dump());
    };
    sig = cosign_manifest(std::string(media_type::k_cosign_simple_signing), "simple signing of the image");
    att = cosign_manifest(std::string(media_type::k_dsse_envelope), "dsse envelope");
    sbom = cosign_manifest("text/spdx+json", "spdx document");
    sbom_sig = cosign_manifest(std::string(media_type::k_cosign_simple_signing), "simple signing of the sbom");
  }
  void load_into(FakeRegistry& reg, const std::string& repo)
  {
    load(reg, repo, store, false);
    reg.repos[repo].tags["v1"] = image.digest.str();
    reg.repos[repo].tags[image.digest.cosign_tag("sig")] = sig.digest.str();
    reg.repos[repo].tags[image.digest.cosign_tag("att")] = att.digest.str();
    reg.repos[repo].tags[image.digest.cosign_tag("sbom")] = sbom.digest.str();
    reg.repos[repo].tags[sbom.digest.cosign_tag("sig")] = sbom_sig.digest.str();
    reg.repos[repo].tags["other"] = image.digest.str();
  }
};

} // namespace

TEST_CASE("cosign tags: parse_cosign_tag reads sha256-<hex>.sig/.att/.sbom and nothing else")
{
  auto d = Digest::of("x");
  auto t = parse_cosign_tag(d.cosign_tag("sig"));
  REQUIRE(t);
  CHECK(t->subject == d);
  CHECK(t->suffix == "sig");
  CHECK(parse_cosign_tag(d.cosign_tag("att"))->suffix == "att");
  CHECK(parse_cosign_tag(d.cosign_tag("sbom"))->suffix == "sbom");
  CHECK_FALSE(parse_cosign_tag(d.fallback_tag()));
  CHECK_FALSE(parse_cosign_tag(d.cosign_tag("exe")));
  CHECK_FALSE(parse_cosign_tag("sha256-abc.sig"));
  CHECK_FALSE(parse_cosign_tag("v1.sig"));
  CHECK_FALSE(parse_cosign_tag(".sig"));
  CHECK_FALSE(parse_cosign_tag("sha256-" + d.hex() + "X.sig"));
}

TEST_CASE("cosign tags: the graph follows .sig/.att/.sbom (and the .sig of an SBOM) from the tag list")
{
  FakeRegistry reg;
  reg.tags_page_size = 2;  // the list comes in pages, followed through Link
  CosignTagged c;
  c.load_into(reg, "app");
  remote::Repository repo(reg.client, FakeRegistry::k_base, "app");
  Graph g;
  g.add(repo, c.image, GraphOptions{});
  for (const auto& d : {c.image, c.sig, c.att, c.sbom, c.sbom_sig}) CHECK(g.contains(d.digest));
  CHECK(g.attachment_nodes == std::set<Digest>{c.sig.digest, c.att.digest, c.sbom.digest, c.sbom_sig.digest});
  REQUIRE(g.attachments.at(c.image.digest).size() == 3);
  CHECK(g.attachments.at(c.image.digest)[0].suffix == "sig");
  CHECK(g.attachments.at(c.image.digest)[0].desc.digest == c.sig.digest);
  CHECK(g.attachments.at(c.image.digest)[2].suffix == "sbom");
  CHECK(g.attachments.at(c.sbom.digest).at(0).desc.digest == c.sbom_sig.digest);
  CHECK(g.referrer_nodes.empty());
  // Payloads are small blobs (written before image layers).
  CHECK(g.small_blobs.count(Digest::of("simple signing of the image")) == 1);
  CHECK(pos(g, c.image.digest) < pos(g, c.sig.digest));
  // The tag list answered: no request for a tag that does not exist, not even the referrers
  // fallback tag (the registry has no referrers API).
  CHECK(reg.count("GET", "tags/list") == 3);
  // (the three GETs under that prefix are the .sig, .att and .sbom tags, which exist)
  CHECK(reg.count("GET", "/manifests/" + c.image.digest.fallback_tag()) == 3);
  CHECK(reg.count("GET", "/manifests/" + c.image.digest.fallback_tag() + ".") == 3);
  CHECK(reg.count("GET", "/manifests/" + c.sig.digest.cosign_tag("sig")) == 0);
  // Pushed back: the attachment tags are written with the same digests.
  FakeRegistry dst;
  remote::Repository to(dst.client, FakeRegistry::k_base, "app");
  for (const auto& b : g.blobs()) dst.put_blob("app", *c.store.get(b.digest));
  for (const auto& m : g.manifests_in_order()) to.put_manifest(m, *g.manifests.get(m.digest), m.digest.str());
  for (const auto& [subject, list] : g.attachments)
    for (const auto& a : list) to.put_manifest(a.desc, *g.manifests.get(a.desc.digest), subject.cosign_tag(a.suffix));
  CHECK(dst.repos["app"].tags.at(c.image.digest.cosign_tag("att")) == c.att.digest.str());
  CHECK(dst.repos["app"].tags.at(c.sbom.digest.cosign_tag("sig")) == c.sbom_sig.digest.str());
}

TEST_CASE("cosign tags: without a tag list each tag is asked for by name; --no-referrers and --artifact-type filter them")
{
  FakeRegistry reg;
  reg.tags_api = false;
  CosignTagged c;
  c.load_into(reg, "app");
  remote::Repository repo(reg.client, FakeRegistry::k_base, "app");
  Graph g;
  g.add(repo, c.image, GraphOptions{});
  CHECK(g.attachment_nodes.size() == 4);
  CHECK(reg.count("GET", "/manifests/" + c.image.digest.cosign_tag("sig")) == 1);
  Graph none;
  none.add(repo, c.image, GraphOptions{false, {}});
  CHECK(none.attachment_nodes.empty());
  Graph sigs;
  sigs.add(repo, c.image, GraphOptions{true, {std::string(media_type::k_cosign_simple_signing)}});
  CHECK(sigs.attachment_nodes == std::set<Digest>{c.sig.digest});
  // A cosign tag that names something other than an image manifest is an error naming it.
  reg.repos["app"].tags[c.image.digest.cosign_tag("att")] = c.image.digest.str();
  Graph bad;
  CHECK_THROWS_WITH_AS(bad.add(repo, c.image, GraphOptions{}), doctest::Contains(c.image.digest.cosign_tag("att").c_str()), Error);
}

TEST_CASE("cosign tags: a saved bundle names attachments by their tags; classify and the reader give them back")
{
  FakeRegistry reg;
  CosignTagged c;
  c.load_into(reg, "app");
  remote::Repository repo(reg.client, FakeRegistry::k_base, "app");
  Graph g;
  g.add(repo, c.image, GraphOptions{});
  BundleRoot root;
  root.desc = c.image;
  root.source = Reference::parse("reg.local/app:v1");
  root.tag = "v1";
  std::string index = build_index_json({root}, g);
  auto j = json::parse(index);
  REQUIRE(j["manifests"].size() == 5);
  std::set<std::string> names;
  for (const auto& e : j["manifests"]) names.insert(e["annotations"].value(std::string(k_annotation_ref_name), ""));
  CHECK(names == std::set<std::string>{"v1", c.image.digest.cosign_tag("sig"), c.image.digest.cosign_tag("att"),
                                       c.image.digest.cosign_tag("sbom"), c.sbom.digest.cosign_tag("sig")});
  // Written as a layout directory and read back at verify depth.
  TempDir tmp;
  namespace fs = std::filesystem;
  fs::create_directories(tmp.path() / "blobs" / "sha256");
  write_file_atomic(tmp.path() / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  write_file_atomic(tmp.path() / "index.json", index);
  for (const auto& d : c.store.all()) write_file_atomic(tmp.path() / "blobs" / "sha256" / d.digest.hex(), *c.store.get(d.digest));
  LayoutReader::Options o;
  o.depth = ReadDepth::verify;
  auto r = LayoutReader::open(tmp.path(), BundleFormat::dir, o);
  CHECK(r->problems().empty());
  auto contents = classify(*r);
  REQUIRE(contents.roots.size() == 1);
  CHECK(contents.roots[0].tag == "v1");
  CHECK(contents.attachments.size() == 4);
  CHECK(r->attachments(c.image).size() == 3);
  // cosign payloads are kept for the verifier; the SBOM document is not a signature.
  CHECK(r->kept(Digest::of("simple signing of the image")) != nullptr);
  CHECK(r->kept(Digest::of("dsse envelope")) != nullptr);
  CHECK(r->kept(Digest::of("spdx document")) == nullptr);
  // The graph a push walks from the bundle holds the same attachments.
  Graph again;
  again.add(*r, c.image, GraphOptions{});
  CHECK(again.attachment_nodes == g.attachment_nodes);
  // An attachment whose subject the bundle does not hold is a root under its tag.
  auto lone = Digest::of("absent image");
  auto k = json::parse(index);
  k["manifests"][1]["annotations"][std::string(k_annotation_ref_name)] = lone.cosign_tag("sig");
  write_file_atomic(tmp.path() / "index.json", k.dump());
  auto r2 = LayoutReader::open(tmp.path(), BundleFormat::dir, o);
  auto c2 = classify(*r2);
  CHECK(c2.roots.size() == 2);
  CHECK(c2.attachments.size() == 3);
}

TEST_CASE("cosign tags: --platform is refused on an index signed with a cosign .sig tag, not for its .sbom alone")
{
  FakeRegistry reg;
  MultiArch m;
  load(reg, "multi", m.store, false);  // no fallback index: no Notation referrer is visible
  reg.repos["multi"].tags["v2"] = m.index.digest.str();
  CosignTagged c;  // its manifests serve as cosign attachments of the index
  for (const auto& d : c.store.all()) {
    if (media_type::is_manifest(d.media_type)) reg.put_manifest("multi", d.media_type, *c.store.get(d.digest));
    else reg.put_blob("multi", *c.store.get(d.digest));
  }
  remote::Repository repo(reg.client, FakeRegistry::k_base, "multi");
  auto ref = Reference::parse("fake.test/multi:v2");
  std::vector<Platform> arm{Platform::parse("linux/arm64")};
  auto ways = [](const std::vector<Descriptor>&) { return std::string("ways forward"); };
  // An SBOM is not a signature: nothing to refuse.
  reg.repos["multi"].tags[m.index.digest.cosign_tag("sbom")] = c.sbom.digest.str();
  CHECK_NOTHROW(refuse_signed_index_subset(repo, ref, arm, GraphOptions{}, "save", ways));
  // A .sig of the index signs it: refused, naming the tag.
  reg.repos["multi"].tags[m.index.digest.cosign_tag("sig")] = c.sig.digest.str();
  remote::Repository again(reg.client, FakeRegistry::k_base, "multi");  // a fresh tag list
  CHECK_THROWS_WITH_AS(refuse_signed_index_subset(again, ref, arm, GraphOptions{}, "save", ways),
                       doctest::Contains(m.index.digest.cosign_tag("sig").c_str()), Error);
  // Unless signatures are not wanted at all.
  CHECK_NOTHROW(refuse_signed_index_subset(again, ref, arm, GraphOptions{false, {}}, "save", ways));
}

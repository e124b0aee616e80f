#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/store/bundle_writer.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/util/file.hpp>
#include <ferry/verify/integrity.hpp>

#include <filesystem>
#include <fstream>
#include <random>

using namespace ferry;
using namespace ferry::verify;
using namespace fixtures;
namespace fs = std::filesystem;

namespace {

struct Signed {
  MemoryStore store;
  Descriptor image, sig;
  Signed()
  {
    image = add_image(store, {std::string(300000, 'L'), "second layer"});
    sig = add_image(store, {"{\"payload\":\"x\"}"}, {}, image, std::string(media_type::k_notary_signature));
  }
  std::string index_json(std::uint64_t image_size_override = 0) const
  {
    nlohmann::json root = image.to_json_basic();
    if (image_size_override) root["size"] = image_size_override;
    root["annotations"] = {{"io.containerd.image.name", "reg.test/app:v1"}, {"org.opencontainers.image.ref.name", "v1"}};
    return nlohmann::json{{"schemaVersion", 2}, {"manifests", {root, sig.to_json_basic()}}}.dump();
  }
  fs::path write(const fs::path& out, const std::string& index, const std::set<Digest>& skip = {},
                 const std::map<Digest, std::string>& replace = {})
  {
    // Manifests first (the tar head), then the rest, as save does.
    std::vector<Descriptor> all = store.all();
    std::stable_partition(all.begin(), all.end(), [](const Descriptor& d) { return media_type::is_manifest(d.media_type); });
    std::vector<BundleItem> items;
    for (const auto& d : all)
      if (!skip.count(d.digest)) items.push_back({d, *store.get(d.digest)});
    BundleWriter::create(out, format_from_path(out), index, std::move(items))->commit();
    // Lying bytes under an honest name (a directory's file rewritten).
    for (const auto& [d, bytes] : replace) {
      std::ofstream f(out / blob_path(d), std::ios::binary | std::ios::trunc);
      f << bytes;
    }
    return out;
  }
};

/// The bundle read at verify depth, with the graph checked: what verify reports.
std::unique_ptr<LayoutReader> scan(const fs::path& p)
{
  LayoutReader::Options o;
  o.depth = ReadDepth::verify;
  auto r = LayoutReader::open(p, format_from_path(p), o);
  check_graph(*r);
  return r;
}

bool mentions(const LayoutReader& s, const std::string& text)
{
  for (const auto& p : s.problems().listed)
    if (p.message.find(text) != std::string::npos || p.digest.find(text) != std::string::npos) return true;
  return false;
}

} // namespace

TEST_CASE("integrity: a clean bundle passes in every format and keeps manifests and envelopes")
{
  for (const char* name : {"ok", "ok.tar", "ok.tar.zst"}) {
    CAPTURE(name);
    TempDir tmp;
    Signed g;
    auto out = g.write(tmp.path() / name, g.index_json());
    auto r = scan(out);
    CHECK(r->problems().empty());
    for (const auto& p : r->problems().listed) MESSAGE(p.message);
    CHECK(r->blobs().size() == g.store.all().size());
    CHECK(r->metadata().get(g.image.digest).has_value());
    CHECK(r->metadata().get(g.sig.digest).has_value());
    CHECK(r->kept(Digest::of("{\"payload\":\"x\"}")));
    CHECK_FALSE(r->kept(Digest::of(std::string(300000, 'L'))));  // layers are not kept
  }
}

TEST_CASE("integrity: flipped bytes, missing blobs, lying sizes and missing subjects are all reported")
{
  TempDir tmp;
  Signed g;
  Digest layer = Digest::of("second layer");
  Digest config = Digest::of(R"({"architecture":"amd64","os":"linux"})");
  auto out = g.write(tmp.path() / "bad", g.index_json(), {config}, {{layer, "second lay3r"}});
  auto r = scan(out);
  CHECK_FALSE(r->problems().empty());
  CHECK(mentions(*r, layer.str()));   // the flipped byte
  CHECK(mentions(*r, config.str()));  // the missing config
  CHECK(r->problems().total >= 2);

  auto lying = g.write(tmp.path() / "lying.tar", g.index_json(g.image.size + 1));
  CHECK(mentions(*scan(lying), "gives size"));

  // The image's manifest is absent: its signature's subject is missing.
  auto orphan = g.write(tmp.path() / "orphan.tar.zst", g.index_json(), {g.image.digest});
  CHECK(mentions(*scan(orphan), "subject " + g.image.digest.str()));
}

TEST_CASE("integrity: index.json that is not JSON is a problem, not a crash")
{
  TempDir tmp;
  Signed g;
  auto out = g.write(tmp.path() / "x", "{not json");
  CHECK(mentions(*scan(out), "index.json"));
  CHECK_THROWS_AS(scan(tmp.path() / "absent.tar"), Error);
}

TEST_CASE("integrity: signature manifest forms")
{
  MemoryStore s;
  auto img = add_image(s, {"l"});
  auto newform = add_image(s, {"jws"}, {}, img, std::string(media_type::k_notary_signature));
  Manifest m = Manifest::parse(*s.get(newform.digest), newform.media_type, "new");
  CHECK(is_signature_manifest(m));
  auto sbom = add_image(s, {"spdx"}, {}, img, "application/spdx+json");
  CHECK_FALSE(is_signature_manifest(Manifest::parse(*s.get(sbom.digest), sbom.media_type, "sbom")));
  std::string legacy = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.notary.signature","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"subject":)" +
                       img.to_json_basic().dump() + "}";
  CHECK(is_signature_manifest(Manifest::parse(legacy, std::string(media_type::k_oci_manifest), "legacy")));
}

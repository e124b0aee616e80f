#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/verify/integrity.hpp>

#include <filesystem>
#include <fstream>
#include <random>

using namespace ferry;
using namespace ferry::verify;
using namespace fixtures;
namespace fs = std::filesystem;

namespace {

struct Tmp {
  fs::path path;
  Tmp()
  {
    std::random_device rd;
    path = fs::temp_directory_path() / ("ferry-integrity-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~Tmp() { fs::remove_all(path); }
};

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
    auto w = LayoutWriter::create(out, format_from_path(out), true);
    w->write_index(index);
    // Manifests first (the tar head), then the rest, as save does.
    std::vector<Descriptor> all = store.all();
    std::stable_partition(all.begin(), all.end(), [](const Descriptor& d) { return media_type::is_manifest(d.media_type); });
    for (const auto& d : all) {
      if (skip.count(d.digest)) continue;
      std::string bytes = *store.get(d.digest);
      if (auto it = replace.find(d.digest); it != replace.end()) {
        // Bypass the writer's own check: write the lying bytes under the honest name.
        if (format_from_path(out) != BundleFormat::dir) continue;
        bytes = it->second;
      }
      StringReader r(*store.get(d.digest));
      w->write_blob(d, r);
    }
    w->commit();
    for (const auto& [d, bytes] : replace) {
      std::ofstream f(out / blob_path(d), std::ios::binary | std::ios::trunc);
      f << bytes;
    }
    return out;
  }
};

bool mentions(const BundleScan& s, const std::string& text)
{
  for (const auto& p : s.problems)
    if (p.message.find(text) != std::string::npos || p.digest.find(text) != std::string::npos) return true;
  return false;
}

} // namespace

TEST_CASE("integrity: a clean bundle passes in every format and keeps manifests and envelopes")
{
  for (const char* name : {"ok", "ok.tar", "ok.tar.zst"}) {
    CAPTURE(name);
    Tmp tmp;
    Signed g;
    auto out = g.write(tmp.path / name, g.index_json());
    auto scan = scan_bundle(out, format_from_path(out));
    CHECK(scan->ok());
    for (const auto& p : scan->problems) MESSAGE(p.message);
    CHECK(scan->blobs == g.store.all().size());
    CHECK(scan->manifests.get(g.image.digest).has_value());
    CHECK(scan->manifests.get(g.sig.digest).has_value());
    CHECK(scan->envelopes.count(Digest::of("{\"payload\":\"x\"}")) == 1);
    CHECK(scan->envelopes.count(Digest::of(std::string(300000, 'L'))) == 0);  // layers are not kept
  }
}

TEST_CASE("integrity: flipped bytes, missing blobs, lying sizes and missing subjects are all reported")
{
  Tmp tmp;
  Signed g;
  Digest layer = Digest::of("second layer");
  Digest config = Digest::of(R"({"architecture":"amd64","os":"linux"})");
  auto out = g.write(tmp.path / "bad", g.index_json(), {config}, {{layer, "second lay3r"}});
  auto scan = scan_bundle(out, BundleFormat::dir);
  CHECK_FALSE(scan->ok());
  CHECK(mentions(*scan, layer.str()));   // the flipped byte
  CHECK(mentions(*scan, config.str()));  // the missing config
  CHECK(scan->problems.size() >= 2);

  Tmp tmp2;
  auto lying = g.write(tmp2.path / "lying.tar", g.index_json(g.image.size + 1));
  auto s2 = scan_bundle(lying, BundleFormat::tar);
  CHECK(mentions(*s2, "gives size"));

  Tmp tmp3;
  auto orphan = g.write(tmp3.path / "orphan.tar.zst", g.index_json(), {g.image.digest});
  auto s3 = scan_bundle(orphan, BundleFormat::tar_zst);
  CHECK(mentions(*s3, "subject " + g.image.digest.str()));
}

TEST_CASE("integrity: index.json that is not JSON is a problem, not a crash")
{
  Tmp tmp;
  Signed g;
  auto out = g.write(tmp.path / "x", "{not json");
  auto scan = scan_bundle(out, BundleFormat::dir);
  CHECK(mentions(*scan, "index.json"));
  CHECK_THROWS_AS(scan_bundle(tmp.path / "absent.tar", BundleFormat::tar), Error);
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

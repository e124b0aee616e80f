#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>

using namespace ferry;
using namespace fixtures;

TEST_CASE("successors: manifest → config and layers; index → manifests; subject is not a child")
{
  MemoryStore s;
  auto img = add_image(s, {"layer-a", "layer-b"});
  auto sig = add_image(s, {"sig"}, {}, img, std::string(media_type::k_notary_signature));
  auto idx = add_index(s, {{img, "linux/amd64"}});

  auto kids = successors(img, *s.get(img.digest));
  REQUIRE(kids.size() == 3);
  CHECK(kids[0].media_type == media_type::k_oci_config);
  CHECK(kids[1].digest == Digest::of("layer-a"));
  CHECK(kids[2].digest == Digest::of("layer-b"));

  auto sig_kids = successors(sig, *s.get(sig.digest));
  REQUIRE(sig_kids.size() == 2);
  for (const auto& k : sig_kids) CHECK(k.digest != img.digest);

  auto idx_kids = successors(idx, *s.get(idx.digest));
  REQUIRE(idx_kids.size() == 1);
  CHECK(idx_kids[0].digest == img.digest);
  REQUIRE(idx_kids[0].platform.has_value());
  CHECK(idx_kids[0].platform->str() == "linux/amd64");

  auto layer = desc_of("application/vnd.oci.image.layer.v1.tar", "layer-a");
  CHECK(successors(layer, "layer-a").empty());
}

TEST_CASE("manifest parse: referrer fields and effective artifact type")
{
  MemoryStore s;
  auto img = add_image(s, {"l"});
  auto sbom = add_image(s, {"{}"}, {}, img, "application/spdx+json", {{"k", "v"}});
  Manifest m = Manifest::parse(*s.get(sbom.digest), sbom.media_type, "sbom");
  REQUIRE(m.subject.has_value());
  CHECK(m.subject->digest == img.digest);
  CHECK(m.effective_artifact_type() == "application/spdx+json");
  auto rd = referrer_descriptor(sbom, m);
  CHECK(rd.artifact_type == "application/spdx+json");
  CHECK(rd.annotations.at("k") == "v");

  // Older notation form: no artifactType, config.mediaType is the signature type.
  std::string old = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.cncf.notary.signature","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]})";
  CHECK(Manifest::parse(old, std::string(media_type::k_oci_manifest), "old").effective_artifact_type() ==
        media_type::k_notary_signature);
}

TEST_CASE("manifest parse: malformed input is rejected with the location named")
{
  auto parse = [](const std::string& bytes, std::string mt = std::string(media_type::k_oci_manifest)) {
    return Manifest::parse(bytes, mt, "sha256:test");
  };
  CHECK_THROWS_WITH_AS(parse("not json"), doctest::Contains("sha256:test"), Error);
  CHECK_THROWS_AS(parse("[]"), Error);
  CHECK_THROWS_AS(parse(R"({"mediaType":"application/vnd.oci.image.manifest.v1+json"})"), Error);  // no config
  CHECK_THROWS_AS(parse(R"({"config":{"mediaType":"x","digest":"sha256:00","size":1}})"), Error);
  CHECK_THROWS_AS(parse(R"({"config":{"mediaType":"x","digest":"md5:d41d8cd98f00b204e9800998ecf8427e","size":1}})"), Error);
  CHECK_THROWS_AS(parse(R"({"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})"), Error);  // type lies
  std::string deep(200000, '[');
  CHECK_THROWS_WITH_AS(parse(deep), doctest::Contains("deeper"), Error);
  CHECK_THROWS_AS(parse(std::string(5 << 20, ' ')), Error);
  std::string neg = R"({"config":{"mediaType":"x","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":-1}})";
  CHECK_THROWS_AS(parse(neg), Error);
  // Docker schema 1 (signed or not), whatever the registry called it.
  std::string schema1 = R"({"schemaVersion":1,"name":"a","tag":"v1","fsLayers":[{"blobSum":"sha256:00"}]})";
  CHECK_THROWS_WITH_AS(parse(schema1, ""), doctest::Contains("unsupported manifest schemaVersion 1"), Error);
  CHECK_THROWS_WITH_AS(parse(R"({"schemaVersion":"2","config":{}})"), doctest::Contains("schemaVersion \"2\""), Error);
}

TEST_CASE("descriptor: unknown fields survive a round trip")
{
  auto j = nlohmann::json::parse(R"({"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"urls":["http://x"],"platform":{"os":"linux","architecture":"arm64","variant":"v8","os.features":["f"]}})");
  auto d = Descriptor::from_json(j);
  CHECK(d.platform->str() == "linux/arm64/v8");
  CHECK(d.to_json() == j);
  CHECK(Platform::parse("linux/arm64").matches(*d.platform));
  CHECK_FALSE(Platform::parse("linux/arm64/v7").matches(*d.platform));
  CHECK_THROWS_AS(Platform::parse("linux"), Error);
}

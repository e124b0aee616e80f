// Delta bundles (issue 16): the record a delta carries, the inventory it is made against, and
// what accounts for its left-out blobs when it is verified.
#include <doctest/doctest.h>

#include <ferry/delta.hpp>
#include <ferry/error.hpp>
#include <ferry/inventory.hpp>
#include <ferry/media_type.hpp>
#include <ferry/record.hpp>

#include <nlohmann/json.hpp>

using namespace ferry;

namespace {

Digest digest_of(const std::string& s) { return Digest::of(s); }

DeltaRecord sample_delta()
{
  DeltaRecord d;
  d.base_kind = "registry";
  d.base = digest_of("inventory");
  d.base_source = "registry.example:5000/ns";
  LeftOutBlob a{digest_of("a"), 10, {"ns/app"}};
  LeftOutBlob b{digest_of("b"), 20, {"ns/app", "ns/other"}};
  d.left_out = {a, b};
  std::sort(d.left_out.begin(), d.left_out.end(), [](const auto& x, const auto& y) { return x.digest < y.digest; });
  return d;
}

Inventory sample_inventory()
{
  Inventory inv;
  inv.kind = "registry";
  inv.source = "registry.example:5000/ns";
  auto& app = inv.repositories["ns/app"];
  app.tags["v1"] = digest_of("m1");
  app.manifests.insert(digest_of("m1"));
  app.blobs[digest_of("a")] = 10;
  app.blobs[digest_of("b")] = 20;
  auto& other = inv.repositories["ns/other"];
  other.blobs[digest_of("b")] = 20;
  other.blobs[digest_of("c")] = 30;
  return inv;
}

std::string error_of(const std::function<void()>& fn)
{
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

} // namespace

TEST_CASE("delta record: round trip, and anything else is refused naming the record")
{
  DeltaRecord d = sample_delta();
  std::string text = delta_record_json(d);
  DeltaRecord back = parse_delta_record(text, "r");
  CHECK(back.base_kind == d.base_kind);
  CHECK(back.base == d.base);
  CHECK(back.base_source == d.base_source);
  REQUIRE(back.left_out.size() == 2);
  CHECK(back.left_out_bytes() == 30);
  CHECK(back.find(digest_of("b"))->repositories == std::vector<std::string>{"ns/app", "ns/other"});
  CHECK(back.find(digest_of("zzz")) == nullptr);
  CHECK(delta_record_json(back) == text);  // canonical

  auto j = nlohmann::json::parse(text);
  auto refused = [&](nlohmann::json bad) {
    std::string e = error_of([&] { parse_delta_record(bad.dump(), "bundle.tar: record"); });
    CHECK_MESSAGE(e.rfind("bundle.tar: record", 0) == 0, bad.dump(), " -> ", e);
    return e;
  };
  {
    auto bad = j;
    bad["extra"] = 1;
    CHECK(refused(bad).find("extra") != std::string::npos);
  }
  {
    auto bad = j;
    std::swap(bad["leftOut"][0], bad["leftOut"][1]);
    refused(bad);  // unsorted
  }
  {
    auto bad = j;
    bad["leftOut"][1] = bad["leftOut"][0];
    refused(bad);  // repeated
  }
  {
    auto bad = j;
    bad["baseKind"] = "tape";
    refused(bad);
  }
  {
    auto bad = j;
    bad["base"] = "sha256:xyz";
    refused(bad);
  }
  {
    auto bad = j;
    bad["leftOut"][0]["size"] = -1;
    refused(bad);
  }
  CHECK(!error_of([] { parse_delta_record("[]", "r"); }).empty());
  CHECK(!error_of([] { parse_delta_record("{", "r"); }).empty());
  CHECK(!error_of([] { parse_delta_record(std::string(100000, '['), "r"); }).empty());
}

TEST_CASE("record artifact: an OCI 1.1 artifact with the empty config and one layer per part")
{
  BundleRecord r;
  r.delta = sample_delta();
  r.imageset = R"({"registries":[]})";
  RecordArtifact a = build_record_artifact(r);
  auto m = nlohmann::json::parse(a.manifest_bytes);
  CHECK(m["artifactType"] == std::string(k_artifact_type_record));
  CHECK(m["config"]["mediaType"] == std::string(media_type::k_oci_empty));
  REQUIRE(m["layers"].size() == 2);
  std::set<std::string> types;
  for (const auto& l : m["layers"]) types.insert(l["mediaType"].get<std::string>());
  CHECK(types == std::set<std::string>{std::string(k_media_type_imageset_record), std::string(k_media_type_delta_record)});
  CHECK(a.manifest.digest == Digest::of(a.manifest_bytes));
  CHECK(a.manifest.artifact_type == std::string(k_artifact_type_record));
  for (const auto& [desc, bytes] : a.blobs) {
    CHECK(desc.digest == Digest::of(bytes));
    CHECK(desc.size == bytes.size());
  }
}

TEST_CASE("inventory: canonical JSON round trip, a stable digest, strict parsing")
{
  Inventory inv = sample_inventory();
  std::string text = inv.to_json();
  Inventory back = Inventory::parse(text, "have.json");
  CHECK(back.to_json() == text);
  CHECK(back.digest() == inv.digest());
  CHECK(back.manifest_count() == 1);
  CHECK(back.tag_count() == 1);
  auto held = back.blobs();
  REQUIRE(held.size() == 3);
  CHECK(held.at(digest_of("b")).repositories == std::vector<std::string>{"ns/app", "ns/other"});
  CHECK(held.at(digest_of("c")).size == 30);

  auto j = nlohmann::json::parse(text);
  auto refused = [&](nlohmann::json bad) {
    std::string e = error_of([&] { Inventory::parse(bad.dump(), "have.json"); });
    CHECK_MESSAGE(e.rfind("have.json", 0) == 0, bad.dump(), " -> ", e);
  };
  {
    auto bad = j;
    bad["mediaType"] = "application/json";
    refused(bad);
  }
  {
    auto bad = j;
    bad["kind"] = "tape";
    refused(bad);
  }
  {
    auto bad = j;
    bad["repositories"]["ns/app"]["blobs"][digest_of("a").str()] = "ten";
    refused(bad);
  }
  {
    auto bad = j;
    bad["repositories"]["ns/app"]["tags"]["bad tag!"] = digest_of("m1").str();
    refused(bad);
  }
  {
    auto bad = j;
    bad["repositories"]["NS/Upper"] = nlohmann::json::object();
    refused(bad);
  }
  {
    auto bad = j;
    bad["repositories"]["ns/app"]["layers"] = nlohmann::json::array();
    refused(bad);
  }
  refused(nlohmann::json::array());
  CHECK(!error_of([] { Inventory::parse("not json", "have.json"); }).empty());
}

TEST_CASE("--base-inventory: each left-out blob must be listed with its size")
{
  DeltaRecord d = sample_delta();
  Inventory inv = sample_inventory();
  SUBCASE("all held: no problem, and the report names the base")
  {
    ProblemList problems;
    auto check = delta_base_inventories({{"have.json", inv}});
    std::string what = check(d, problems);
    CHECK(problems.empty());
    CHECK(what.find("have.json") != std::string::npos);
    // Not the inventory the delta was made against: said so.
    CHECK(what.find("not the inventory") != std::string::npos);
  }
  SUBCASE("the same inventory: no remark")
  {
    d.base = inv.digest();
    ProblemList problems;
    std::string what = delta_base_inventories({{"have.json", inv}})(d, problems);
    CHECK(problems.empty());
    CHECK(what.find("not the inventory") == std::string::npos);
  }
  SUBCASE("a blob missing and a blob of another size: one problem each, naming the digest")
  {
    inv.repositories["ns/app"].blobs.erase(digest_of("a"));
    inv.repositories["ns/app"].blobs[digest_of("b")] = 21;
    inv.repositories["ns/other"].blobs[digest_of("b")] = 21;
    ProblemList problems;
    delta_base_inventories({{"have.json", inv}})(d, problems);
    REQUIRE(problems.total == 2);
    for (const auto& p : problems.listed) CHECK(p.message.find("have.json") != std::string::npos);
    CHECK(problems.listed[0].message.find(d.left_out[0].digest.str()) != std::string::npos);
  }
  SUBCASE("two inventories: a blob in either one is held")
  {
    Inventory first = inv, second = inv;
    first.repositories["ns/app"].blobs.erase(digest_of("a"));
    second.repositories["ns/app"].blobs.erase(digest_of("b"));
    second.repositories["ns/other"].blobs.erase(digest_of("b"));
    ProblemList problems;
    delta_base_inventories({{"one.json", first}, {"two.json", second}})(d, problems);
    CHECK(problems.empty());
  }
}

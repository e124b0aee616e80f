#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/store/layout.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

using namespace ferry;
using namespace fixtures;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir()
  {
    std::random_device rd;
    path = fs::temp_directory_path() / ("ferry-unit-" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Lists a tar's entry names in order (libarchive, independent of ferry's reader).
std::vector<std::string> tar_names(const fs::path& p)
{
  std::vector<std::string> out;
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  REQUIRE(archive_read_open_filename(a, p.c_str(), 65536) == ARCHIVE_OK);
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) out.push_back(archive_entry_pathname(e));
  archive_read_free(a);
  return out;
}

struct Graph {
  MemoryStore store;
  Descriptor image, sig, index;
  std::string index_json;
  Graph()
  {
    image = add_image(store, {std::string(100000, 'x'), "small layer"});
    sig = add_image(store, {"jws"}, {}, image, std::string(media_type::k_notary_signature));
    index = add_index(store, {{image, "linux/amd64"}});
    nlohmann::json root = index.to_json_basic();
    root["annotations"] = {{"io.containerd.image.name", "reg.local/app:v1"}, {"org.opencontainers.image.ref.name", "v1"}};
    nlohmann::json idx = {{"schemaVersion", 2}, {"mediaType", media_type::k_oci_index},
                          {"manifests", {root, sig.to_json_basic()}}};
    index_json = idx.dump();
  }
  void write(LayoutWriter& w)
  {
    w.write_index(index_json);
    for (const auto& d : {index, image, sig}) {
      auto r = store.fetch(d);
      w.write_blob(d, *r);
    }
    for (const auto& d : store.all())
      if (!media_type::is_manifest(d.media_type)) {
        auto r = store.fetch(d);
        w.write_blob(d, *r);
      }
  }
};

} // namespace

TEST_CASE("layout: bundle format from the name")
{
  CHECK(format_from_path("a.tar") == BundleFormat::tar);
  CHECK(format_from_path("a.tar.zst") == BundleFormat::tar_zst);
  CHECK(format_from_path("a.tzst") == BundleFormat::tar_zst);
  CHECK(format_from_path("out/") == BundleFormat::dir);
  CHECK(format_from_path("bundle") == BundleFormat::dir);
  CHECK(parse_format("tar.zst") == BundleFormat::tar_zst);
  CHECK_THROWS_AS(parse_format("zip"), Error);
  CHECK(digest_from_blob_path("blobs/sha256/" + std::string(64, 'a')).has_value());
  CHECK_FALSE(digest_from_blob_path("blobs/sha256/../x").has_value());
  CHECK_FALSE(digest_from_blob_path("blobs/md5/" + std::string(32, 'a')).has_value());
}

TEST_CASE("layout: write and read back tar, tar.zst and directory")
{
  for (const char* name : {"b.tar", "b.tar.zst", "b"}) {
    CAPTURE(name);
    TempDir tmp;
    Graph g;
    fs::path out = tmp.path / name;
    {
      auto w = LayoutWriter::create(out, format_from_path(out));
      g.write(*w);
      CHECK_FALSE(fs::exists(out));
      w->commit();
    }
    CHECK(fs::exists(out));
    CHECK_FALSE(fs::exists(out.string() + ".partial"));
    if (format_from_path(out) != BundleFormat::dir) {
      auto names = tar_names(out);
      REQUIRE(names.size() >= 5);
      CHECK(names[0] == "oci-layout");
      CHECK(names[1] == "index.json");
      CHECK(names[2] == blob_path(g.index.digest));
    }
    auto r = LayoutReader::open(out);
    CHECK(r->index_json() == g.index_json);
    REQUIRE(r->index_entries().size() == 2);
    CHECK(r->metadata().get(g.image.digest).has_value());
    CHECK(r->metadata().get(g.sig.digest).has_value());
    CHECK(r->resolve("v1").digest == g.index.digest);
    CHECK(r->resolve("reg.local/app:v1").digest == g.index.digest);
    auto refs = r->referrers(g.image);
    REQUIRE(refs.size() == 1);
    CHECK(refs[0].digest == g.sig.digest);
    CHECK(refs[0].artifact_type == media_type::k_notary_signature);

    std::set<Digest> wanted;
    for (const auto& d : g.store.all()) wanted.insert(d.digest);
    std::size_t seen = 0;
    r->for_each_blob(wanted, [&](const Descriptor& d, Reader& rd) {
      CHECK(read_all(rd, 1 << 20) == *g.store.get(d.digest));
      ++seen;
    });
    CHECK(seen == wanted.size());
    auto layer = desc_of("x", std::string(100000, 'x'));
    CHECK(r->exists(layer));
    CHECK(read_all(*r->fetch(layer), 1 << 20) == std::string(100000, 'x'));
  }
}

TEST_CASE("layout: an uncommitted writer leaves nothing; a lying blob is rejected")
{
  TempDir tmp;
  for (const char* name : {"x.tar", "x.tar.zst", "x"}) {
    fs::path out = tmp.path / name;
    {
      auto w = LayoutWriter::create(out, format_from_path(out));
      w->write_index("{}");
      StringReader bad("not the content");
      auto d = desc_of("a/b", "the content");
      CHECK_THROWS_AS(w->write_blob(d, bad), Error);
    }
    CHECK_FALSE(fs::exists(out));
    CHECK_FALSE(fs::exists(out.string() + ".partial"));
  }
  CHECK(fs::is_empty(tmp.path));
}

TEST_CASE("layout: tar written in another tool's order is read in several passes")
{
  TempDir tmp;
  Graph g;
  fs::path out = tmp.path / "foreign.tar";
  // Write blobs before index.json with libarchive directly, children before parents.
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  REQUIRE(archive_write_open_filename(a, out.c_str()) == ARCHIVE_OK);
  auto add = [&](const std::string& name, const std::string& bytes) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(bytes.size()));
    archive_write_header(a, e);
    archive_write_data(a, bytes.data(), bytes.size());
    archive_entry_free(e);
  };
  for (const auto& d : g.store.all()) add(blob_path(d.digest), *g.store.get(d.digest));
  add("index.json", g.index_json);
  add("oci-layout", std::string(k_oci_layout_file));
  archive_write_close(a);
  archive_write_free(a);

  auto r = LayoutReader::open(out);
  CHECK(r->metadata().get(g.image.digest).has_value());
  CHECK(r->referrers(g.image).size() == 1);
}

TEST_CASE("layout: unsafe tar entries are rejected with their name")
{
  TempDir tmp;
  fs::path out = tmp.path / "evil.tar";
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  REQUIRE(archive_write_open_filename(a, out.c_str()) == ARCHIVE_OK);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, "../escape");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_size(e, 1);
  archive_write_header(a, e);
  archive_write_data(a, "x", 1);
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  CHECK_THROWS_WITH_AS(LayoutReader::open(out), doctest::Contains("../escape"), Error);
  CHECK_THROWS_WITH_AS(LayoutReader::open(tmp.path / "missing.tar"), doctest::Contains("missing.tar"), Error);
}

TEST_CASE("layout: an uncompressed tar is read in place, in any tar dialect; unsafe entries still refused")
{
  for (int format : {ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FORMAT_TAR_GNUTAR, ARCHIVE_FORMAT_TAR_USTAR}) {
    CAPTURE(format);
    TempDir tmp;
    Graph g;
    fs::path out = tmp.path / "dialect.tar";
    archive* a = archive_write_new();
    archive_write_set_format(a, format);
    REQUIRE(archive_write_open_filename(a, out.c_str()) == ARCHIVE_OK);
    auto add = [&](const std::string& name, const std::string& bytes, int type = AE_IFREG) {
      archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, name.c_str());
      archive_entry_set_filetype(e, static_cast<unsigned>(type));
      archive_entry_set_perm(e, 0644);
      archive_entry_set_size(e, static_cast<la_int64_t>(bytes.size()));
      archive_write_header(a, e);
      archive_write_data(a, bytes.data(), bytes.size());
      archive_entry_free(e);
    };
    add("./oci-layout", std::string(k_oci_layout_file));
    add("./index.json", g.index_json);
    add("blobs/", "", AE_IFDIR);
    // A long name: pax records or a GNU long-name entry (ustar splits it into prefix + name).
    add("notes/" + std::string(120, 'n') + "/readme", "not a blob");
    for (const auto& d : g.store.all()) add("./" + blob_path(d.digest), *g.store.get(d.digest));
    archive_write_close(a);
    archive_write_free(a);

    auto r = LayoutReader::open(out);
    CHECK(r->random_access());
    for (const auto& d : g.store.all()) {
      if (media_type::is_manifest(d.media_type)) continue;
      auto blob = r->fetch(d);
      CHECK(read_all(*blob, 1 << 20) == *g.store.get(d.digest));
    }
    Descriptor absent = g.image;
    absent.digest = Digest::of("absent");
    absent.media_type = "application/octet-stream";
    CHECK_THROWS_WITH_AS(r->fetch(absent), doctest::Contains("is missing"), Error);
  }
  // A symbolic link after the head: the in-place index refuses the bundle too.
  TempDir tmp;
  Graph g;
  fs::path out = tmp.path / "link.tar";
  {
    auto w = LayoutWriter::create(out, BundleFormat::tar);
    g.write(*w);
    w->commit();
  }
  std::string bytes;
  {
    std::ifstream in(out, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  bytes.resize(bytes.size() - 1024);  // drop the end-of-archive blocks, append a symlink
  std::string h(512, '\0');
  std::memcpy(&h[0], "blobs/link", 10);
  std::memcpy(&h[100], "0000644", 7);
  std::memcpy(&h[124], "00000000000", 11);
  std::memcpy(&h[136], "00000000000", 11);
  h[156] = '2';
  std::memcpy(&h[157], "/etc/passwd", 11);
  std::memcpy(&h[257], "ustar", 6);
  std::memcpy(&h[263], "00", 2);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(&h[148], 8, "%06o", sum);
  bytes += h + std::string(1024, '\0');
  {
    std::ofstream o(out, std::ios::binary | std::ios::trunc);
    o << bytes;
  }
  auto r = LayoutReader::open(out);
  Descriptor layer;
  for (const auto& d : g.store.all())
    if (!media_type::is_manifest(d.media_type)) layer = d;
  CHECK_THROWS_WITH_AS(r->fetch(layer), doctest::Contains("blobs/link"), Error);
}

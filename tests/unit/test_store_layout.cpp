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
#include <sys/stat.h>

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
    // A long name (a sha512 blob path is 141 bytes): pax records or a GNU long-name entry
    // (ustar cannot hold a 128-byte last component).
    if (format != ARCHIVE_FORMAT_TAR_USTAR) add(blob_path(Digest::of("extra", "sha512")), "extra");
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
  CHECK_THROWS_WITH_AS(LayoutReader::open(out), doctest::Contains("blobs/link"), Error);
}

namespace {

// A tar of `entries` (name, bytes; a name ending in '/' is a directory) written by libarchive.
void write_tar(const fs::path& out, const std::vector<std::pair<std::string, std::string>>& entries, bool zstd = false)
{
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (zstd) archive_write_add_filter_zstd(a);
  REQUIRE(archive_write_open_filename(a, out.c_str()) == ARCHIVE_OK);
  for (const auto& [name, bytes] : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, name.back() == '/' ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(bytes.size()));
    archive_write_header(a, e);
    archive_write_data(a, bytes.data(), bytes.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

} // namespace

TEST_CASE("layout: entry rules (design §8) for every reader: only the layout's files, each once, whole")
{
  Graph g;
  std::vector<std::pair<std::string, std::string>> good{{"oci-layout", std::string(k_oci_layout_file)},
                                                         {"index.json", g.index_json},
                                                         {"blobs/", ""},
                                                         {"blobs/sha256/", ""}};
  for (const auto& d : g.store.all()) good.emplace_back(blob_path(d.digest), *g.store.get(d.digest));
  const std::string layer = blob_path(g.store.all().back().digest);
  struct Case {
    const char* what;
    std::vector<std::pair<std::string, std::string>> extra;
    const char* needle;
  };
  const std::vector<Case> cases{
      {"a file outside the layout", {{"README", "hello"}}, "unexpected entry \"README\""},
      {"an unknown algorithm", {{"blobs/md5/0123456789abcdef0123456789abcdef", "x"}}, "blobs/md5/"},
      {"a malformed digest", {{"blobs/sha256/ABC", "x"}}, "blobs/sha256/ABC"},
      {"a directory outside the layout", {{"etc/", ""}}, "unexpected directory \"etc\""},
      {"a blob twice", {{layer, "other bytes"}}, "duplicate entry"},
      {"index.json twice", {{"index.json", "{}"}}, "duplicate entry \"index.json\""},
  };
  for (const auto& c : cases)
    for (bool zstd : {false, true}) {
      CAPTURE(c.what);
      CAPTURE(zstd);
      TempDir tmp;
      fs::path out = tmp.path / (zstd ? "b.tar.zst" : "b.tar");
      auto entries = good;
      entries.insert(entries.end(), c.extra.begin(), c.extra.end());
      write_tar(out, entries, zstd);
      // A plain tar is checked on open; a .tar.zst by check_structure (one pass).
      auto check = [&] { LayoutReader::open(out)->check_structure(); };
      CHECK_THROWS_WITH_AS(check(), doctest::Contains(c.needle), Error);
    }
  SUBCASE("the good layout passes; a cut archive does not")
  {
    for (bool zstd : {false, true}) {
      TempDir tmp;
      fs::path out = tmp.path / (zstd ? "b.tar.zst" : "b.tar");
      write_tar(out, good, zstd);
      CHECK_NOTHROW(LayoutReader::open(out)->check_structure());
    }
    TempDir tmp;
    fs::path out = tmp.path / "b.tar";
    write_tar(out, good);
    fs::resize_file(out, (fs::file_size(out) / 2) | 7);  // mid-entry, never on a block boundary
    CHECK_THROWS_WITH_AS(LayoutReader::open(out), doctest::Contains("truncated tar"), Error);
  }
}

TEST_CASE("layout: a directory bundle refuses links, FIFOs and stray files by name, without blocking")
{
  Graph g;
  auto make = [&](const fs::path& dir) {
    auto w = LayoutWriter::create(dir, BundleFormat::dir);
    g.write(*w);
    w->commit();
  };
  Descriptor layer;
  for (const auto& d : g.store.all())
    if (!media_type::is_manifest(d.media_type)) layer = d;
  TempDir tmp;
  {
    fs::path dir = tmp.path / "ok";
    make(dir);
    CHECK_NOTHROW(LayoutReader::open(dir)->check_structure());
  }
  {
    fs::path dir = tmp.path / "symlink";
    make(dir);
    fs::path blob = dir / blob_path(layer.digest);
    fs::rename(blob, tmp.path / "elsewhere");
    fs::create_symlink(tmp.path / "elsewhere", blob);
    CHECK_THROWS_WITH_AS(LayoutReader::open(dir)->check_structure(), doctest::Contains((layer.digest.hex() + "\" is a symbolic link").c_str()), Error);
    CHECK_THROWS_WITH_AS(LayoutReader::open(dir)->fetch(layer), doctest::Contains("symbolic link"), Error);
  }
  {
    fs::path dir = tmp.path / "fifo";
    make(dir);
    fs::path blob = dir / blob_path(layer.digest);
    fs::remove(blob);
    REQUIRE(::mkfifo(blob.c_str(), 0644) == 0);
    CHECK_THROWS_WITH_AS(LayoutReader::open(dir)->check_structure(), doctest::Contains("is not a regular file"), Error);
    // Opening it for reading would block until a writer came: FileReader refuses it first.
    CHECK_THROWS_WITH_AS(LayoutReader::open(dir)->fetch(layer), doctest::Contains("not a regular file"), Error);
  }
  {
    fs::path dir = tmp.path / "stray";
    make(dir);
    std::ofstream(dir / "blobs" / "sha256" / "notes.txt") << "x";
    CHECK_THROWS_WITH_AS(LayoutReader::open(dir)->check_structure(), doctest::Contains("blobs/sha256/notes.txt"), Error);
  }
}

// The bundle reader (design §8): one entry-path rule, one archive codec, one scanner, for
// directories, plain tars and zstd-compressed tars.
#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/store/bundle_writer.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/store/layout_path.hpp>
#include <ferry/store/zstd.hpp>
#include <ferry/util/file.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <zstd.h>

using namespace ferry;
using namespace fixtures;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p)
{
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void spit(const fs::path& p, const std::string& bytes)
{
  std::ofstream o(p, std::ios::binary | std::ios::trunc);
  o << bytes;
}

struct Sample {
  MemoryStore store;
  Descriptor image, sig, index;
  std::string index_json;
  std::size_t layer_size;
  explicit Sample(std::size_t layer_size = 100000) : layer_size(layer_size)
  {
    image = add_image(store, {std::string(layer_size, 'x'), "small layer"});
    sig = add_image(store, {"jws"}, {}, image, std::string(media_type::k_notary_signature));
    index = add_index(store, {{image, "linux/amd64"}});
    nlohmann::json root = index.to_json_basic();
    root["annotations"] = {{"io.containerd.image.name", "reg.local/app:v1"}, {"org.opencontainers.image.ref.name", "v1"}};
    nlohmann::json idx = {{"schemaVersion", 2}, {"mediaType", media_type::k_oci_index},
                          {"manifests", {root, sig.to_json_basic()}}};
    index_json = idx.dump();
  }
  /// Written through the one bundle writer, in save's order (manifests, then the rest).
  void write(const fs::path& out, BundleFormat format) const
  {
    std::vector<BundleItem> items;
    for (const auto& d : {index, image, sig}) items.push_back({d, *store.get(d.digest)});
    for (const auto& d : store.all())
      if (!media_type::is_manifest(d.media_type)) items.push_back({d, *store.get(d.digest)});
    auto w = BundleWriter::create(out, format, index_json, std::move(items));
    w->commit();
  }
  void write(const fs::path& out) const { write(out, format_from_path(out)); }
  Descriptor layer() const
  {
    Descriptor out;
    for (const auto& d : store.all())
      if (!media_type::is_manifest(d.media_type) && d.size == layer_size) out = d;
    return out;
  }
};

LayoutReader::Options at(ReadDepth depth, std::uint64_t max_entries = 500'000)
{
  LayoutReader::Options o;
  o.depth = depth;
  o.limits.max_entries = max_entries;
  return o;
}

// A tar of `entries` (name, bytes; a name ending in '/' is a directory) written by
// libarchive in `format`.
void write_tar(const fs::path& out, const std::vector<std::pair<std::string, std::string>>& entries, bool zstd = false,
               int format = ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, bool gzip = false)
{
  archive* a = archive_write_new();
  archive_write_set_format(a, format);
  if (zstd) archive_write_add_filter_zstd(a);
  if (gzip) archive_write_add_filter_gzip(a);
  REQUIRE(archive_write_open_filename(a, out.c_str()) == ARCHIVE_OK);
  for (const auto& [name, bytes] : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    bool dir = !name.empty() && name.back() == '/';
    archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(e, dir ? 0755 : 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(dir ? 0 : bytes.size()));
    archive_write_header(a, e);
    if (!dir) archive_write_data(a, bytes.data(), bytes.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}

std::vector<std::pair<std::string, std::string>> layout_entries(const Sample& g, const std::string& prefix = "")
{
  std::vector<std::pair<std::string, std::string>> out{{prefix + "oci-layout", std::string(k_oci_layout_file)},
                                                        {prefix + "index.json", g.index_json},
                                                        {prefix + "blobs/", ""},
                                                        {prefix + "blobs/sha256/", ""}};
  for (const auto& d : g.store.all()) out.emplace_back(prefix + blob_path(d.digest), *g.store.get(d.digest));
  return out;
}

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
  // Issue 14: gzip-compressed tars, and output names ferry does not write.
  CHECK(format_from_path("a.tar.gz") == BundleFormat::tar_gz);
  CHECK(format_from_path("a.tgz") == BundleFormat::tar_gz);
  CHECK(format_from_path("A.TGZ") == BundleFormat::tar_gz);
  CHECK(parse_format("tar.gz") == BundleFormat::tar_gz);
  CHECK(parse_format("tgz") == BundleFormat::tar_gz);
  CHECK(std::string(format_name(BundleFormat::tar_gz)) == "tar.gz");
  CHECK(format_for_output("a.tgz") == BundleFormat::tar_gz);
  CHECK(format_for_output("bundle") == BundleFormat::dir);
  CHECK(format_for_output("bundle.v1") == BundleFormat::dir);
  for (const char* name : {"a.zip", "a.tar.bz2", "a.tar.xz", "a.TXZ", "a.gz", "a.zst"}) {
    CAPTURE(name);
    CHECK_THROWS_WITH_AS(format_for_output(name), doctest::Contains(".tar.gz (.tgz)"), Error);
  }
  CHECK(digest_from_blob_path("blobs/sha256/" + std::string(64, 'a')).has_value());
  CHECK_FALSE(digest_from_blob_path("blobs/sha256/../x").has_value());
  CHECK_FALSE(digest_from_blob_path("blobs/md5/" + std::string(32, 'a')).has_value());
}

TEST_CASE("layout_path: the one canonical name of an entry")
{
  const std::string hex(64, 'a');
  auto role = [](const char* raw, EntryType t) { return layout_path(raw, t, "b.tar").role; };
  CHECK(role("index.json", EntryType::file) == LayoutPath::Role::index_json);
  CHECK(role("./index.json", EntryType::file) == LayoutPath::Role::index_json);
  CHECK(role("oci-layout", EntryType::file) == LayoutPath::Role::oci_layout);
  // Other tools' files beside the layout (ctr export, docker save): ignored, not refused.
  CHECK(role("manifest.json", EntryType::file) == LayoutPath::Role::extra);
  CHECK(role("./repositories", EntryType::file) == LayoutPath::Role::extra);
  CHECK(role(std::string(255, 'n').c_str(), EntryType::file) == LayoutPath::Role::extra);
  CHECK(role("./", EntryType::directory) == LayoutPath::Role::ignored);
  CHECK(role(".", EntryType::directory) == LayoutPath::Role::ignored);
  CHECK(role("./blobs/", EntryType::directory) == LayoutPath::Role::directory);
  CHECK(role("blobs/sha256", EntryType::directory) == LayoutPath::Role::directory);
  auto blob = layout_path("./blobs/sha256/" + hex, EntryType::file, "b.tar");
  CHECK(blob.role == LayoutPath::Role::blob);
  CHECK(blob.path == "blobs/sha256/" + hex);
  CHECK(blob.digest->str() == "sha256:" + hex);
  // Names that are not canonical, and what a layout must not hold, are refused by name.
  struct Bad {
    std::string raw;
    EntryType type;
    const char* needle;
  };
  const std::vector<Bad> bad{
      {"", EntryType::file, "unsafe entry name \"\""},
      {"/index.json", EntryType::file, "an absolute path"},
      {"../index.json", EntryType::file, "\"..\" in the path"},
      {"blobs/../index.json", EntryType::file, "\"..\" in the path"},
      {"././index.json", EntryType::file, "\".\" in the path"},
      {"blobs//sha256/" + hex, EntryType::file, "an empty path segment"},
      {"blobs/sha256/" + hex + "/", EntryType::file, "an empty path segment"},
      {"index.json\x1b[2J", EntryType::file, "a control character"},
      {std::string("index.json\0x", 12), EntryType::file, "a control character"},
      {".", EntryType::file, "unsafe entry name"},
      {"blobs", EntryType::file, "\"blobs\" is a regular file, not a directory"},
      {"etc/README", EntryType::file, "unexpected entry \"etc/README\""},
      {"blobs/manifest.json", EntryType::file, "unexpected entry \"blobs/manifest.json\""},
      {std::string(256, 'n'), EntryType::file, "unexpected entry"},
      {"blobs\\sha256\\abc", EntryType::file, "unexpected entry"},
      {"INDEX.JSON", EntryType::file, "unexpected entry \"INDEX.JSON\""},
      {"./Blobs", EntryType::file, "unexpected entry"},
      {"manifest.json", EntryType::symlink, "\"manifest.json\" is a symbolic link"},
      {"manifest.json", EntryType::other, "is not a regular file"},
      {"blobs/md5/" + std::string(32, 'a'), EntryType::file, "unexpected entry"},
      {"blobs/sha256/ABC", EntryType::file, "unexpected entry"},
      {"etc/", EntryType::directory, "unexpected directory \"etc/\""},
      {"index.json/", EntryType::directory, "is a directory"},
      {"blobs/link", EntryType::symlink, "\"blobs/link\" is a symbolic link"},
      {"blobs/sha256/" + hex, EntryType::other, "is not a regular file"},
  };
  for (const auto& b : bad) {
    CAPTURE(b.raw);
    CHECK_THROWS_WITH_AS(layout_path(b.raw, b.type, "b.tar"), doctest::Contains(b.needle), Error);
  }
}

TEST_CASE("layout: write and read back tar, tar.zst and directory, at every depth")
{
  for (const char* name : {"b.tar", "b.tar.zst", "b"}) {
    CAPTURE(name);
    TempDir tmp;
    Sample g;
    fs::path out = tmp.path() / name;
    g.write(out);
    if (format_from_path(out) != BundleFormat::dir) {
      auto names = fixtures::tar_entry_names(out);
      REQUIRE(names.size() >= 5);
      CHECK(names[0] == "oci-layout");
      CHECK(names[1] == "index.json");
      CHECK(names[2] == blob_path(g.index.digest));
    }
    for (auto depth : {ReadDepth::head, ReadDepth::structure, ReadDepth::verify}) {
      auto r = LayoutReader::open(out, format_from_path(out), at(depth));
      CHECK(r->index_json() == g.index_json);
      CHECK(r->index_digest() == Digest::of(g.index_json));
      REQUIRE(r->index_entries().size() == 2);
      CHECK(r->metadata().get(g.image.digest).has_value());
      CHECK(r->metadata().get(g.sig.digest).has_value());
      CHECK(r->resolve("v1").digest == g.index.digest);
      CHECK(r->resolve("reg.local/app:v1").digest == g.index.digest);
      auto refs = r->referrers(g.image);
      REQUIRE(refs.size() == 1);
      CHECK(refs[0].digest == g.sig.digest);
      CHECK(refs[0].artifact_type == media_type::k_notary_signature);
      CHECK(r->problems().empty());
      if (depth == ReadDepth::verify) {
        for (const auto& [d, entry] : r->blobs()) CHECK((entry.hashed && entry.intact));
        // The signature's envelope is kept for the verifier.
        Manifest sig = Manifest::parse(*g.store.get(g.sig.digest), g.sig.media_type, "sig");
        REQUIRE(r->kept(sig.layers[0].digest));
        CHECK(*r->kept(sig.layers[0].digest) == "jws");
      }
      if (depth == ReadDepth::head && r->format() == BundleFormat::tar_zst) {
        CHECK(r->blobs().size() < g.store.all().size());  // only the head was read
        continue;
      }
      CHECK(r->blobs().size() == g.store.all().size());
      std::vector<Descriptor> wanted = g.store.all();
      std::size_t seen = 0;
      r->for_each_blob(wanted, [&](const Descriptor& d, Reader& rd) {
        CHECK(read_all(rd, 1 << 20) == *g.store.get(d.digest));
        ++seen;
      });
      CHECK(seen == wanted.size());
      auto layer = g.layer();
      CHECK(r->exists(layer));
      CHECK(read_all(*r->fetch(layer), 1 << 20) == std::string(100000, 'x'));
    }
  }
}

TEST_CASE("layout: tar written in another tool's order is read, also when compressed")
{
  for (bool zstd : {false, true}) {
    CAPTURE(zstd);
    TempDir tmp;
    Sample g;
    fs::path out = tmp.path() / (zstd ? "foreign.tar.zst" : "foreign.tar");
    // Blobs before index.json, children before parents, oci-layout last.
    std::vector<std::pair<std::string, std::string>> entries;
    for (const auto& d : g.store.all()) entries.emplace_back(blob_path(d.digest), *g.store.get(d.digest));
    entries.emplace_back("index.json", g.index_json);
    entries.emplace_back("oci-layout", std::string(k_oci_layout_file));
    write_tar(out, entries, zstd);
    for (auto depth : {ReadDepth::head, ReadDepth::structure, ReadDepth::verify}) {
      auto r = LayoutReader::open(out, format_from_path(out), at(depth));
      CHECK(r->metadata().get(g.image.digest).has_value());
      CHECK(r->referrers(g.image).size() == 1);
    }
  }
}

TEST_CASE("layout: unsafe tar entries are rejected with their name; a missing bundle is named")
{
  TempDir tmp;
  fs::path out = tmp.path() / "evil.tar";
  write_tar(out, {{"../escape", "x"}});
  CHECK_THROWS_WITH_AS(LayoutReader::open(out), doctest::Contains("../escape"), Error);
  CHECK_THROWS_WITH_AS(LayoutReader::open(tmp.path() / "missing.tar"), doctest::Contains("missing.tar"), Error);
  CHECK_THROWS_WITH_AS(LayoutReader::open(tmp.path() / "missing"), doctest::Contains("no such bundle directory"), Error);
}

TEST_CASE("layout: a plain tar is read in place at the offsets of its one pass, in every tar dialect")
{
  for (int format : {ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, ARCHIVE_FORMAT_TAR_GNUTAR, ARCHIVE_FORMAT_TAR_USTAR}) {
    CAPTURE(format);
    TempDir tmp;
    Sample g;
    fs::path out = tmp.path() / "dialect.tar";
    auto entries = layout_entries(g, "./");
    entries.insert(entries.begin(), {"./", ""});  // as `tar -C layout -cf x.tar .` writes it
    // A long name (a sha512 blob path is 141 bytes): pax records or a GNU long-name entry
    // (ustar cannot hold a 128-byte last component).
    if (format != ARCHIVE_FORMAT_TAR_USTAR) {
      entries.emplace_back("blobs/sha512/", "");
      entries.emplace_back(blob_path(Digest::of("extra", "sha512")), "extra");
    }
    write_tar(out, entries, false, format);
    auto r = LayoutReader::open(out);
    CHECK(r->random_access());
    for (const auto& d : g.store.all()) {
      auto blob = r->fetch(d);
      CHECK(read_all(*blob, 1 << 20) == *g.store.get(d.digest));
    }
    if (format != ARCHIVE_FORMAT_TAR_USTAR) {
      auto extra = desc_of("x", "extra");
      extra.digest = Digest::of("extra", "sha512");
      CHECK(read_all(*r->fetch(extra), 100) == "extra");
    }
    Descriptor absent = g.image;
    absent.digest = Digest::of("absent");
    absent.media_type = "application/octet-stream";
    CHECK_THROWS_WITH_AS(r->fetch(absent), doctest::Contains("is missing"), Error);
  }
}

TEST_CASE("layout: a symbolic link after the head refuses the bundle at every depth")
{
  TempDir tmp;
  Sample g;
  fs::path out = tmp.path() / "link.tar";
  g.write(out);
  std::string bytes = slurp(out);
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
  spit(out, bytes + h + std::string(1024, '\0'));
  for (auto depth : {ReadDepth::head, ReadDepth::structure, ReadDepth::verify})
    CHECK_THROWS_WITH_AS(LayoutReader::open(out, BundleFormat::tar, at(depth)), doctest::Contains("blobs/link"), Error);
}

TEST_CASE("layout: entry rules (design §8) for every reader: only the layout's files, each once, whole")
{
  Sample g;
  auto good = layout_entries(g);
  const std::string layer = blob_path(g.layer().digest);
  struct Case {
    const char* what;
    std::vector<std::pair<std::string, std::string>> extra;
    const char* needle;
  };
  const std::vector<Case> cases{
      {"a file in a directory outside the layout", {{"etc/README", "hello"}}, "unexpected entry \"etc/README\""},
      {"another tool's file twice", {{"manifest.json", "[]"}, {"./manifest.json", "[]"}}, "duplicate entry \"./manifest.json\""},
      {"an unknown algorithm", {{"blobs/md5/0123456789abcdef0123456789abcdef", "x"}}, "blobs/md5/"},
      {"a malformed digest", {{"blobs/sha256/ABC", "x"}}, "blobs/sha256/ABC"},
      {"a directory outside the layout", {{"etc/", ""}}, "unexpected directory \"etc/\""},
      {"a blob twice", {{layer, "other bytes"}}, "duplicate entry"},
      {"a blob twice with the same bytes", {{layer, std::string(100000, 'x')}}, "duplicate entry"},
      {"a blob twice, once as ./", {{"./" + layer, std::string(100000, 'x')}}, "duplicate entry \"./blobs/sha256/"},
      {"index.json twice", {{"index.json", "{}"}}, "duplicate entry \"index.json\""},
      {"index.json twice, once as ./", {{"./index.json", "{}"}}, "duplicate entry \"./index.json\" (index.json)"},
      {"oci-layout twice", {{"oci-layout", std::string(k_oci_layout_file)}}, "duplicate entry \"oci-layout\""},
      {"a directory twice", {{"./blobs/", ""}}, "duplicate entry \"./blobs/\""},
      {"an empty segment", {{"blobs//sha256/" + std::string(64, 'b'), "x"}}, "an empty path segment"},
      {"a control character", {{"index.json\r", "x"}}, "a control character"},
  };
  for (const auto& c : cases)
    for (bool zstd : {false, true}) {
      CAPTURE(c.what);
      CAPTURE(zstd);
      TempDir tmp;
      fs::path out = tmp.path() / (zstd ? "b.tar.zst" : "b.tar");
      auto entries = good;
      entries.insert(entries.end(), c.extra.begin(), c.extra.end());
      write_tar(out, entries, zstd);
      for (auto depth : {ReadDepth::structure, ReadDepth::verify})
        CHECK_THROWS_WITH_AS(LayoutReader::open(out, format_from_path(out), at(depth)), doctest::Contains(c.needle), Error);
    }
  SUBCASE("other tools' files beside the layout are ignored, listed, never read as blobs")
  {
    for (bool zstd : {false, true}) {
      TempDir tmp;
      fs::path out = tmp.path() / (zstd ? "b.tar.zst" : "b.tar");
      auto entries = good;
      entries.insert(entries.begin() + 2, {"manifest.json", "[{\"Config\":\"blobs/sha256/x\"}]"});
      entries.push_back({"./repositories", "{}"});
      write_tar(out, entries, zstd);
      for (auto depth : {ReadDepth::structure, ReadDepth::verify}) {
        auto r = LayoutReader::open(out, format_from_path(out), at(depth));
        CHECK(r->ignored_entries() == std::vector<std::string>{"manifest.json", "repositories"});
        CHECK(r->problems().empty());
        CHECK(r->index_json() == g.index_json);
      }
    }
  }
  SUBCASE("the good layout passes; a cut archive and data after its end do not")
  {
    for (bool zstd : {false, true}) {
      TempDir tmp;
      fs::path out = tmp.path() / (zstd ? "b.tar.zst" : "b.tar");
      write_tar(out, good, zstd);
      CHECK_NOTHROW(LayoutReader::open(out));
    }
    TempDir tmp;
    fs::path out = tmp.path() / "b.tar";
    write_tar(out, good);
    std::string whole = slurp(out);
    fs::resize_file(out, (fs::file_size(out) / 2) | 7);  // mid-entry, never on a block boundary
    CHECK_THROWS_WITH_AS(LayoutReader::open(out), doctest::Contains("runcated"), Error);
    // Something hidden after the end-of-archive marker (what `tar -i` would read).
    std::string hidden = whole;
    std::size_t end = hidden.find_last_not_of('\0') + 1;
    hidden.replace(hidden.size() - 512, 5, "hello");
    REQUIRE(hidden.size() - 512 > end);
    spit(out, hidden);
    CHECK_THROWS_WITH_AS(LayoutReader::open(out), doctest::Contains("data after the end of the archive"), Error);
  }
}

TEST_CASE("layout: a directory bundle refuses links, FIFOs and stray files by name, without blocking")
{
  Sample g;
  Descriptor layer = g.layer();
  TempDir tmp;
  {
    fs::path dir = tmp.path() / "ok";
    g.write(dir);
    CHECK_NOTHROW(LayoutReader::open(dir));
  }
  {
    fs::path dir = tmp.path() / "symlink";
    g.write(dir);
    fs::path blob = dir / blob_path(layer.digest);
    fs::rename(blob, tmp.path() / "elsewhere");
    fs::create_symlink(tmp.path() / "elsewhere", blob);
    CHECK_THROWS_WITH_AS(LayoutReader::open(dir), doctest::Contains((layer.digest.hex() + "\" is a symbolic link").c_str()), Error);
  }
  {
    fs::path dir = tmp.path() / "blobs-link";
    g.write(dir);
    fs::rename(dir / "blobs", tmp.path() / "other-blobs");
    fs::create_directory_symlink(tmp.path() / "other-blobs", dir / "blobs");
    CHECK_THROWS_WITH_AS(LayoutReader::open(dir), doctest::Contains("\"blobs\" is a symbolic link"), Error);
  }
  {
    fs::path dir = tmp.path() / "fifo";
    g.write(dir);
    fs::path blob = dir / blob_path(layer.digest);
    fs::remove(blob);
    REQUIRE(::mkfifo(blob.c_str(), 0644) == 0);
    CHECK_THROWS_WITH_AS(LayoutReader::open(dir), doctest::Contains("is not a regular file"), Error);
  }
  {
    // Other tools' files at the top level are ignored (never opened), a directory is not.
    fs::path dir = tmp.path() / "extra";
    g.write(dir);
    std::ofstream(dir / "manifest.json") << "[]";
    auto r = LayoutReader::open(dir, BundleFormat::dir, at(ReadDepth::verify));
    CHECK(r->ignored_entries() == std::vector<std::string>{"manifest.json"});
    CHECK(r->problems().empty());
    fs::create_symlink("index.json", dir / "repositories");
    CHECK_THROWS_WITH_AS(LayoutReader::open(dir), doctest::Contains("\"repositories\" is a symbolic link"), Error);
    fs::remove(dir / "repositories");
    fs::create_directory(dir / "extra");
    CHECK_THROWS_WITH_AS(LayoutReader::open(dir), doctest::Contains("unexpected directory \"extra\""), Error);
  }
  {
    fs::path dir = tmp.path() / "stray";
    g.write(dir);
    std::ofstream(dir / "blobs" / "sha256" / "notes.txt") << "x";
    CHECK_THROWS_WITH_AS(LayoutReader::open(dir), doctest::Contains("blobs/sha256/notes.txt"), Error);
  }
}

TEST_CASE("layout: a bundle is read from what was opened, and every blob is checked on its way out")
{
  TempDir tmp;
  Sample g;
  Descriptor layer = g.layer();
  SUBCASE("a tar renamed over after the open: the opened one is read")
  {
    fs::path out = tmp.path() / "b.tar";
    g.write(out);
    auto r = LayoutReader::open(out);
    Sample other;
    other.write(tmp.path() / "other.tar");
    spit(tmp.path() / "junk.tar", "junk");
    fs::rename(tmp.path() / "junk.tar", out);
    CHECK(read_all(*r->fetch(layer), 1 << 20) == std::string(100000, 'x'));
  }
  SUBCASE("a tar changed in place: the blob fails its digest")
  {
    fs::path out = tmp.path() / "b.tar";
    g.write(out);
    auto r = LayoutReader::open(out);
    std::string bytes = slurp(out);
    auto at = bytes.find(std::string(100, 'x'));
    REQUIRE(at != std::string::npos);
    bytes[at] = 'y';
    {
      std::fstream f(out, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(at));
      f.put('y');
    }
    CHECK_THROWS_AS(read_all(*r->fetch(layer), 1 << 20), Error);
    // index.json and the manifests are never read again.
    CHECK(r->index_json() == g.index_json);
  }
  SUBCASE("a directory's blob replaced after the open: it fails its digest")
  {
    fs::path dir = tmp.path() / "d";
    g.write(dir);
    auto r = LayoutReader::open(dir);
    spit(tmp.path() / "new", std::string(100000, 'y'));
    fs::rename(tmp.path() / "new", dir / blob_path(layer.digest));
    spit(dir / "index.json", "{}");
    CHECK_THROWS_WITH_AS(read_all(*r->fetch(layer), 1 << 20), doctest::Contains(layer.digest.str().c_str()), Error);
    CHECK(r->index_json() == g.index_json);
  }
}

TEST_CASE("layout: bounded work — the entry limit, the problems listed")
{
  TempDir tmp;
  Sample g;
  for (const char* name : {"b.tar", "b.tar.zst", "b"}) {
    CAPTURE(name);
    fs::path out = tmp.path() / name;
    g.write(out);
    std::uint64_t entries = LayoutReader::open(out)->entry_count();
    CHECK(entries >= 6);
    CHECK_NOTHROW(LayoutReader::open(out, format_from_path(out), at(ReadDepth::structure, entries)));
    CHECK_THROWS_WITH_AS(LayoutReader::open(out, format_from_path(out), at(ReadDepth::structure, entries - 1)),
                         doctest::Contains("--max-entries"), Error);
  }
  ProblemList p;
  p.limit = 3;
  for (int i = 0; i < 10; ++i) p.add("", "problem " + std::to_string(i));
  CHECK(p.total == 10);
  CHECK(p.listed.size() == 3);
  CHECK(p.listed.back().message == "problem 2");
}

TEST_CASE("layout: content problems are collected at verify depth and thrown at the others")
{
  TempDir tmp;
  // A layer kept in memory as a manifest could be, and one larger than anything kept (read
  // past the keep limit, and hashed on every core where the format allows it).
  for (std::size_t size : {std::size_t{100000}, k_max_manifest_size + 12345})
  for (const char* name : {"b.tar", "b.tar.zst", "b"}) {
    CAPTURE(size);
    CAPTURE(name);
    Sample g(size);
    Descriptor layer = g.layer();
    fs::path out = tmp.path() / name;
    fs::path good = tmp.path() / ("good-" + std::string(name));
    g.write(good);
    // The layer's bytes changed (same size) under its name.
    if (format_from_path(out) == BundleFormat::dir) {
      fs::copy(good, out, fs::copy_options::recursive);
      spit(out / blob_path(layer.digest), std::string(size, 'y'));
    } else {
      auto entries = layout_entries(g);
      for (auto& [n, bytes] : entries)
        if (n == blob_path(layer.digest)) bytes = std::string(size, 'y');
      write_tar(out, entries, format_from_path(out) == BundleFormat::tar_zst);
    }
    auto r = LayoutReader::open(out, format_from_path(out), at(ReadDepth::verify));
    REQUIRE(r->problems().total == 1);
    CHECK(r->problems().listed[0].digest == layer.digest.str());
    CHECK_FALSE(r->blob(layer.digest)->intact);
    // The structure depth does not hash layers: push hashes them on the way out.
    auto s = LayoutReader::open(out, format_from_path(out), at(ReadDepth::structure));
    CHECK(s->problems().empty());
    std::string named = layer.digest.str();
    CHECK_THROWS_WITH_AS(s->for_each_blob({layer}, [](const Descriptor&, Reader& rd) { read_all(rd, 64 << 20); }),
                         doctest::Contains(named.c_str()), Error);
    fs::remove_all(out);
    fs::remove_all(good);
  }
  SUBCASE("index.json that is not JSON")
  {
    Sample g;
    fs::path out = tmp.path() / "bad.tar";
    auto entries = layout_entries(g);
    entries[1].second = "not json";
    write_tar(out, entries);
    CHECK(LayoutReader::open(out, BundleFormat::tar, at(ReadDepth::verify))->problems().total >= 1);
    CHECK_THROWS_WITH_AS(LayoutReader::open(out), doctest::Contains("index.json is not a JSON object"), Error);
  }
}

TEST_CASE("zstd: one decoder for every stream — frames, skippable frames, truncation")
{
  auto compress = [](const std::string& text) {
    std::string out(ZSTD_compressBound(text.size()), '\0');
    out.resize(ZSTD_compress(out.data(), out.size(), text.data(), text.size(), 3));
    return out;
  };
  // Two frames and a skippable frame between them (zstd's seekable format puts its table in one).
  std::string skippable = std::string("\x50\x2a\x4d\x18\x04\x00\x00\x00", 8) + "abcd";
  std::string stream = compress("first frame, ") + skippable + compress("second frame");
  for (bool background : {false, true}) {
    CAPTURE(background);
    ZstdReader r(std::make_unique<StringReader>(stream), "t.zst", background);
    CHECK(read_all(r, 1 << 20) == "first frame, second frame");
    std::string cut = stream.substr(0, stream.size() - 3);
    ZstdReader t(std::make_unique<StringReader>(cut), "t.zst", background);
    CHECK_THROWS_WITH_AS(read_all(t, 1 << 20), doctest::Contains("t.zst: zstd: truncated input"), Error);
    ZstdReader g(std::make_unique<StringReader>("not zstd at all"), "g.zst", background);
    CHECK_THROWS_WITH_AS(read_all(g, 1 << 20), doctest::Contains("g.zst: zstd:"), Error);
    ZstdReader e(std::make_unique<StringReader>(""), "e.zst", background);
    CHECK_THROWS_AS(read_all(e, 1 << 20), Error);
  }
}

TEST_CASE("BlobKey: a digest and back, ordered like digests")
{
  Digest a = Digest::of("a"), b = Digest::of("b"), c = Digest::of("c", "sha512");
  CHECK(BlobKey::of(a).digest() == a);
  CHECK(BlobKey::of(c).digest() == c);
  CHECK(BlobKey::of(a) == BlobKey::of(Digest::parse(a.str())));
  CHECK((BlobKey::of(a) < BlobKey::of(b)) == (a.hex() < b.hex()));
  CHECK(BlobKey::of(a) < BlobKey::of(c));  // sha256 before sha512, as blobs/sha256 < blobs/sha512
}

TEST_CASE("layout: a gzip-compressed tar (another tool's .tgz, ferry's own) is read through the one gzip decoder")
{
  Sample g;
  TempDir tmp;
  auto entries = layout_entries(g, "./");
  entries.insert(entries.begin(), {"./", ""});
  fs::path tgz = tmp.path() / "b.tgz";
  write_tar(tgz, entries, false, ARCHIVE_FORMAT_TAR_PAX_RESTRICTED, true);
  for (auto depth : {ReadDepth::head, ReadDepth::structure, ReadDepth::verify}) {
    auto r = LayoutReader::open(tgz, format_from_path(tgz), at(depth));
    CHECK(r->format() == BundleFormat::tar_gz);
    CHECK_FALSE(r->random_access());
    CHECK(r->index_json() == g.index_json);
    CHECK(r->problems().empty());
  }
  // The content decides, not the name: a gzip stream named .tar is read as one.
  fs::path named_tar = tmp.path() / "b.tar";
  fs::copy_file(tgz, named_tar);
  CHECK(LayoutReader::open(named_tar)->format() == BundleFormat::tar_gz);
  // Every blob comes out of a pass, checked.
  auto r = LayoutReader::open(tgz, BundleFormat::tar_gz, at(ReadDepth::structure));
  std::size_t seen = 0;
  std::vector<Descriptor> all = g.store.all();
  r->for_each_blob(all, [&](const Descriptor& d, Reader& data) {
    CHECK(read_all(data, 1 << 24, "blob") == *g.store.get(d.digest));
    ++seen;
  });
  CHECK(seen == all.size());
  std::string whole = slurp(tgz);
  SUBCASE("cut short")
  {
    spit(tgz, whole.substr(0, whole.size() - 3));
    CHECK_THROWS_WITH_AS(LayoutReader::open(tgz), doctest::Contains("gzip"), Error);
  }
  SUBCASE("a byte changed (the CRC-32 or the deflate stream says so)")
  {
    std::string bad = whole;
    bad[bad.size() - 6] = static_cast<char>(bad[bad.size() - 6] ^ 0x40);
    spit(tgz, bad);
    CHECK_THROWS_AS(LayoutReader::open(tgz), Error);
  }
  SUBCASE("data after the last member")
  {
    spit(tgz, whole + "trailing junk");
    CHECK_THROWS_WITH_AS(LayoutReader::open(tgz), doctest::Contains("data after the end of the gzip stream"), Error);
  }
  SUBCASE("two members are one stream")
  {
    // The archive split in two gzip members (what ferry's writer and `cat a.gz b.gz` make).
    fs::path plain = tmp.path() / "p.tar";
    write_tar(plain, entries);
    std::string t = slurp(plain);
    auto gz = [](const std::string& in) {
      z_stream z{};
      REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
      std::string out(deflateBound(&z, in.size()) + 64, '\0');
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z.avail_in = static_cast<uInt>(in.size());
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = static_cast<uInt>(out.size());
      REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
      out.resize(z.total_out);
      deflateEnd(&z);
      return out;
    };
    spit(tgz, gz(t.substr(0, 1000)) + gz(t.substr(1000)));
    auto two = LayoutReader::open(tgz, BundleFormat::tar_gz, at(ReadDepth::verify));
    CHECK(two->index_json() == g.index_json);
    CHECK(two->problems().empty());
  }
}

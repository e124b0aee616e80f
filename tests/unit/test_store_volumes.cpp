#include <doctest/doctest.h>

#include <ferry/digest.hpp>
#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/store/bundle_writer.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/store/volumes.hpp>
#include <ferry/util/file.hpp>

#include <fstream>
#include <map>
#include <random>
#include <sstream>

using namespace ferry;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p)
{
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& bytes)
{
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// A bundle of a few in-memory manifests and random (incompressible) blobs, ~2.6 MB.
struct Fixture {
  std::vector<BundleItem> items;
  std::map<Digest, std::string> content;
  std::string index_json = R"({"schemaVersion":2,"manifests":[]})";
  explicit Fixture(unsigned seed = 11, std::size_t extra = 0)
  {
    std::mt19937 rng(seed);
    for (int i = 0; i < 2; ++i) {
      std::string m = R"({"schemaVersion":2,"n":)" + std::to_string(i) + "}";
      Descriptor d;
      d.media_type = std::string(media_type::k_oci_manifest);
      d.digest = Digest::of(m);
      d.size = m.size();
      items.push_back({d, m});
    }
    std::vector<std::size_t> sizes{0ul, 511ul, 513ul, 100000ul, 1ul << 20, 3ul << 19};
    if (extra) sizes.insert(sizes.begin(), extra);
    for (std::size_t size : sizes) {
      std::string bytes(size, '\0');
      for (auto& c : bytes) c = static_cast<char>(rng());
      bytes += std::to_string(size);
      Descriptor d;
      d.media_type = "application/octet-stream";
      d.digest = Digest::of(bytes);
      d.size = bytes.size();
      content[d.digest] = bytes;
      items.push_back({d, std::nullopt});
    }
  }
  std::string bytes(const Digest& d) const
  {
    if (content.count(d)) return content.at(d);
    for (const auto& i : items)
      if (i.desc.digest == d && i.bytes) return *i.bytes;
    return {};
  }
  // Writes the bundle (as volumes with `volume_size`); the .tar writer gets its blobs in
  // reverse order, as from several threads.
  void save(const fs::path& out, BundleFormat format, std::optional<std::uint64_t> volume_size = std::nullopt) const
  {
    BundleWriter::Options o;
    o.zstd_threads = 2;
    o.volume_size = volume_size;
    auto w = BundleWriter::create(out, format, index_json, items, o);
    std::vector<Descriptor> pending(w->pending().begin(), w->pending().end());
    if (!w->ordered()) std::reverse(pending.begin(), pending.end());
    for (const auto& d : pending) {
      StringReader r(content.at(d.digest));
      w->write(d, r);
    }
    w->commit();
  }
};

// The payloads of the volumes NAME.001, … concatenated, and how many there are.
std::pair<std::string, unsigned> payloads(const fs::path& name)
{
  std::string out;
  unsigned n = 0;
  for (unsigned i = 1; fs::exists(volume_path(name, i)); ++i, ++n) {
    std::string v = slurp(volume_path(name, i));
    REQUIRE(v.size() > k_volume_header_size);
    out += v.substr(k_volume_header_size);
  }
  return {out, n};
}

std::string open_error(const fs::path& first, BundleFormat format, ReadDepth depth = ReadDepth::verify)
{
  LayoutReader::Options o;
  o.depth = depth;
  try {
    auto r = LayoutReader::open(first, format, o);
    return "";
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_manifest);
    return e.what();
  }
}

const char* suffix(BundleFormat f)
{
  return f == BundleFormat::tar ? ".tar" : f == BundleFormat::tar_zst ? ".tar.zst" : ".tar.gz";
}

} // namespace

TEST_CASE("parse_size: bytes and powers of 1024, decimals; anything else, zero and too small refused")
{
  CHECK(parse_size("4096", "--max-size") == 4096);
  CHECK(parse_size("513", "--max-size") == 513);
  CHECK(parse_size("4K", "--max-size") == 4096);
  CHECK(parse_size("4k", "--max-size") == 4096);
  CHECK(parse_size("4KiB", "--max-size") == 4096);
  CHECK(parse_size("4KB", "--max-size") == 4096);
  CHECK(parse_size("700M", "--max-size") == 700ull << 20);
  CHECK(parse_size("4G", "--max-size") == 4ull << 30);
  CHECK(parse_size("4gib", "--max-size") == 4ull << 30);
  CHECK(parse_size("1.5G", "--max-size") == (3ull << 30) / 2);
  CHECK(parse_size("2T", "--max-size") == 2ull << 40);
  CHECK(parse_size("1000B", "--max-size") == 1000);
  for (const char* bad : {"", "G", "4X", "-1", "1.5", "1.G", "4 G", "0x10", "99999999999999999999", "16777216T", "4GG"}) {
    CAPTURE(bad);
    try {
      parse_size(bad, "--max-size");
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_argument);
      CHECK(std::string(e.what()).find("--max-size") != std::string::npos);
    }
  }
  CHECK_THROWS_WITH_AS(parse_size("0", "--max-size"), doctest::Contains("0 bytes"), Error);
  CHECK_THROWS_WITH_AS(parse_size("512", "--max-size"), doctest::Contains("too small"), Error);
  CHECK_THROWS_WITH_AS(parse_size("0.1K", "--max-size"), doctest::Contains("too small"), Error);
}

TEST_CASE("volume names: NAME.001 and back, three digits then as many as needed")
{
  CHECK(volume_path("out/b.tar.zst", 1) == fs::path("out/b.tar.zst.001"));
  CHECK(volume_path("b.tar", 42) == fs::path("b.tar.042"));
  CHECK(volume_path("b.tar", 999) == fs::path("b.tar.999"));
  CHECK(volume_path("b.tar", 1000) == fs::path("b.tar.1000"));
  CHECK(volume_set_name("out/b.tar.zst.001") == fs::path("out/b.tar.zst"));
  CHECK(!volume_set_name("b.tar.002"));
  CHECK(!volume_set_name("b.tar"));
  CHECK(has_volume_suffix("b.tar.001"));
  CHECK(has_volume_suffix("b.tar.1000"));
  CHECK(!has_volume_suffix("b.tar.01"));
  CHECK(!has_volume_suffix("b.tar"));
  CHECK(!has_volume_suffix("dir.001/b.tar"));
  CHECK(format_from_path("b.tar.zst.001") == BundleFormat::tar_zst);
  CHECK(format_from_path("b.tar.003") == BundleFormat::tar);
  CHECK(format_from_path("b.tgz.001") == BundleFormat::tar_gz);
}

TEST_CASE("volumes of 1, 2 and many: payloads are the plain bundle, and read back as it (tar, tar.zst, tar.gz)")
{
  Fixture fx;
  for (BundleFormat format : {BundleFormat::tar, BundleFormat::tar_zst, BundleFormat::tar_gz}) {
    CAPTURE(format_name(format));
    TempDir dir;
    fs::path plain = dir.path() / (std::string("plain") + suffix(format));
    fx.save(plain, format);
    std::string whole = slurp(plain);
    std::uint64_t size = whole.size();
    struct Case {
      std::uint64_t volume_size;
      unsigned count;
    };
    std::uint64_t half = (size + 1) / 2, twentieth = (size + 19) / 20;
    for (Case c : {Case{size + k_volume_header_size, 1}, Case{size + k_volume_header_size + 1000, 1},
                   Case{half + k_volume_header_size, 2}, Case{twentieth + k_volume_header_size, 20}}) {
      CAPTURE(c.volume_size);
      fs::path name = dir.path() / (std::string("v") + std::to_string(c.count) + suffix(format));
      fx.save(name, format, c.volume_size);
      auto [bytes, count] = payloads(name);
      CHECK(count == c.count);
      CHECK(bytes == whole);
      CHECK(!fs::exists(name));
      for (unsigned i = 1; i <= count; ++i) CHECK(fs::file_size(volume_path(name, i)) <= c.volume_size);
      CHECK(!fs::exists(volume_path(name, 1).string() + ".partial"));

      for (ReadDepth depth : {ReadDepth::head, ReadDepth::structure, ReadDepth::verify}) {
        LayoutReader::Options o;
        o.depth = depth;
        auto r = LayoutReader::open(volume_path(name, 1), format_from_path(volume_path(name, 1)), o);
        CHECK(r->format() == format);
        CHECK(r->problems().empty());
        CHECK(r->index_json() == fx.index_json);
        if (depth == ReadDepth::head && format != BundleFormat::tar) continue;
        std::vector<Descriptor> wanted;
        for (const auto& item : fx.items) wanted.push_back(item.desc);
        std::size_t seen = 0;
        r->for_each_blob(wanted, [&](const Descriptor& d, Reader& content) {
          std::string got = read_all(content, 64 << 20);
          CHECK(got == fx.bytes(d.digest));
          ++seen;
        });
        CHECK(seen == wanted.size());
      }
    }
  }
}

TEST_CASE("a damaged volume set is refused in one line naming the volume")
{
  Fixture fx, other(12);
  for (BundleFormat format : {BundleFormat::tar, BundleFormat::tar_zst, BundleFormat::tar_gz}) {
    CAPTURE(format_name(format));
    TempDir dir;
    fs::path plain = dir.path() / (std::string("plain") + suffix(format));
    fx.save(plain, format);
    std::uint64_t per = (fs::file_size(plain) + 2) / 3 + k_volume_header_size;
    fs::path name = dir.path() / (std::string("b") + suffix(format));
    fs::path v1 = volume_path(name, 1), v2 = volume_path(name, 2), v3 = volume_path(name, 3);
    auto fresh = [&] {
      fx.save(name, format, per);
      REQUIRE(payloads(name).second == 3);
    };
    fresh();
    CHECK(open_error(v1, format) == "");

    // missing
    fs::remove(v2);
    std::string e = open_error(v1, format, ReadDepth::head);
    CHECK(e.find(v2.string() + ": missing") == 0);
    CHECK(e.find('\n') == std::string::npos);
    fresh();
    // reordered
    fs::rename(v2, dir.path() / "tmp");
    fs::rename(v3, v2);
    fs::rename(dir.path() / "tmp", v3);
    e = open_error(v1, format, ReadDepth::head);
    CHECK(e.find(v2.string() + ": holds volume 3 of 3, not volume 2") == 0);
    fresh();
    // truncated (the last, and the middle one below its header)
    fs::resize_file(v3, fs::file_size(v3) - 100);
    e = open_error(v1, format, ReadDepth::head);
    CHECK(e.find(v3.string() + ": truncated") == 0);
    fresh();
    fs::resize_file(v2, 100);
    e = open_error(v1, format, ReadDepth::head);
    CHECK(e.find(v2.string() + ": truncated") == 0);
    fresh();
    // foreign: volume 2 of another save of the same name
    {
      TempDir elsewhere;
      fs::path oname = elsewhere.path() / name.filename();
      other.save(oname, format, per);
      fs::copy_file(volume_path(oname, 2), v2, fs::copy_options::overwrite_existing);
    }
    e = open_error(v1, format, ReadDepth::head);
    CHECK(e.find(v2.string() + ": belongs to another save") == 0);
    fresh();
    // not the first volume
    e = open_error(v2, format, ReadDepth::head);
    CHECK(e.find(v2.string() + ": is volume 2 of 3; give the first volume") == 0);
    // one corrupted byte in volume 2's payload: named at ReadDepth::verify, and wherever the
    // set is read through (the compressed formats at every depth that reads it)
    {
      std::string bytes = slurp(v2);
      bytes[k_volume_header_size + 1000] ^= 0x20;
      spit(v2, bytes);
    }
    e = open_error(v1, format, ReadDepth::verify);
    CHECK(e == v2.string() + ": volume 2 of 3 is damaged: its content does not match the SHA-256 in its header");
    if (format != BundleFormat::tar) {
      e = open_error(v1, format, ReadDepth::structure);
      CHECK(e == v2.string() + ": volume 2 of 3 is damaged: its content does not match the SHA-256 in its header");
    } else {
      // A plain tar read in place (push): the blob that fails its digest names the volume
      // (or the walk already did, having hashed the volume through on its way).
      LayoutReader::Options o;
      o.depth = ReadDepth::structure;
      std::vector<Descriptor> wanted;
      for (const auto& item : fx.items)
        if (!item.bytes) wanted.push_back(item.desc);
      try {
        auto r = LayoutReader::open(v1, format, o);
        r->for_each_blob(wanted, [&](const Descriptor&, Reader& content) { read_all(content, 64 << 20); });
        FAIL("a damaged blob was read");
      } catch (const Error& err) {
        CHECK(std::string(err.what()) ==
              v2.string() + ": volume 2 of 3 is damaged: its content does not match the SHA-256 in its header");
      }
    }
    fresh();
    // a damaged header
    {
      std::string bytes = slurp(v3);
      bytes[20] ^= 1;
      spit(v3, bytes);
    }
    e = open_error(v1, format, ReadDepth::head);
    CHECK(e.find(v3.string() + ": not a ferry volume, or its header is damaged") == 0);
  }
}

TEST_CASE("a plain tar's blob read in place from a damaged volume names the volume, not the blob")
{
  // Volumes of 4 MiB, a 6 MiB blob first: the walk jumps over it into volume 2 (too far to
  // hash on the way), so reading a small blob of volume 2 in place (push, for_each_blob)
  // checks only that blob's digest, and its mismatch names the volume.
  Fixture fx(13, 6u << 20);
  TempDir dir;
  fs::path plain = dir.path() / "p.tar";
  fx.save(plain, BundleFormat::tar);
  std::string whole = slurp(plain);
  const Descriptor* small = nullptr;
  for (const auto& item : fx.items)
    if (item.desc.size == 100000 + 6) small = &item.desc;
  REQUIRE(small);
  auto at = whole.find(fx.bytes(small->digest));
  REQUIRE(at != std::string::npos);
  std::uint64_t cap = 4u << 20;
  std::uint64_t damaged = at + 5000;
  REQUIRE(damaged / cap == 1);
  REQUIRE(damaged % cap > (1u << 20) + 100000);  // past what the walk hashes of volume 2
  fs::path name = dir.path() / "b.tar";
  fx.save(name, BundleFormat::tar, cap + k_volume_header_size);
  unsigned count = payloads(name).second;
  fs::path vol = volume_path(name, 2);
  {
    std::string bytes = slurp(vol);
    bytes[k_volume_header_size + damaged % cap] ^= 0x40;
    spit(vol, bytes);
  }
  std::string message = vol.string() + ": volume 2 of " + std::to_string(count) +
                        " is damaged: its content does not match the SHA-256 in its header";
  LayoutReader::Options o;
  o.depth = ReadDepth::structure;
  auto r = LayoutReader::open(volume_path(name, 1), BundleFormat::tar, o);
  CHECK_THROWS_WITH_AS(r->for_each_blob({*small}, [&](const Descriptor&, Reader& content) { read_all(content, 1 << 20); }),
                       message.c_str(), Error);
  CHECK(open_error(volume_path(name, 1), BundleFormat::tar, ReadDepth::verify) == message);
}

TEST_CASE("a plain bundle whose name ends in digits other than .001 is read as the file it is")
{
  Fixture fx;
  TempDir dir;
  fs::path plain = dir.path() / "b.tar";
  fx.save(plain, BundleFormat::tar);
  fs::path dated = dir.path() / "b.tar.2024";
  fs::rename(plain, dated);
  auto r = LayoutReader::open(dated, format_from_path(dated), {});
  CHECK(r->format() == BundleFormat::tar);
  CHECK(r->index_json() == fx.index_json);
  // `.001` is always a volume set: a plain file there is refused, naming it.
  fs::path first = dir.path() / "b.tar.001";
  fs::rename(dated, first);
  CHECK(open_error(first, BundleFormat::tar, ReadDepth::head).find(first.string() + ": not a ferry volume") == 0);
}

TEST_CASE("saving volumes: stale higher-numbered volumes go, a foreign NAME.001 is kept, a directory and too many volumes refused")
{
  Fixture fx;
  TempDir dir;
  fs::path plain = dir.path() / "plain.tar";
  fx.save(plain, BundleFormat::tar);
  std::uint64_t size = fs::file_size(plain);
  fs::path name = dir.path() / "b.tar";
  fx.save(name, BundleFormat::tar, size / 5 + k_volume_header_size);
  CHECK(payloads(name).second == 6);
  spit(volume_path(name, 8), "not a volume");
  fx.save(name, BundleFormat::tar_zst, size / 2 + k_volume_header_size);
  CHECK(payloads(name).second == 2);
  CHECK(!fs::exists(volume_path(name, 3)));
  CHECK(!fs::exists(volume_path(name, 6)));
  CHECK(fs::exists(volume_path(name, 8)));  // not ferry's

  fs::path mine = dir.path() / "mine.tar";
  spit(volume_path(mine, 1), "a user's file");
  CHECK_THROWS_WITH_AS(fx.save(mine, BundleFormat::tar, 1 << 20), doctest::Contains("is not a ferry volume"), Error);
  CHECK(slurp(volume_path(mine, 1)) == "a user's file");

  CHECK_THROWS_WITH_AS(fx.save(dir.path() / "d", BundleFormat::dir, 1 << 20), doctest::Contains("not a directory"), Error);
  CHECK_THROWS_WITH_AS(fx.save(dir.path() / "many.tar", BundleFormat::tar, 1024), doctest::Contains("more than 500 volumes"), Error);
  CHECK_THROWS_WITH_AS(fx.save(dir.path() / "many.tar.zst", BundleFormat::tar_zst, 1024), doctest::Contains("more than 500 volumes"), Error);
  for (const auto& e : fs::directory_iterator(dir.path())) CHECK(e.path().string().find(".partial") == std::string::npos);
}

#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <ferry/util/file.hpp>

#include <ferry/digest.hpp>
#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/store/bundle_writer.hpp>
#include <ferry/util/parallel.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

using namespace ferry;
namespace fs = std::filesystem;
using ferry::TempDir;
using fixtures::write_into;

namespace {

std::string slurp(const fs::path& p)
{
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A plan: a few in-memory "manifests", then blobs of awkward sizes around tar's 512-byte
// blocks, random content (incompressible for the zstd case).
struct Fixture {
  std::vector<BundleItem> items;
  std::map<Digest, std::string> content;  // of every blob to fetch
  std::vector<Descriptor> fetched;        // in plan order
  std::string index_json = R"({"schemaVersion":2,"manifests":[]})";
  Fixture()
  {
    std::mt19937 rng(7);
    for (int i = 0; i < 3; ++i) {
      std::string m = R"({"schemaVersion":2,"n":)" + std::to_string(i) + "}";
      Descriptor d;
      d.media_type = std::string(media_type::k_oci_manifest);
      d.digest = Digest::of(m);
      d.size = m.size();
      items.push_back({d, m});
    }
    for (std::size_t size : {0ul, 1ul, 511ul, 512ul, 513ul, 4096ul, 100000ul, 1ul << 20, 3ul << 20}) {
      std::string bytes(size, '\0');
      for (auto& c : bytes) c = static_cast<char>(rng());
      bytes += std::to_string(size);  // distinct even when empty
      Descriptor d;
      d.media_type = "application/octet-stream";
      d.digest = Digest::of(bytes);
      d.size = bytes.size();
      content[d.digest] = bytes;
      fetched.push_back(d);
      items.push_back({d, std::nullopt});
    }
  }
  std::unique_ptr<BundleWriter> writer(const fs::path& out, BundleFormat format, bool resume = true) const
  {
    BundleWriter::Options o;
    o.resume = resume;
    o.zstd_threads = 2;
    return BundleWriter::create(out, format, index_json, items, o);
  }
  void write(BundleWriter& w, const Descriptor& d) const
  {
    StringReader r(content.at(d.digest));
    w.write(d, r);
  }
  // Writes every pending blob in order and commits.
  void finish(BundleWriter& w) const
  {
    for (const auto& d : w.pending()) write(w, d);
    w.commit();
  }
};

// name -> content of every file entry, read with libarchive (independent of ferry's reader).
std::map<std::string, std::string> tar_files(const fs::path& p, std::vector<std::string>* order = nullptr)
{
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  REQUIRE(archive_read_open_filename(a, p.c_str(), 65536) == ARCHIVE_OK);
  archive_entry* e;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(e);
    std::string data;
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) data.append(buf, static_cast<std::size_t>(n));
    REQUIRE(n == 0);
    out[name] = data;
    if (order) order->push_back(name);
  }
  CHECK(rc == ARCHIVE_EOF);
  archive_read_free(a);
  return out;
}

void check_contents(const std::map<std::string, std::string>& files, const Fixture& fx)
{
  CHECK(files.at("oci-layout") == std::string(k_oci_layout_file));
  CHECK(files.at("index.json") == fx.index_json);
  for (const auto& item : fx.items) {
    const std::string& want = item.bytes ? *item.bytes : fx.content.at(item.desc.digest);
    CHECK(files.at(blob_path(item.desc.digest)) == want);
  }
  CHECK(files.size() == fx.items.size() + 2);
}

std::map<std::string, std::string> dir_files(const fs::path& root)
{
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[fs::relative(e.path(), root).string()] = slurp(e.path());
  return out;
}

} // namespace

TEST_CASE("tar_header: ustar fields, and pax records for long names and sizes beyond 8 GiB")
{
  std::string h = tar_header("blobs/sha256/" + std::string(64, 'a'), 1234);
  REQUIRE(h.size() == 512);
  CHECK(h.substr(257, 6) == std::string("ustar\0", 6));
  CHECK(h.substr(124, 12) == std::string("00000002322\0", 12));
  unsigned sum = 0;
  for (std::size_t i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  CHECK(std::stoul(h.substr(148, 6), nullptr, 8) == sum);

  std::string long_name = "blobs/sha512/" + std::string(128, 'b');
  std::string p = tar_header(long_name, 10ull << 30);
  CHECK(p.size() == 512 * 3);
  CHECK(p[156] == 'x');
  CHECK(p.find("path=" + long_name + "\n") != std::string::npos);
  CHECK(p.find(" size=10737418240\n") != std::string::npos);
  CHECK(tar_padding(0) == 0);
  CHECK(tar_padding(1) == 511);
  CHECK(tar_padding(512) == 0);
}

TEST_CASE("a long blob name round-trips through libarchive")
{
  TempDir tmp;
  std::string bytes = "sha512 content";
  Descriptor d;
  d.media_type = "application/octet-stream";
  d.digest = Digest::of(bytes, "sha512");
  d.size = bytes.size();
  auto w = BundleWriter::create(tmp.path() / "b.tar", BundleFormat::tar, "{}", {{d, std::nullopt}});
  StringReader r(bytes);
  w->write(d, r);
  w->commit();
  auto files = tar_files(tmp.path() / "b.tar");
  CHECK(files.at(blob_path(d.digest)) == bytes);
}

TEST_CASE("concurrent writer: blobs written from four threads in any order give the same bytes as one thread in order")
{
  Fixture fx;
  for (auto format : {BundleFormat::tar, BundleFormat::dir}) {
    CAPTURE(format_name(format));
    TempDir tmp;
    fs::path a = tmp.path() / (format == BundleFormat::tar ? "a.tar" : "a");
    fs::path b = tmp.path() / (format == BundleFormat::tar ? "b.tar" : "b");
    auto wa = fx.writer(a, format);
    CHECK(wa->pending().size() == fx.fetched.size());
    CHECK_FALSE(wa->ordered());
    fx.finish(*wa);

    auto wb = fx.writer(b, format);
    auto shuffled = wb->pending();
    std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(3));
    parallel_for_each(shuffled, 4, [&](const Descriptor& d) { fx.write(*wb, d); });
    wb->commit();

    CHECK_FALSE(fs::exists(b.string() + ".partial"));
    CHECK_FALSE(fs::exists(b.string() + ".partial.resume"));
    if (format == BundleFormat::tar) {
      CHECK(slurp(a) == slurp(b));
      std::vector<std::string> order;
      auto files = tar_files(b, &order);
      check_contents(files, fx);
      REQUIRE(order.size() >= 2);
      CHECK(order[0] == "oci-layout");
      CHECK(order[1] == "index.json");
      CHECK(fs::file_size(b) % 512 == 0);
    } else {
      CHECK(dir_files(a) == dir_files(b));
      check_contents(dir_files(b), fx);
    }
  }
}

TEST_CASE(".tar.zst: written in order through zstd, readable by libarchive; out of order is refused")
{
  Fixture fx;
  TempDir tmp;
  auto w = fx.writer(tmp.path() / "b.tar.zst", BundleFormat::tar_zst);
  CHECK(w->ordered());
  REQUIRE(w->pending().size() >= 2);
  CHECK_THROWS_AS(fx.write(*w, w->pending()[1]), Error);
  fx.finish(*w);
  check_contents(tar_files(tmp.path() / "b.tar.zst"), fx);
}

TEST_CASE(".tar.gz: written in order through gzip (one member per blob), readable by libarchive and zlib")
{
  Fixture fx;
  TempDir tmp;
  auto w = fx.writer(tmp.path() / "b.tar.gz", BundleFormat::tar_gz);
  CHECK(w->ordered());
  REQUIRE(w->pending().size() >= 2);
  CHECK_THROWS_AS(fx.write(*w, w->pending()[1]), Error);
  fx.finish(*w);
  std::string bytes = slurp(tmp.path() / "b.tar.gz");
  REQUIRE(bytes.size() > 2);
  CHECK(static_cast<unsigned char>(bytes[0]) == 0x1f);
  CHECK(static_cast<unsigned char>(bytes[1]) == 0x8b);
  check_contents(tar_files(tmp.path() / "b.tar.gz"), fx);
  // The same plan again: the same bytes (no name, no time in any member's header).
  auto again = fx.writer(tmp.path() / "c.tar.gz", BundleFormat::tar_gz);
  fx.finish(*again);
  CHECK(slurp(tmp.path() / "c.tar.gz") == bytes);
}

TEST_CASE("a blob with the wrong bytes is refused and not recorded as finished")
{
  Fixture fx;
  for (auto format : {BundleFormat::tar, BundleFormat::tar_zst, BundleFormat::tar_gz, BundleFormat::dir}) {
    CAPTURE(format_name(format));
    TempDir tmp;
    fs::path out = tmp.path() / "b";
    {
      auto w = fx.writer(out, format);
      StringReader wrong("not the content");
      CHECK_THROWS_AS(w->write(w->pending()[0], wrong), Error);
      CHECK_FALSE(w->resumable());
      CHECK_THROWS_AS(w->commit(), Error);
    }
    // Nothing finished: nothing kept.
    CHECK_FALSE(fs::exists(out.string() + ".partial"));
    CHECK_FALSE(fs::exists(out.string() + ".partial.resume"));
    CHECK_FALSE(fs::exists(out));
  }
}

TEST_CASE("resume: an interrupted writer's finished blobs are reused and the result is byte-identical")
{
  Fixture fx;
  for (auto format : {BundleFormat::tar, BundleFormat::tar_zst, BundleFormat::tar_gz, BundleFormat::dir}) {
    CAPTURE(format_name(format));
    TempDir tmp;
    std::string ext = format == BundleFormat::tar       ? ".tar"
                      : format == BundleFormat::tar_zst ? ".tar.zst"
                      : format == BundleFormat::tar_gz  ? ".tar.gz"
                                                        : "";
    fs::path whole = tmp.path() / ("whole" + ext);
    fx.finish(*fx.writer(whole, format));
    auto reference = format == BundleFormat::dir ? dir_files(whole) : std::map<std::string, std::string>{{"", slurp(whole)}};
    auto snapshot = [&](const fs::path& p) {
      return format == BundleFormat::dir ? dir_files(p) : std::map<std::string, std::string>{{"", slurp(p)}};
    };

    for (std::size_t cut : {std::size_t{0}, std::size_t{1}, fx.fetched.size() / 2, fx.fetched.size() - 1}) {
      CAPTURE(cut);
      fs::path out = tmp.path() / ("cut" + std::to_string(cut) + ext);
      {
        auto w = fx.writer(out, format);
        for (std::size_t i = 0; i < cut; ++i) fx.write(*w, w->pending()[i]);
        CHECK(w->resumable() == (cut > 0));
      }  // interrupted: destroyed uncommitted
      CHECK(fs::exists(out.string() + ".partial") == (cut > 0));
      CHECK_FALSE(fs::exists(out));
      auto w = fx.writer(out, format);
      CHECK(w->reused_blobs() == cut);
      CHECK(w->pending().size() == fx.fetched.size() - cut);
      std::uint64_t bytes = 0;
      for (std::size_t i = 0; i < cut; ++i) bytes += fx.fetched[i].size;
      CHECK(w->reused_bytes() == bytes);
      fx.finish(*w);
      CHECK(snapshot(out) == reference);
      CHECK_FALSE(fs::exists(out.string() + ".partial"));
      CHECK_FALSE(fs::exists(out.string() + ".partial.resume"));
    }
  }
}

TEST_CASE("resume: a damaged finished blob is fetched again; another plan starts afresh; resume off ignores it")
{
  Fixture fx;
  for (auto format : {BundleFormat::tar, BundleFormat::tar_zst, BundleFormat::tar_gz, BundleFormat::dir}) {
    CAPTURE(format_name(format));
    TempDir tmp;
    std::string ext = format == BundleFormat::tar       ? ".tar"
                      : format == BundleFormat::tar_zst ? ".tar.zst"
                      : format == BundleFormat::tar_gz  ? ".tar.gz"
                                                        : "";
    fs::path whole = tmp.path() / ("whole" + ext);
    fx.finish(*fx.writer(whole, format));
    fs::path out = tmp.path() / ("out" + ext);
    std::size_t cut = 8;  // through the 1 MiB blob
    {
      auto w = fx.writer(out, format);
      for (std::size_t i = 0; i < cut; ++i) fx.write(*w, w->pending()[i]);
    }
    fs::path partial = out.string() + ".partial";
    if (format == BundleFormat::dir) {
      // The fourth blob's file loses its content (as after a power cut).
      std::ofstream(partial / blob_path(fx.fetched[3].digest), std::ios::trunc) << "x";
      auto w = fx.writer(out, format);
      CHECK(w->reused_blobs() == cut - 1);
      fx.finish(*w);
      CHECK(dir_files(out) == dir_files(whole));
    } else {
      // One byte flipped in the last quarter of the partial file's written part.
      std::string bytes = slurp(partial);
      // (gzip: inside the last blob's stored deflate blocks; a flip in the few bytes that
      // end a deflate stream may hit its padding bits, which change no content.)
      std::size_t at = format == BundleFormat::tar      ? fs::file_size(whole) / 4
                       : format == BundleFormat::tar_gz ? bytes.size() - 2000
                                                        : bytes.size() - 10;
      {
        std::fstream f(partial, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(at));
        f.put(static_cast<char>(bytes[at] ^ 0x5a));
      }
      auto w = fx.writer(out, format);
      CHECK(w->reused_blobs() < cut);
      fx.finish(*w);
      CHECK(slurp(out) == slurp(whole));
    }

    // A different plan (another index.json) ignores the partial output.
    fs::path other = tmp.path() / ("other" + ext);
    {
      auto w = fx.writer(other, format);
      for (std::size_t i = 0; i < cut; ++i) fx.write(*w, w->pending()[i]);
    }
    BundleWriter::Options o;
    auto w = BundleWriter::create(other, format, R"({"schemaVersion":2,"manifests":[{}]})", fx.items, o);
    CHECK(w->reused_blobs() == 0);
    w.reset();
    // Resume off: starts afresh and removes what it does not commit.
    {
      auto w2 = fx.writer(other, format, /*resume=*/false);
      CHECK(w2->reused_blobs() == 0);
      fx.write(*w2, w2->pending()[0]);
      CHECK_FALSE(w2->resumable());
    }
    CHECK_FALSE(fs::exists(other.string() + ".partial"));
  }
}

TEST_CASE("TaskPool: runs every task, bounds the queue, and rethrows the first failure")
{
  std::atomic<int> ran{0};
  {
    TaskPool pool(3, 2);
    for (int i = 0; i < 50; ++i) pool.submit([&] { ++ran; });
    pool.finish();
    CHECK(ran == 50);
  }
  TaskPool pool(2, 2);
  pool.submit([] { throw Error(Errc::network, "upload failed"); });
  bool threw = false;
  try {
    for (int i = 0; i < 100; ++i) pool.submit([] { std::this_thread::sleep_for(std::chrono::milliseconds(1)); });
    pool.finish();
  } catch (const Error& e) {
    threw = std::string(e.what()).find("upload failed") != std::string::npos;
  }
  CHECK(threw);
}

namespace {

// Fails with a transport error after `cut` bytes.
struct CutOff : Reader {
  std::string_view data;
  std::size_t cut;
  CutOff(std::string_view d, std::size_t c) : data(d), cut(c) {}
  std::size_t read(char* buf, std::size_t n) override
  {
    if (cut == 0) throw Error(Errc::network, "connection reset");
    n = std::min({n, data.size(), cut});
    std::memcpy(buf, data.data(), n);
    data.remove_prefix(n);
    cut -= n;
    return n;
  }
};

} // namespace

TEST_CASE("resume inside a large blob: from its last 8 MiB checkpoint, byte-identical; damaged kept bytes start over")
{
  std::mt19937_64 rng(11);
  std::string big(70u << 20, '\0');
  for (std::size_t i = 0; i + 8 <= big.size(); i += 8) {
    auto v = rng();
    std::memcpy(&big[i], &v, 8);
  }
  std::string small = "small blob";
  std::string manifest = R"({"schemaVersion":2})";
  auto desc = [](const std::string& bytes, const char* type) {
    Descriptor d;
    d.media_type = type;
    d.digest = Digest::of(bytes);
    d.size = bytes.size();
    return d;
  };
  Descriptor dm = desc(manifest, "application/vnd.oci.image.manifest.v1+json");
  Descriptor db = desc(big, "application/octet-stream");
  Descriptor ds = desc(small, "application/octet-stream");
  std::vector<BundleItem> items = {{dm, manifest}, {db, std::nullopt}, {ds, std::nullopt}};
  auto make = [&](const fs::path& out, BundleFormat f) {
    BundleWriter::Options o;
    o.zstd_threads = 2;
    return BundleWriter::create(out, f, "{}", items, o);
  };
  auto snapshot = [](const fs::path& p, BundleFormat f) {
    return f == BundleFormat::dir ? dir_files(p) : std::map<std::string, std::string>{{"", slurp(p)}};
  };
  for (auto format : {BundleFormat::tar, BundleFormat::tar_zst, BundleFormat::dir}) {
    CAPTURE(format_name(format));
    TempDir tmp;
    fs::path whole = tmp.path() / "whole", out = tmp.path() / "out";
    {
      auto w = make(whole, format);
      StringReader a(big), b(small);
      w->write(db, a);
      w->write(ds, b);
      w->commit();
    }
    for (bool damage : {false, true}) {
      CAPTURE(damage);
      {
        auto w = make(out, format);
        CHECK(w->resume_offset(db.digest) == 0);
        CutOff cut(big, 50u << 20);
        CHECK_THROWS_AS(w->write(db, cut), Error);
        CHECK(w->resumable());
      }
      if (damage) {
        // One byte of the kept part flipped on disk.
        fs::path f = format == BundleFormat::dir ? fs::path(out.string() + ".partial") / (blob_path(db.digest) + ".tmp")
                                                 : fs::path(out.string() + ".partial");
        std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
        io.seekg(10u << 20);
        char c = 0;
        io.get(c);
        io.seekp(10u << 20);
        io.put(static_cast<char>(c ^ 0x40));
      }
      auto w = make(out, format);
      REQUIRE(w->resume_offset(db.digest) == (48u << 20));  // the last checkpoint before the cut at 50 MiB
      CHECK(w->reused_bytes() == (48u << 20));
      CHECK(w->continued_blobs() == 1);
      StringReader rest(big.substr(48u << 20));
      if (damage) {
        CHECK_THROWS_AS(w->write(db, rest), Error);
        CHECK(w->resume_offset(db.digest) == 0);
        StringReader again(big);
        w->write(db, again);
      } else {
        w->write(db, rest);
      }
      StringReader b(small);
      w->write(ds, b);
      w->commit();
      CHECK(snapshot(out, format) == snapshot(whole, format));
      CHECK_FALSE(fs::exists(out.string() + ".partial"));
      fs::remove_all(out);
    }
  }
}

TEST_CASE("a large blob whose bytes turn out wrong leaves no checkpoint a re-run would continue from")
{
  // The registry served 20 MiB of wrong bytes: checkpoints were written at 8 and 16 MiB before
  // the digest failed. A re-run must fetch the blob from its first byte, not trust them.
  std::string big(20u << 20, 'x');
  std::string wrong(20u << 20, 'y');
  std::string small = "small blob";
  std::string manifest = R"({"schemaVersion":2})";
  auto desc = [](const std::string& bytes, const char* type) {
    Descriptor d;
    d.media_type = type;
    d.digest = Digest::of(bytes);
    d.size = bytes.size();
    return d;
  };
  Descriptor dm = desc(manifest, "application/vnd.oci.image.manifest.v1+json");
  Descriptor db = desc(big, "application/octet-stream");
  Descriptor ds = desc(small, "application/octet-stream");
  std::vector<BundleItem> items = {{dm, manifest}, {ds, std::nullopt}, {db, std::nullopt}};
  auto make = [&](const fs::path& out, BundleFormat f) {
    BundleWriter::Options o;
    o.zstd_threads = 2;
    return BundleWriter::create(out, f, "{}", items, o);
  };
  for (auto format : {BundleFormat::tar, BundleFormat::tar_zst, BundleFormat::tar_gz, BundleFormat::dir}) {
    CAPTURE(format_name(format));
    TempDir tmp;
    fs::path out = tmp.path() / "out";
    {
      auto w = make(out, format);
      StringReader s(small);
      w->write(ds, s);
      StringReader bad(wrong);
      CHECK_THROWS_AS(w->write(db, bad), Error);
      CHECK(w->resumable());  // the small blob is kept
    }
    auto w = make(out, format);
    CHECK(w->resume_offset(db.digest) == 0);
    CHECK(w->continued_blobs() == 0);
    CHECK(w->reused_blobs() == 1);
    StringReader good(big);
    w->write(db, good);
    w->commit();
    CHECK(fs::exists(out));
  }
}

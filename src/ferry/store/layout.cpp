#include <ferry/store/layout.hpp>

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>
#include <ferry/util/file.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <zstd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using nlohmann::json;

namespace ferry {

namespace {

// index.json may list thousands of roots; bounded all the same (design §8).
constexpr std::size_t k_max_index_size = 64 << 20;

bool ends_with(const std::string& s, std::string_view suffix)
{
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadFree>;
using ArchiveWritePtr = std::unique_ptr<archive, ArchiveWriteFree>;
using ArchiveEntryPtr = std::unique_ptr<archive_entry, ArchiveEntryFree>;

std::string archive_message(archive* a)
{
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

} // namespace

BundleFormat format_from_path(const fs::path& path)
{
  std::string s = path.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  if (ends_with(s, ".tar")) return BundleFormat::tar;
  if (ends_with(s, ".tar.zst") || ends_with(s, ".tzst")) return BundleFormat::tar_zst;
  return BundleFormat::dir;
}

BundleFormat parse_format(const std::string& text)
{
  if (text == "tar") return BundleFormat::tar;
  if (text == "tar.zst" || text == "tzst") return BundleFormat::tar_zst;
  if (text == "dir") return BundleFormat::dir;
  throw Error(Errc::invalid_argument, "invalid --format \"" + text + "\": want tar, tar.zst or dir");
}

const char* format_name(BundleFormat format)
{
  switch (format) {
  case BundleFormat::tar: return "tar";
  case BundleFormat::tar_zst: return "tar.zst";
  case BundleFormat::dir: return "dir";
  }
  return "?";
}

std::string blob_path(const Digest& digest) { return "blobs/" + digest.algorithm() + "/" + digest.hex(); }

std::optional<Digest> digest_from_blob_path(std::string_view path)
{
  if (path.substr(0, 6) != "blobs/") return std::nullopt;
  auto rest = path.substr(6);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string text = std::string(rest.substr(0, slash)) + ":" + std::string(rest.substr(slash + 1));
  if (!Digest::is_valid(text)) return std::nullopt;
  return Digest::parse(text);
}

namespace {

// Design §8: a bundle holds `oci-layout`, `index.json` and `blobs/<alg>/<hex>` (a valid
// digest) as regular files, each once, and directories on those paths only. The readers
// apply this to every entry they meet; `verify` reports the same facts as problems.
class EntryRules {
public:
  explicit EntryRules(std::string where) : m_where(std::move(where)) {}
  void directory(std::string name)
  {
    while (!name.empty() && name.back() == '/') name.pop_back();
    if (name.empty() || name == "." || name == "blobs") return;
    if (name.rfind("blobs/", 0) == 0 && name.size() > 6 && name.find('/', 6) == std::string::npos) return;
    throw Error(Errc::invalid_manifest, m_where + ": unexpected directory \"" + name + "\"");
  }
  void file(const std::string& name)
  {
    if (name != "oci-layout" && name != "index.json" && !digest_from_blob_path(name))
      throw Error(Errc::invalid_manifest, m_where + ": unexpected entry \"" + name +
                                              "\" (a bundle holds oci-layout, index.json and blobs/<algorithm>/<hex>)");
    if (!m_seen.insert(name).second) throw Error(Errc::invalid_manifest, m_where + ": duplicate entry \"" + name + "\"");
  }

private:
  std::string m_where;
  std::set<std::string> m_seen;
};

} // namespace

// ---------------------------------------------------------------- writers

namespace {

class DirWriter : public LayoutWriter {
public:
  DirWriter(fs::path path, bool overwrite) : m_path(std::move(path)), m_partial(m_path.string() + ".partial")
  {
    if (!overwrite && fs::exists(m_path)) throw Error(Errc::io, m_path.string() + ": already exists");
    fs::remove_all(m_partial);
    fs::create_directories(m_partial / "blobs");
  }
  ~DirWriter() override
  {
    if (!m_committed) {
      std::error_code ec;
      fs::remove_all(m_partial, ec);
    }
  }
  void write_index(const std::string& index_json) override { m_index = index_json; }
  void write_blob(const Descriptor& desc, Reader& content) override
  {
    fs::path dir = m_partial / "blobs" / desc.digest.algorithm();
    {
      std::lock_guard lock(m_mutex);
      fs::create_directories(dir);
    }
    VerifyingReader verified(std::make_unique<ReaderRef>(content), desc.digest, desc.size, desc.digest.str());
    write_file_atomic(dir / desc.digest.hex(), verified);
  }
  bool concurrent() const override { return true; }
  void commit() override
  {
    write_file_atomic(m_partial / "oci-layout", std::string(k_oci_layout_file));
    write_file_atomic(m_partial / "index.json", m_index);
    fsync_dir(m_partial);
    if (fs::exists(m_path)) fs::remove_all(m_path);
    fs::rename(m_partial, m_path);
    fsync_dir(m_path.has_parent_path() ? m_path.parent_path() : fs::path("."));
    m_committed = true;
  }
  const fs::path& path() const override { return m_path; }

private:
  fs::path m_path;
  fs::path m_partial;
  std::string m_index = "{}";
  std::mutex m_mutex;
  bool m_committed = false;
};

class TarWriter : public LayoutWriter {
public:
  TarWriter(fs::path path, bool zstd, bool overwrite) : m_path(std::move(path)), m_partial(m_path.string() + ".partial")
  {
    if (!overwrite && fs::exists(m_path)) throw Error(Errc::io, m_path.string() + ": already exists");
    m_file = std::make_unique<OutputFile>(m_partial);
    m_archive.reset(archive_write_new());
    if (archive_write_set_format_pax_restricted(m_archive.get()) != ARCHIVE_OK) fail("set format");
    archive_write_set_bytes_in_last_block(m_archive.get(), 1);
    if (zstd) {
      if (archive_write_add_filter_zstd(m_archive.get()) != ARCHIVE_OK) fail("zstd filter");
      archive_write_set_filter_option(m_archive.get(), "zstd", "compression-level", "3");
    }
    if (archive_write_open_fd(m_archive.get(), m_file->fd()) != ARCHIVE_OK) fail("open");
  }
  ~TarWriter() override
  {
    if (!m_committed) {
      m_archive.reset();
      m_file.reset();
      std::error_code ec;
      fs::remove(m_partial, ec);
    }
  }
  void write_index(const std::string& index_json) override
  {
    add_entry("oci-layout", std::string(k_oci_layout_file));
    add_entry("index.json", index_json);
  }
  void write_blob(const Descriptor& desc, Reader& content) override
  {
    header(blob_path(desc.digest), desc.size);
    VerifyingReader verified(std::make_unique<ReaderRef>(content), desc.digest, desc.size, desc.digest.str());
    pump(verified, [&](const char* p, std::size_t n) { data(p, n); });
  }
  bool concurrent() const override { return false; }
  void commit() override
  {
    if (archive_write_close(m_archive.get()) != ARCHIVE_OK) fail("close");
    m_archive.reset();
    m_file->commit(m_path);
    m_committed = true;
  }
  const fs::path& path() const override { return m_path; }

private:
  [[noreturn]] void fail(const char* what)
  {
    throw Error(Errc::io, m_partial.string() + ": " + what + ": " + archive_message(m_archive.get()));
  }
  void header(const std::string& name, std::uint64_t size)
  {
    ArchiveEntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e.get(), 0, 0);
    if (archive_write_header(m_archive.get(), e.get()) != ARCHIVE_OK) fail("write header");
  }
  void data(const char* p, std::size_t n)
  {
    while (n > 0) {
      la_ssize_t k = archive_write_data(m_archive.get(), p, n);
      if (k < 0) fail("write");
      p += k;
      n -= static_cast<std::size_t>(k);
    }
  }
  void add_entry(const std::string& name, const std::string& bytes)
  {
    header(name, bytes.size());
    data(bytes.data(), bytes.size());
  }

  fs::path m_path;
  fs::path m_partial;
  std::unique_ptr<OutputFile> m_file;
  ArchiveWritePtr m_archive;
  bool m_committed = false;
};

} // namespace

std::unique_ptr<LayoutWriter> LayoutWriter::create(const fs::path& given, BundleFormat format, bool overwrite)
{
  // "out/" names the directory "out": the partial output goes beside it, never inside.
  fs::path path = given.has_filename() ? given : given.parent_path();
  try {
    if (format == BundleFormat::dir) return std::make_unique<DirWriter>(path, overwrite);
    return std::make_unique<TarWriter>(path, format == BundleFormat::tar_zst, overwrite);
  } catch (...) {
    rethrow_with_context(path.string());
  }
}

// ---------------------------------------------------------------- readers

void LayoutReader::load_index(std::string bytes)
{
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error(Errc::invalid_manifest, m_path.string() + ": index.json is not a JSON object");
  auto it = j.find("manifests");
  if (it != j.end() && !it->is_array())
    throw Error(Errc::invalid_manifest, m_path.string() + ": index.json \"manifests\" is not an array");
  m_entries.clear();
  if (it != j.end()) {
    std::size_t i = 0;
    for (const auto& d : *it)
      m_entries.push_back(Descriptor::from_json(d, m_path.string() + ": index.json manifests[" + std::to_string(i++) + "]"));
  }
  m_index_json = std::move(bytes);
  for (const auto& e : m_entries) m_known.emplace(e.digest, e);
}

std::vector<Descriptor> LayoutReader::missing_manifests()
{
  // Walk the graph from the index entries through what is loaded; collect what is not.
  std::vector<Descriptor> missing;
  std::set<Digest> seen;
  std::vector<Descriptor> stack(m_entries.begin(), m_entries.end());
  while (!stack.empty()) {
    Descriptor d = stack.back();
    stack.pop_back();
    if (!media_type::is_manifest(d.media_type) || !seen.insert(d.digest).second) continue;
    auto bytes = m_metadata.get(d.digest);
    if (!bytes) {
      missing.push_back(d);
      continue;
    }
    for (auto& child : successors(d, *bytes)) {
      m_known.emplace(child.digest, child);
      stack.push_back(child);
    }
  }
  return missing;
}

void LayoutReader::load_manifests_in_place()
{
  for (;;) {
    auto missing = missing_manifests();
    if (missing.empty()) return;
    for (const auto& d : missing) {
      auto blob = fetch(d);
      m_metadata.put(d, read_all(*blob, k_max_manifest_size, m_path.string() + ": " + blob_path(d.digest)));
    }
  }
}

Descriptor LayoutReader::resolve(const std::string& ref)
{
  for (const auto& e : m_entries)
    if (e.annotation(std::string(k_annotation_ref_name)) == ref || e.annotation(std::string(k_annotation_image_name)) == ref)
      return e;
  if (Digest::is_valid(ref)) {
    auto d = Digest::parse(ref);
    if (auto desc = m_metadata.descriptor(d)) return *desc;
  }
  throw Error(Errc::not_found, m_path.string() + ": no manifest named \"" + ref + "\"");
}

std::vector<Descriptor> LayoutReader::referrers(const Descriptor& subject, const std::string& artifact_type)
{
  return m_metadata.referrers(subject, artifact_type);
}

namespace {

class DirReader : public LayoutReader {
public:
  DirReader(const fs::path& path) : LayoutReader(path, BundleFormat::dir)
  {
    if (!fs::is_directory(path)) throw Error(Errc::not_found, path.string() + ": no such bundle directory");
    for (const char* name : {"oci-layout", "index.json"})
      if (fs::is_symlink(path / name))
        throw Error(Errc::invalid_manifest, path.string() + ": entry \"" + name + "\" is a symbolic link");
    FileReader layout(path / "oci-layout");
    check_layout(read_all(layout, 4096, (path / "oci-layout").string()));
    FileReader index(path / "index.json");
    load_index(read_all(index, k_max_index_size, (path / "index.json").string()));
    load_manifests_in_place();
  }

  static void check_layout(const std::string& bytes)
  {
    json j = json::parse(bytes, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("imageLayoutVersion"))
      throw Error(Errc::invalid_manifest, "oci-layout: not an OCI image layout marker");
  }

  std::unique_ptr<Reader> fetch(const Descriptor& desc) override
  {
    if (auto bytes = m_metadata.get(desc.digest))
      return std::make_unique<VerifyingReader>(std::make_unique<StringReader>(*bytes), desc.digest, desc.size,
                                               desc.digest.str());
    fs::path p = m_path / blob_path(desc.digest);
    if (fs::is_symlink(p)) throw Error(Errc::invalid_manifest, p.string() + ": blob is a symbolic link");
    try {
      return std::make_unique<VerifyingReader>(std::make_unique<FileReader>(p), desc.digest, desc.size,
                                               m_path.string() + ": " + desc.digest.str());
    } catch (const Error& e) {
      if (e.code() == Errc::not_found)
        throw Error(Errc::not_found, m_path.string() + ": blob " + desc.digest.str() + " is missing");
      throw;
    }
  }
  bool exists(const Descriptor& desc) override { return fs::is_regular_file(m_path / blob_path(desc.digest)); }
  bool random_access() override { return true; }
  void check_structure() override
  {
    EntryRules rules(m_path.string());
    auto kind = [&](const fs::path& p) {
      auto st = fs::symlink_status(p);
      std::string name = p.lexically_relative(m_path).string();
      if (fs::is_symlink(st)) throw Error(Errc::invalid_manifest, m_path.string() + ": entry \"" + name + "\" is a symbolic link");
      if (!fs::is_directory(st) && !fs::is_regular_file(st))
        throw Error(Errc::invalid_manifest, m_path.string() + ": entry \"" + name + "\" is not a regular file");
      return std::make_pair(name, fs::is_directory(st));
    };
    std::vector<fs::path> todo{m_path};
    while (!todo.empty()) {
      fs::path dir = todo.back();
      todo.pop_back();
      std::vector<fs::path> children;
      for (const auto& e : fs::directory_iterator(dir)) children.push_back(e.path());
      std::sort(children.begin(), children.end());
      for (const auto& p : children) {
        auto [name, is_dir] = kind(p);
        if (is_dir) {
          rules.directory(name);
          todo.push_back(p);
        } else {
          rules.file(name);
        }
      }
    }
  }
  void for_each_blob(const std::set<Digest>& wanted, const std::function<void(const Descriptor&, Reader&)>& fn) override
  {
    for (const auto& d : wanted) {
      auto it = m_known.find(d);
      if (it == m_known.end()) throw Error(Errc::not_found, m_path.string() + ": " + d.str() + " is not in the graph");
      auto r = fetch(it->second);
      fn(it->second, *r);
    }
  }
};

// The regular files of an uncompressed tar, found by seeking from header to header (ustar,
// pax `path`/`size` records, GNU long names): name -> (data offset, size). Applies the
// same entry rules as TarScan (design §8).
struct TarRegion {
  std::uint64_t offset = 0, size = 0;
};

std::uint64_t tar_number(const char* field, std::size_t width)
{
  if (static_cast<unsigned char>(field[0]) & 0x80) {  // base-256
    std::uint64_t v = static_cast<unsigned char>(field[0]) & 0x7f;
    for (std::size_t i = 1; i < width; ++i) v = (v << 8) | static_cast<unsigned char>(field[i]);
    return v;
  }
  std::uint64_t v = 0;
  std::size_t i = 0;
  while (i < width && (field[i] == ' ' || field[i] == '\0')) ++i;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i) v = v * 8 + static_cast<std::uint64_t>(field[i] - '0');
  return v;
}

std::map<std::string, TarRegion> index_plain_tar(const fs::path& path)
{
  auto bad = [&](const std::string& what) { return Error(Errc::invalid_manifest, path.string() + ": " + what); };
  UniqueFd file(path, O_RDONLY);
  const int fd = file.get();
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(Errc::io, path.string() + ": " + std::strerror(errno));
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  auto read_at = [&](std::uint64_t off, char* buf, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      ssize_t k = ::pread(fd, buf + done, n - done, static_cast<off_t>(off + done));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) throw bad("truncated tar header at byte " + std::to_string(off));
      done += static_cast<std::size_t>(k);
    }
  };
  std::map<std::string, TarRegion> out;
  EntryRules rules(path.string());
  std::uint64_t pos = 0;
  std::optional<std::string> next_name;
  bool have_next_size = false;
  std::uint64_t next_size = 0;
  char h[512];
  bool end_marker = false;
  while (pos + 512 <= file_size) {
    read_at(pos, h, 512);
    if (std::all_of(h, h + 512, [](char c) { return c == '\0'; })) {  // end of archive
      end_marker = true;
      break;
    }
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
    if (tar_number(h + 148, 8) != sum) throw bad("tar header checksum mismatch at byte " + std::to_string(pos));
    std::uint64_t size = tar_number(h + 124, 12);
    char type = h[156];
    std::uint64_t data = pos + 512;
    auto past_end = [&](const std::string& name) {
      return bad("truncated tar archive: entry \"" + name + "\" at byte " + std::to_string(pos) + " claims " +
                 std::to_string(size) + " bytes, the file ends " + std::to_string(file_size - std::min(file_size, data)) +
                 " bytes after its header");
    };
    if ((type == 'x' || type == 'L') && (size > file_size || data + size > file_size))
      throw past_end(type == 'x' ? "pax extended header" : "GNU long name");
    std::uint64_t next = data + ((size + 511) / 512) * 512;
    if (type == 'x' || type == 'L') {
      if (size > (1u << 20)) throw bad("oversized tar extended header at byte " + std::to_string(pos));
      std::string ext(size, '\0');
      read_at(data, ext.data(), ext.size());
      if (type == 'L') {
        next_name = ext.substr(0, ext.find('\0'));
      } else {
        for (std::size_t p = 0; p < ext.size();) {
          std::size_t sp = ext.find(' ', p);
          if (sp == std::string::npos) break;
          std::size_t len = std::strtoull(ext.c_str() + p, nullptr, 10);
          if (len == 0 || p + len > ext.size()) break;
          std::string rec = ext.substr(sp + 1, p + len - sp - 2);
          auto eq = rec.find('=');
          if (eq != std::string::npos) {
            if (rec.compare(0, eq, "path") == 0) next_name = rec.substr(eq + 1);
            else if (rec.compare(0, eq, "size") == 0) {
              next_size = std::strtoull(rec.c_str() + eq + 1, nullptr, 10);
              have_next_size = true;
            }
          }
          p += len;
        }
      }
      pos = next;
      continue;
    }
    if (type == 'g') {
      pos = next;
      continue;
    }
    std::string name;
    if (next_name) {
      name = *next_name;
    } else {
      std::string base(h, strnlen(h, 100));
      std::string prefix(h + 345, strnlen(h + 345, 155));
      name = prefix.empty() || std::memcmp(h + 257, "ustar", 5) != 0 ? base : prefix + "/" + base;
    }
    if (have_next_size) {
      size = next_size;
      next = data + ((size + 511) / 512) * 512;
    }
    if (size > file_size || data + size > file_size) throw past_end(name);
    next_name.reset();
    have_next_size = false;
    while (name.rfind("./", 0) == 0) name = name.substr(2);
    if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos)
      throw bad("unsafe entry name \"" + name + "\"");
    if (type == '5') {
      rules.directory(name);
      pos = next;
      continue;
    }
    if (type != '0' && type != '\0' && type != '7') throw bad("entry \"" + name + "\" is not a regular file");
    rules.file(name);
    out[name] = {data, size};
    pos = next;
  }
  // A tar ends with zero blocks; bytes that stop short of a header are a cut archive.
  if (!end_marker && pos != file_size) throw bad("truncated tar archive (a header is cut off at byte " + std::to_string(pos) + ")");
  return out;
}

// A zstd file decompressed on its own thread, ahead of the reader by at most a few
// buffers: the tar parsing and hashing of the reader overlap the decompression on the
// second core (issue 5). Feeds libarchive through its read callback.
class ZstdPipe {
public:
  static constexpr std::size_t k_buffer = 1 << 20;
  static constexpr std::size_t k_ahead = 4;

  explicit ZstdPipe(const fs::path& path) : m_path(path), m_file(path, O_RDONLY)
  {
    m_thread = std::thread([this] { run(); });
  }
  ~ZstdPipe()
  {
    {
      std::lock_guard lock(m_mutex);
      m_stop = true;
    }
    m_cv.notify_all();
    m_thread.join();
  }
  ZstdPipe(const ZstdPipe&) = delete;
  ZstdPipe& operator=(const ZstdPipe&) = delete;

  static la_ssize_t read_cb(archive* a, void* self, const void** buf)
  {
    auto* p = static_cast<ZstdPipe*>(self);
    std::unique_lock lock(p->m_mutex);
    p->m_current.clear();
    p->m_cv.notify_all();
    p->m_cv.wait(lock, [&] { return !p->m_ready.empty() || p->m_done; });
    if (p->m_ready.empty()) {
      if (!p->m_error.empty()) {
        archive_set_error(a, EIO, "%s", p->m_error.c_str());
        return -1;
      }
      return 0;
    }
    p->m_current = std::move(p->m_ready.front());
    p->m_ready.pop_front();
    p->m_cv.notify_all();
    *buf = p->m_current.data();
    return static_cast<la_ssize_t>(p->m_current.size());
  }

private:
  void run()
  {
    std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), &ZSTD_freeDCtx);
    std::vector<char> in(ZSTD_DStreamInSize());
    ZSTD_inBuffer ib{in.data(), 0, 0};
    std::string error;
    bool eof = false;
    std::size_t last = 0;  // ZSTD_decompressStream's hint: 0 once a frame is complete
    try {
      if (!dctx) throw std::runtime_error("zstd: out of memory");
      while (!eof || ib.pos < ib.size) {
        std::vector<char> out(k_buffer);
        ZSTD_outBuffer ob{out.data(), out.size(), 0};
        while (ob.pos < ob.size) {
          if (ib.pos == ib.size) {
            if (eof) break;
            ssize_t k = ::read(m_file.get(), in.data(), in.size());
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) throw std::runtime_error(std::string("read: ") + std::strerror(errno));
            if (k == 0) {
              eof = true;
              break;
            }
            ib = {in.data(), static_cast<std::size_t>(k), 0};
          }
          last = ZSTD_decompressStream(dctx.get(), &ob, &ib);
          if (ZSTD_isError(last)) throw std::runtime_error(std::string("zstd: ") + ZSTD_getErrorName(last));
        }
        if (ob.pos == 0) break;
        out.resize(ob.pos);
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [&] { return m_stop || m_ready.size() < k_ahead; });
        if (m_stop) return;
        m_ready.push_back(std::move(out));
        m_cv.notify_all();
      }
      if (last != 0) throw std::runtime_error("zstd: truncated input");
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::lock_guard lock(m_mutex);
    m_error = error;
    m_done = true;
    m_cv.notify_all();
  }

  fs::path m_path;
  UniqueFd m_file;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<std::vector<char>> m_ready;
  std::vector<char> m_current;
  std::string m_error;
  bool m_done = false;
  bool m_stop = false;
  std::thread m_thread;
};

bool has_zstd_magic(const fs::path& path)
{
  std::ifstream in(path, std::ios::binary);
  unsigned char m[4] = {};
  in.read(reinterpret_cast<char*>(m), 4);
  return in.gcount() == 4 && m[0] == 0x28 && m[1] == 0xB5 && m[2] == 0x2F && m[3] == 0xFD;
}

// One streaming pass over a (possibly zstd-compressed) tar.
class TarScan {
public:
  /// `strict`: every entry must follow the layout's entry rules (EntryRules).
  explicit TarScan(const fs::path& path, bool strict = false) : m_path(path)
  {
    if (strict) m_rules.emplace(path.string());
    if (!fs::exists(path)) throw Error(Errc::not_found, path.string() + ": no such bundle file");
    m_archive.reset(archive_read_new());
    archive_read_support_format_tar(m_archive.get());
    int rc;
    if (has_zstd_magic(path)) {
      m_pipe = std::make_unique<ZstdPipe>(path);
      rc = archive_read_open(m_archive.get(), m_pipe.get(), nullptr, &ZstdPipe::read_cb, nullptr);
    } else {
      rc = archive_read_open_filename(m_archive.get(), path.c_str(), 1 << 20);
    }
    if (rc != ARCHIVE_OK) throw Error(Errc::io, path.string() + ": " + archive_message(m_archive.get()));
  }
  /// Next regular-file entry's normalised name; nullopt at the end. Throws on entries a
  /// layout must not contain (design §8).
  std::optional<std::string> next(std::uint64_t& size)
  {
    for (;;) {
      archive_entry* e = nullptr;
      int rc = archive_read_next_header(m_archive.get(), &e);
      if (rc == ARCHIVE_EOF) return std::nullopt;
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
        throw Error(Errc::invalid_manifest, m_path.string() + ": " + archive_message(m_archive.get()));
      const char* raw = archive_entry_pathname(e);
      std::string name = raw ? raw : "";
      while (name.rfind("./", 0) == 0) name = name.substr(2);
      auto type = archive_entry_filetype(e);
      if (type == AE_IFDIR) {
        check_name(name);
        if (m_rules) m_rules->directory(name);
        continue;
      }
      if (type != AE_IFREG || archive_entry_hardlink(e) != nullptr)
        throw Error(Errc::invalid_manifest, m_path.string() + ": entry \"" + name + "\" is not a regular file");
      check_name(name);
      if (m_rules) m_rules->file(name);
      size = static_cast<std::uint64_t>(archive_entry_size(e));
      return name;
    }
  }
  Reader& data() { return m_data; }

private:
  void check_name(const std::string& name)
  {
    if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos)
      throw Error(Errc::invalid_manifest, m_path.string() + ": unsafe entry name \"" + name + "\"");
  }
  struct DataReader : Reader {
    TarScan* self;
    explicit DataReader(TarScan* s) : self(s) {}
    std::size_t read(char* buf, std::size_t n) override
    {
      la_ssize_t k = archive_read_data(self->m_archive.get(), buf, n);
      if (k < 0) throw Error(Errc::io, self->m_path.string() + ": " + archive_message(self->m_archive.get()));
      return static_cast<std::size_t>(k);
    }
  };

  fs::path m_path;
  std::optional<EntryRules> m_rules;
  std::unique_ptr<ZstdPipe> m_pipe;  // outlives m_archive, which reads from it
  ArchiveReadPtr m_archive;
  DataReader m_data{this};
};

class TarReader : public LayoutReader {
public:
  TarReader(const fs::path& path, BundleFormat format) : LayoutReader(path, format)
  {
    if (format == BundleFormat::tar && has_zstd_magic(path)) m_format = BundleFormat::tar_zst;  // named .tar, is zstd
    if (m_format == BundleFormat::tar) {
      // An uncompressed tar: its headers are walked once (every entry checked against the
      // layout rules, a cut archive found), then index.json and the manifests are read in
      // place.
      if (!fs::exists(path)) throw Error(Errc::not_found, path.string() + ": no such bundle file");
      m_regions = index_plain_tar(path);
      auto index = m_regions.find("index.json");
      if (index == m_regions.end()) throw Error(Errc::invalid_manifest, m_path.string() + ": no index.json in the bundle");
      FileReader r(m_path, index->second.offset, index->second.size);
      load_index(read_all(r, k_max_index_size, m_path.string() + ": index.json"));
      load_manifests_in_place();
      return;
    }
    // Passes until every manifest of the graph is loaded: one for bundles written
    // metadata-first (ours), a few for layouts other tools wrote in any order.
    bool have_index = false;
    for (int pass = 0;; ++pass) {
      TarScan scan(m_path, true);
      std::set<Digest> wanted;
      if (have_index)
        for (const auto& d : missing_manifests()) wanted.insert(d.digest);
      // Small JSON blobs seen before anything asked for them (another tool's entry order):
      // kept, within a budget, in case a manifest read later names them.
      std::map<Digest, std::string> candidates;
      std::size_t candidate_bytes = 0;
      std::size_t loaded = 0;
      auto load = [&](const Descriptor& desc, std::string bytes) {
        m_metadata.put(desc, std::move(bytes));
        ++loaded;
        wanted.erase(desc.digest);
        for (auto& child : successors(desc, *m_metadata.get(desc.digest)))
          if (media_type::is_manifest(child.media_type) && !m_metadata.get(child.digest)) {
            m_known.emplace(child.digest, child);
            wanted.insert(child.digest);
          }
      };
      auto drain_candidates = [&] {
        for (bool again = true; again;) {
          again = false;
          for (auto d : std::set<Digest>(wanted))
            if (auto it = candidates.find(d); it != candidates.end()) {
              std::string bytes = std::move(it->second);
              candidates.erase(it);
              const Descriptor& desc = m_known.at(d);
              VerifyingReader r(std::make_unique<StringReader>(std::move(bytes)), desc.digest, desc.size,
                                m_path.string() + ": " + blob_path(d));
              load(desc, read_all(r, k_max_manifest_size, m_path.string() + ": " + blob_path(d)));
              again = true;
            }
        }
      };
      std::uint64_t size = 0;
      while (auto name = scan.next(size)) {
        if (*name == "index.json" && !have_index) {
          load_index(read_all(scan.data(), k_max_index_size, m_path.string() + ": index.json"));
          have_index = true;
          for (const auto& d : missing_manifests()) wanted.insert(d.digest);
          drain_candidates();
        } else if (auto d = digest_from_blob_path(*name); d && !m_metadata.get(*d)) {
          if (wanted.count(*d)) {
            const Descriptor& desc = m_known.at(*d);
            VerifyingReader r(std::make_unique<ReaderRef>(scan.data()), desc.digest, desc.size,
                              m_path.string() + ": " + *name);
            load(desc, read_all(r, k_max_manifest_size, m_path.string() + ": " + *name));
            drain_candidates();
          } else if (size <= k_max_manifest_size && candidate_bytes + size <= k_max_index_size) {
            std::string bytes = read_all(scan.data(), k_max_manifest_size, m_path.string() + ": " + *name);
            auto first = bytes.find_first_not_of(" \t\r\n");
            if (first != std::string::npos && bytes[first] == '{') {
              candidate_bytes += bytes.size();
              candidates.emplace(*d, std::move(bytes));
            }
          }
        }
        if (have_index && wanted.empty()) break;  // the head is read: stop early
      }
      if (!have_index) throw Error(Errc::invalid_manifest, m_path.string() + ": no index.json in the bundle");
      auto missing = missing_manifests();
      if (missing.empty()) break;
      if (loaded == 0 && pass > 0)
        throw Error(Errc::not_found, m_path.string() + ": manifest " + missing.front().digest.str() + " is missing");
    }
  }

  bool random_access() override { return m_format == BundleFormat::tar; }
  void check_structure() override
  {
    if (m_format == BundleFormat::tar) return;  // index_plain_tar checked every entry
    TarScan scan(m_path, true);
    std::uint64_t size = 0;
    while (scan.next(size)) {
    }
  }

  std::unique_ptr<Reader> fetch(const Descriptor& desc) override
  {
    if (auto bytes = m_metadata.get(desc.digest))
      return std::make_unique<VerifyingReader>(std::make_unique<StringReader>(*bytes), desc.digest, desc.size,
                                               desc.digest.str());
    if (m_format == BundleFormat::tar) {
      // An uncompressed tar is read in place: each blob's region, from any thread.
      auto it = m_regions.find(blob_path(desc.digest));
      if (it == m_regions.end()) throw Error(Errc::not_found, m_path.string() + ": blob " + desc.digest.str() + " is missing");
      return std::make_unique<VerifyingReader>(std::make_unique<FileReader>(m_path, it->second.offset, it->second.size),
                                               desc.digest, desc.size, m_path.string() + ": " + blob_path(desc.digest));
    }
    // A compressed tar's blobs are read in one scan; random access to a blob costs a pass
    // (push and verify use for_each_blob instead).
    std::string bytes;
    for_each_blob({desc.digest}, [&](const Descriptor&, Reader& r) { bytes = read_all(r, std::size_t(1) << 30, desc.digest.str()); });
    return std::make_unique<StringReader>(std::move(bytes));
  }
  bool exists(const Descriptor& desc) override
  {
    if (m_metadata.get(desc.digest)) return true;
    if (m_format == BundleFormat::tar) return m_regions.count(blob_path(desc.digest)) != 0;
    if (!m_listing) {
      m_listing.emplace();
      TarScan scan(m_path, true);
      std::uint64_t size = 0;
      while (auto name = scan.next(size))
        if (auto d = digest_from_blob_path(*name)) m_listing->insert(*d);
    }
    return m_listing->count(desc.digest) != 0;
  }
  void for_each_blob(const std::set<Digest>& wanted, const std::function<void(const Descriptor&, Reader&)>& fn) override
  {
    std::set<Digest> left = wanted;
    TarScan scan(m_path, true);
    std::uint64_t size = 0;
    while (!left.empty()) {
      auto name = scan.next(size);
      if (!name) break;
      auto d = digest_from_blob_path(*name);
      if (!d || !left.count(*d)) continue;
      left.erase(*d);
      auto it = m_known.find(*d);
      Descriptor desc = it != m_known.end() ? it->second : Descriptor{"application/octet-stream", *d, size, {}, {}, {}, {}};
      VerifyingReader r(std::make_unique<ReaderRef>(scan.data()), desc.digest, desc.size,
                        m_path.string() + ": " + *name);
      fn(desc, r);
    }
    if (!left.empty()) throw Error(Errc::not_found, m_path.string() + ": blob " + left.begin()->str() + " is missing");
  }

private:
  std::optional<std::set<Digest>> m_listing;
  std::map<std::string, TarRegion> m_regions;  // plain tar: every entry, from the constructor
};

} // namespace

void scan_entries(const fs::path& path, BundleFormat format,
                  const std::function<bool(const std::string&, std::uint64_t, Reader&)>& fn)
{
  if (format != BundleFormat::dir) {
    TarScan scan(path);
    std::uint64_t size = 0;
    while (auto name = scan.next(size))
      if (!fn(*name, size, scan.data())) return;
    return;
  }
  if (!fs::is_directory(path)) throw Error(Errc::not_found, path.string() + ": no such bundle directory");
  std::vector<std::string> names;
  for (const char* top : {"oci-layout", "index.json"})
    if (fs::exists(fs::symlink_status(path / top))) names.push_back(top);
  if (fs::is_symlink(path / "blobs"))
    throw Error(Errc::invalid_manifest, path.string() + ": entry \"blobs\" is a symbolic link");
  if (fs::is_directory(path / "blobs")) {
    std::vector<std::string> blobs;
    for (const auto& e : fs::recursive_directory_iterator(path / "blobs")) {
      if (e.is_symlink())
        throw Error(Errc::invalid_manifest, path.string() + ": entry \"" + e.path().lexically_relative(path).string() + "\" is a symbolic link");
      if (e.is_directory()) continue;
      if (!e.is_regular_file())
        throw Error(Errc::invalid_manifest, path.string() + ": entry \"" + e.path().lexically_relative(path).string() + "\" is not a regular file");
      blobs.push_back(e.path().lexically_relative(path).string());
    }
    std::sort(blobs.begin(), blobs.end());
    names.insert(names.end(), blobs.begin(), blobs.end());
  }
  for (const auto& name : names) {
    fs::path p = path / name;
    if (fs::is_symlink(p) || !fs::is_regular_file(p))
      throw Error(Errc::invalid_manifest, path.string() + ": entry \"" + name + "\" is not a regular file");
    FileReader r(p);
    if (!fn(name, fs::file_size(p), r)) return;
  }
}

std::unique_ptr<LayoutReader> LayoutReader::open(const fs::path& path, BundleFormat format)
{
  if (format == BundleFormat::dir) return std::make_unique<DirReader>(path);
  return std::make_unique<TarReader>(path, format);
}

} // namespace ferry

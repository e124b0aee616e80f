#pragma once
// What the bundle writers of the three formats share (internal to libferry): the plan of the
// whole bundle, the resume sidecar, checkpoints of large blobs, and content checks.
#include <ferry/digest.hpp>
#include <ferry/error.hpp>
#include <ferry/store/bundle_writer.hpp>
#include <ferry/util/file.hpp>

#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>

namespace ferry::detail {

namespace fs = std::filesystem;


constexpr std::size_t k_chunk = 256 << 10;
// zlib's default level: `gzip`'s own, and what skopeo and docker write.
constexpr int k_gzip_level = 6;

[[noreturn]] inline void fail_errno(const fs::path& p, const char* what, int err)
{
  throw Error(errc_for_errno(err), p.string() + ": " + what + ": " + std::strerror(err));
}


inline void pwrite_all(int fd, const fs::path& p, const char* data, std::size_t n, std::uint64_t offset)
{
  while (n > 0) {
    ssize_t k = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (k < 0) {
      if (errno == EINTR) continue;
      fail_errno(p, "write", errno);
    }
    data += k;
    n -= static_cast<std::size_t>(k);
    offset += static_cast<std::uint64_t>(k);
  }
}

struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

inline bool read_exact(Reader& r, char* buf, std::size_t n)
{
  while (n > 0) {
    std::size_t k = r.read(buf, n);
    if (k == 0) return false;
    buf += k;
    n -= k;
  }
  return true;
}

// True when the next `size` bytes of `r` hash to `digest`.
inline bool content_matches(Reader& r, const Digest& digest, std::uint64_t size)
{
  Hasher h(digest.algorithm());
  std::vector<char> buf(k_chunk);
  while (size > 0) {
    auto n = static_cast<std::size_t>(std::min<std::uint64_t>(size, buf.size()));
    if (!read_exact(r, buf.data(), n)) return false;
    h.update(buf.data(), n);
    size -= n;
  }
  return h.finish() == digest;
}

// One file of the bundle at its place in the (uncompressed) tar stream.
struct Entry {
  std::string name;
  Descriptor desc;
  std::optional<std::string> bytes;
  std::uint64_t offset = 0;       ///< of the header
  std::uint32_t header_size = 0;  ///< of header(): 512, or more with a pax header
  /// The entry's tar header (pax header included), made when it is written or compared: a
  /// plan of 20,000 blobs keeps no 10 MiB of headers (issue 18).
  std::string header() const { return tar_header(name, desc.size); }
  std::uint64_t data_offset() const { return offset + header_size; }
  std::uint64_t end() const { return data_offset() + desc.size + tar_padding(desc.size); }
};

// True when `r` continues with exactly this entry: header, content, zero padding.
inline bool entry_matches(Reader& r, const Entry& e)
{
  try {
    const std::string header = e.header();
    std::string h(header.size(), '\0');
    if (!read_exact(r, h.data(), h.size()) || h != header) return false;
    if (!content_matches(r, e.desc.digest, e.desc.size)) return false;
    std::string pad(tar_padding(e.desc.size), '\0');
    if (!read_exact(r, pad.data(), pad.size())) return false;
    return std::all_of(pad.begin(), pad.end(), [](char c) { return c == '\0'; });
  } catch (const Error&) {
    return false;
  }
}

// A large blob records its progress every k_checkpoint bytes (issue 5: a save killed half
// way through one 256 MiB layer keeps what it had).
constexpr std::uint64_t k_checkpoint = 8 << 20;

// Copies `src`, positioned at content byte `start`, through `put(data, n, pos)`, calling
// `checkpoint(pos)` at every multiple of k_checkpoint short of the end.
template <typename Put, typename Check>
void copy_with_checkpoints(Reader& src, std::uint64_t start, std::uint64_t size, Put&& put, Check&& checkpoint)
{
  std::vector<char> buf(k_chunk);
  std::uint64_t pos = start;
  for (;;) {
    std::size_t want = buf.size();
    std::uint64_t room = k_checkpoint - pos % k_checkpoint;
    if (room < want) want = static_cast<std::size_t>(room);
    std::size_t n = src.read(buf.data(), want);
    if (n == 0) return;
    put(buf.data(), n, pos);
    pos += n;
    if (pos % k_checkpoint == 0 && pos < size) checkpoint(pos);
  }
}

// The first `n` bytes of `r` hashed, if there are that many.
inline std::optional<Hasher> hash_prefix(Reader& r, const Digest& digest, std::uint64_t n)
{
  Hasher h(digest.algorithm());
  std::vector<char> buf(k_chunk);
  try {
    while (n > 0) {
      auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n, buf.size()));
      if (!read_exact(r, buf.data(), k)) return std::nullopt;
      h.update(buf.data(), k);
      n -= k;
    }
  } catch (const Error&) {
    return std::nullopt;
  }
  return h;
}

// Blobs an interrupted run got part of: kept bytes and their hash so far.
class Partials {
public:
  struct Partial {
    std::uint64_t size = 0;
    Hasher hasher;
  };
  void put(const Digest& d, std::uint64_t size, Hasher h)
  {
    std::lock_guard lock(m_mutex);
    m_map.insert_or_assign(d, Partial{size, std::move(h)});
  }
  std::uint64_t size(const Digest& d) const
  {
    std::lock_guard lock(m_mutex);
    auto it = m_map.find(d);
    return it == m_map.end() ? 0 : it->second.size;
  }
  std::optional<Partial> take(const Digest& d)
  {
    std::lock_guard lock(m_mutex);
    auto it = m_map.find(d);
    if (it == m_map.end()) return std::nullopt;
    Partial p = std::move(it->second);
    m_map.erase(it);
    return p;
  }

private:
  mutable std::mutex m_mutex;
  std::map<Digest, Partial> m_map;
};

// "partial <digest> <bytes> [...]" sidecar lines: the last one for each digest.
inline std::map<Digest, std::uint64_t> partial_lines(const std::vector<std::string>& lines)
{
  std::map<Digest, std::uint64_t> out;
  for (const auto& line : lines) {
    std::istringstream in(line);
    std::string word, digest;
    std::uint64_t n = 0;
    if (!(in >> word >> digest >> n) || word != "partial" || !Digest::is_valid(digest)) continue;
    out[Digest::parse(digest)] = n;
  }
  return out;
}

// The reader that checks `content` against `desc`: `content` itself when it already does.
inline Reader& checked(Reader& content, const Descriptor& desc, std::optional<VerifyingReader>& holder)
{
  if (auto* v = dynamic_cast<VerifyingReader*>(&content); v && v->checks(desc.digest, desc.size)) return content;
  holder.emplace(std::make_unique<ReaderRef>(content), desc.digest, desc.size, desc.digest.str());
  return *holder;
}

// Copies the content of `e` through `put(data, n, pos)`: from the end of the part `kept`
// from an interrupted run (checked with it as one whole) or from its start, calling
// `checkpoint(pos)` on the way. When the whole does not match its digest, `damaged()` runs
// (the kept or written bytes must not be resumed from) before the error goes on.
template <typename Put, typename Check, typename Damaged>
void copy_entry(const Entry& e, Reader& content, std::optional<Partials::Partial> kept, Put&& put, Check&& checkpoint,
                Damaged&& damaged)
{
  std::uint64_t start = kept ? kept->size : 0;
  std::optional<VerifyingReader> holder;
  if (kept)
    holder.emplace(std::make_unique<ReaderRef>(content), e.desc.digest, e.desc.size, e.desc.digest.str(),
                   std::move(kept->hasher), start);
  Reader& src = kept ? *holder : checked(content, e.desc, holder);
  try {
    copy_with_checkpoints(src, start, e.desc.size, put, checkpoint);
  } catch (const Error& err) {
    if (err.code() == Errc::digest_mismatch || err.code() == Errc::size_exceeds_limit) damaged();
    throw;
  }
}

inline std::vector<std::string> read_lines(const fs::path& p)
{
  std::vector<std::string> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The sidecar: a first line naming the plan, then one line per finished blob, appended.
class Sidecar {
public:
  explicit Sidecar(fs::path path) : m_path(std::move(path)) {}
  void start(const std::string& first_line, const std::vector<std::string>& keep = {})
  {
    std::string text = first_line + "\n";
    for (const auto& l : keep) text += l + "\n";
    fs::path tmp = m_path.string() + ".tmp";
    {
      UniqueFd fd(tmp, O_WRONLY | O_CREAT | O_TRUNC);
      write_all(fd.get(), tmp, text.data(), text.size());
    }
    if (::rename(tmp.c_str(), m_path.c_str()) != 0) fail_errno(m_path, "rename", errno);
    open_append();
  }
  void open_append() { m_fd = UniqueFd(m_path, O_WRONLY | O_APPEND); }
  void append(const std::string& line)
  {
    std::string text = line + "\n";
    std::lock_guard lock(m_mutex);
    write_all(m_fd.get(), m_path, text.data(), text.size());
  }
  void remove()
  {
    m_fd.reset();
    std::error_code ec;
    fs::remove(m_path, ec);
  }

private:
  fs::path m_path;
  UniqueFd m_fd;
  std::mutex m_mutex;
};

// Everything a writer needs to know about the plan.
struct Plan {
  std::vector<Entry> entries;
  std::unordered_map<Digest, std::size_t> index;  ///< blob digest -> entry
  std::uint64_t tar_size = 0;                     ///< with the two end-of-archive blocks
  std::string id;                                 ///< first line of the sidecar
};

inline Plan make_plan(BundleFormat format, const std::string& index_json, std::vector<BundleItem> items, int zstd_level)
{
  Plan plan;
  auto add = [&](std::string name, Descriptor desc, std::optional<std::string> bytes) {
    Entry e;
    e.header_size = static_cast<std::uint32_t>(tar_header(name, desc.size).size());
    e.name = std::move(name);
    e.desc = std::move(desc);
    e.bytes = std::move(bytes);
    e.offset = plan.tar_size;
    plan.tar_size = e.end();
    plan.entries.push_back(std::move(e));
  };
  auto memory = [](const std::string& bytes) {
    Descriptor d;
    d.digest = Digest::of(bytes);
    d.size = bytes.size();
    return d;
  };
  plan.entries.reserve(items.size() + 2);
  plan.index.reserve(items.size());
  add("oci-layout", memory(std::string(k_oci_layout_file)), std::string(k_oci_layout_file));
  add("index.json", memory(index_json), index_json);
  for (auto& item : items) {
    if (plan.index.count(item.desc.digest)) continue;  // one file per digest
    if (item.bytes && (item.bytes->size() != item.desc.size || Digest::of(*item.bytes) != item.desc.digest))
      throw Error(Errc::digest_mismatch, item.desc.digest.str() + ": content does not match its descriptor");
    plan.index.emplace(item.desc.digest, plan.entries.size());
    std::string name = blob_path(item.desc.digest);  // before the descriptor moves
    add(std::move(name), std::move(item.desc), std::move(item.bytes));
  }
  std::vector<BundleItem>().swap(items);
  plan.tar_size += 1024;
  Hasher h;
  for (const auto& e : plan.entries) h.update(e.name + " " + std::to_string(e.desc.size) + " " + e.desc.digest.str() + "\n");
  std::string codec = format == BundleFormat::tar_gz ? "gzip-" + std::to_string(k_gzip_level) : "zstd-" + std::to_string(zstd_level);
  plan.id = std::string("ferry-resume 1 ") + format_name(format) + " " + codec + " " + h.finish().str();
  return plan;
}

// Where an archive writer's bytes go (volumes.cpp): the one partial file `<path>.partial`,
// or volumes `<path>.001`, … split at the size limit (issue 16). Offsets are those of the
// whole bundle file either way.
class Output {
public:
  virtual ~Output() = default;
  /// Writes at `offset` of the bundle file; thread-safe for disjoint ranges.
  virtual void pwrite(const char* data, std::size_t n, std::uint64_t offset) = 0;
  /// Cuts the bundle file to `size` bytes.
  virtual void truncate(std::uint64_t size) = 0;
  /// Reserves `size` bytes and sizes the output to them (a disk too small fails here).
  virtual void reserve(std::uint64_t size) = 0;
  /// fsyncs and renames into place (volumes: each header written first, then older
  /// higher-numbered volumes of the same name removed).
  virtual void commit() = 0;
  /// Closes; uncommitted, the partial output is kept when `keep` (a resume), else removed.
  virtual void close(bool keep) = 0;
  /// The partial file (what a resume reads); -1 for volumes, which do not resume.
  virtual int fd() const = 0;
};

std::unique_ptr<Output> make_output(const fs::path& path, const fs::path& partial, std::optional<std::uint64_t> volume_size);

// The end of an archive bundle's commit (.tar, .tar.zst, .tar.gz, or their volumes): fsync
// and rename the output into place, drop the sidecar, fsync the directory.
inline void commit_output(Output& out, const fs::path& path, Sidecar& sidecar)
{
  out.commit();
  sidecar.remove();
  fsync_dir(path.has_parent_path() ? path.parent_path() : fs::path("."));
}

// What the writers that take blobs in any order, from several threads (.tar, directory),
// share: the plan, the sidecar, blobs continued from a checkpoint, what was written.
class UnorderedPlanWriter : public BundleWriter {
public:
  bool ordered() const override { return false; }
  bool resumable() const override { return m_options.resume && m_progress && !m_committed; }
  std::uint64_t resume_offset(const Digest& digest) const override { return m_partials.size(digest); }

protected:
  UnorderedPlanWriter(fs::path path, Plan plan, const Options& options)
    : BundleWriter(std::move(path)), m_plan(std::move(plan)), m_options(options), m_sidecar(sidecar_path())
  {
  }
  const Entry& entry(const Descriptor& desc) const
  {
    auto it = m_plan.index.find(desc.digest);
    if (it == m_plan.index.end()) throw Error(Errc::invalid_argument, desc.digest.str() + ": not in the bundle's plan");
    return m_plan.entries[it->second];
  }
  // "partial <digest> <bytes>": how far a large blob got (0: start it over).
  void checkpoint(const Entry& e, std::uint64_t pos)
  {
    m_sidecar.append("partial " + e.desc.digest.str() + " " + std::to_string(pos));
    if (pos) m_progress = true;
  }
  void finished(const Digest& digest)
  {
    m_sidecar.append(digest.str());
    std::lock_guard lock(m_mutex);
    m_written.insert(digest);
    m_progress = true;
  }
  void check_all_written() const
  {
    for (const Descriptor& d : m_pending)
      if (!m_written.count(d.digest)) throw Error(Errc::io, m_path.string() + ": blob " + d.digest.str() + " was not written");
  }

  Plan m_plan;
  Options m_options;
  Sidecar m_sidecar;
  std::mutex m_mutex;
  std::set<Digest> m_written;
  Partials m_partials;
  std::atomic<bool> m_progress{false};
  bool m_committed = false;
};

// A compressor of the tar stream that can end a frame anywhere: zstd frames, gzip members.
// Each format's concatenation of frames is one valid stream of that format.
class FrameEncoder {
public:
  virtual ~FrameEncoder() = default;
  /// Compresses `n` bytes, then with `end` ends the frame; output goes to `sink`.
  virtual void run(const char* data, std::size_t n, bool end, const std::function<void(const char*, std::size_t)>& sink) = 0;
  /// Drops what a frame half-written holds: the next byte starts a new frame.
  virtual void reset() = 0;
  /// The one decoder of this format (to check what an interrupted run wrote).
  virtual std::unique_ptr<Reader> decoder(std::unique_ptr<Reader> compressed, const std::string& what) const = 0;
};

// The `.tar.zst` / `.tar.gz` writer (writer_zstd.cpp): ordered, resumable frame by frame.
std::unique_ptr<BundleWriter> make_compressed_writer(fs::path path, Plan plan, const BundleWriter::Options& options,
                                                     std::unique_ptr<FrameEncoder> encoder);

std::unique_ptr<BundleWriter> make_tar_writer(fs::path path, Plan plan, const BundleWriter::Options& options);
std::unique_ptr<BundleWriter> make_zstd_writer(fs::path path, Plan plan, const BundleWriter::Options& options);
std::unique_ptr<BundleWriter> make_gzip_writer(fs::path path, Plan plan, const BundleWriter::Options& options);
std::unique_ptr<BundleWriter> make_dir_writer(fs::path path, Plan plan, const BundleWriter::Options& options);

} // namespace ferry::detail

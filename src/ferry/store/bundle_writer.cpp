#include <ferry/store/bundle_writer.hpp>

#include <ferry/digest.hpp>
#include <ferry/error.hpp>
#include <ferry/util/file.hpp>

#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>

namespace fs = std::filesystem;

namespace ferry {

// ---------------------------------------------------------------- tar headers

namespace {

void put_octal(char* field, std::size_t width, std::uint64_t value)
{
  // width - 1 zero-padded octal digits and a NUL.
  for (std::size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  field[width - 1] = '\0';
}

std::string ustar_block(const std::string& name, std::uint64_t size, char type)
{
  std::string h(512, '\0');
  std::memcpy(&h[0], name.data(), std::min<std::size_t>(name.size(), 100));
  put_octal(&h[100], 8, 0644);
  put_octal(&h[108], 8, 0);
  put_octal(&h[116], 8, 0);
  put_octal(&h[124], 12, size);
  put_octal(&h[136], 12, 0);
  std::memset(&h[148], ' ', 8);
  h[156] = type;
  std::memcpy(&h[257], "ustar", 6);
  std::memcpy(&h[263], "00", 2);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  put_octal(&h[148], 7, sum);
  h[155] = ' ';
  return h;
}

// "<length> key=value\n", where length counts the whole record.
std::string pax_record(const std::string& key, const std::string& value)
{
  std::size_t body = 1 + key.size() + 1 + value.size() + 1;
  std::size_t len = body + 1;
  while (std::to_string(len).size() + body != len) len = std::to_string(len).size() + body;
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

constexpr std::uint64_t k_ustar_max_size = 077777777777ull;

} // namespace

std::string tar_header(const std::string& name, std::uint64_t size)
{
  std::string pax;
  if (name.size() > 100) pax += pax_record("path", name);
  if (size > k_ustar_max_size) pax += pax_record("size", std::to_string(size));
  std::string out;
  if (!pax.empty()) {
    out = ustar_block("PaxHeader/" + name.substr(name.rfind('/') + 1).substr(0, 80), pax.size(), 'x');
    out += pax;
    out.append(tar_padding(pax.size()), '\0');
  }
  out += ustar_block(name, size > k_ustar_max_size ? 0 : size, '0');
  return out;
}

// ---------------------------------------------------------------- shared pieces

namespace {

constexpr std::size_t k_chunk = 256 << 10;

[[noreturn]] void fail_errno(const fs::path& p, const char* what, int err)
{
  throw Error(Errc::io, p.string() + ": " + what + ": " + std::strerror(err));
}


void pwrite_all(int fd, const fs::path& p, const char* data, std::size_t n, std::uint64_t offset)
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

// Reads [offset, offset + length) of an open file.
class RegionReader : public Reader {
public:
  RegionReader(int fd, std::uint64_t offset, std::uint64_t length) : m_fd(fd), m_offset(offset), m_left(length) {}
  std::size_t read(char* buf, std::size_t n) override
  {
    n = static_cast<std::size_t>(std::min<std::uint64_t>(n, m_left));
    if (n == 0) return 0;
    ssize_t k;
    do k = ::pread(m_fd, buf, n, static_cast<off_t>(m_offset));
    while (k < 0 && errno == EINTR);
    if (k < 0) throw Error(Errc::io, std::string("read: ") + std::strerror(errno));
    m_offset += static_cast<std::uint64_t>(k);
    m_left -= static_cast<std::uint64_t>(k);
    return static_cast<std::size_t>(k);
  }

private:
  int m_fd;
  std::uint64_t m_offset, m_left;
};

struct ZstdDCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};
struct ZstdCCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

// The decompressed content of the first `limit` bytes of a zstd file.
class ZstdPrefixReader : public Reader {
public:
  ZstdPrefixReader(int fd, std::uint64_t limit) : m_fd(fd), m_left(limit), m_in(ZSTD_DStreamInSize()), m_dctx(ZSTD_createDCtx())
  {
    if (!m_dctx) throw Error(Errc::io, "zstd: out of memory");
  }
  std::size_t read(char* buf, std::size_t n) override
  {
    for (;;) {
      if (m_ib.pos == m_ib.size && m_left > 0) {
        auto want = static_cast<std::size_t>(std::min<std::uint64_t>(m_in.size(), m_left));
        ssize_t k = ::pread(m_fd, m_in.data(), want, static_cast<off_t>(m_offset));
        if (k <= 0) throw Error(Errc::io, "short read");
        m_offset += static_cast<std::uint64_t>(k);
        m_left -= static_cast<std::uint64_t>(k);
        m_ib = {m_in.data(), static_cast<std::size_t>(k), 0};
      }
      ZSTD_outBuffer ob{buf, n, 0};
      std::size_t r = ZSTD_decompressStream(m_dctx.get(), &ob, &m_ib);
      if (ZSTD_isError(r)) throw Error(Errc::io, std::string("zstd: ") + ZSTD_getErrorName(r));
      if (ob.pos > 0) return ob.pos;
      if (m_ib.pos == m_ib.size && m_left == 0) return 0;
    }
  }

private:
  int m_fd;
  std::uint64_t m_offset = 0, m_left;
  std::vector<char> m_in;
  ZSTD_inBuffer m_ib{nullptr, 0, 0};
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxFree> m_dctx;
};

bool read_exact(Reader& r, char* buf, std::size_t n)
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
bool content_matches(Reader& r, const Digest& digest, std::uint64_t size)
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
  std::string header;
  std::uint64_t offset = 0;  ///< of the header
  std::uint64_t data_offset() const { return offset + header.size(); }
  std::uint64_t end() const { return data_offset() + desc.size + tar_padding(desc.size); }
};

// True when `r` continues with exactly this entry: header, content, zero padding.
bool entry_matches(Reader& r, const Entry& e)
{
  try {
    std::string h(e.header.size(), '\0');
    if (!read_exact(r, h.data(), h.size()) || h != e.header) return false;
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
std::optional<Hasher> hash_prefix(Reader& r, const Digest& digest, std::uint64_t n)
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
std::map<Digest, std::uint64_t> partial_lines(const std::vector<std::string>& lines)
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
Reader& checked(Reader& content, const Descriptor& desc, std::optional<VerifyingReader>& holder)
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

std::vector<std::string> read_lines(const fs::path& p)
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

Plan make_plan(BundleFormat format, const std::string& index_json, std::vector<BundleItem> items, int zstd_level)
{
  Plan plan;
  auto add = [&](std::string name, Descriptor desc, std::optional<std::string> bytes) {
    Entry e;
    e.header = tar_header(name, desc.size);
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
  add("oci-layout", memory(std::string(k_oci_layout_file)), std::string(k_oci_layout_file));
  add("index.json", memory(index_json), index_json);
  for (auto& item : items) {
    if (plan.index.count(item.desc.digest)) continue;  // one file per digest
    if (item.bytes && (item.bytes->size() != item.desc.size || Digest::of(*item.bytes) != item.desc.digest))
      throw Error(Errc::digest_mismatch, item.desc.digest.str() + ": content does not match its descriptor");
    plan.index.emplace(item.desc.digest, plan.entries.size());
    add(blob_path(item.desc.digest), item.desc, std::move(item.bytes));
  }
  plan.tar_size += 1024;
  Hasher h;
  for (const auto& e : plan.entries) h.update(e.name + " " + std::to_string(e.desc.size) + " " + e.desc.digest.str() + "\n");
  plan.id = std::string("ferry-resume 1 ") + format_name(format) + " zstd-" + std::to_string(zstd_level) + " " + h.finish().str();
  return plan;
}

// ---------------------------------------------------------------- .tar

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
    for (const auto& d : m_pending)
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

class TarPlanWriter : public UnorderedPlanWriter {
public:
  TarPlanWriter(fs::path path, Plan plan, const Options& options)
    : UnorderedPlanWriter(std::move(path), std::move(plan), options)
  {
    fs::path partial = partial_path();
    std::set<Digest> claimed;
    std::map<Digest, std::uint64_t> started;
    bool resumed = false;
    if (options.resume) {
      auto lines = read_lines(sidecar_path());
      std::error_code ec;
      if (!lines.empty() && lines[0] == m_plan.id && fs::file_size(partial, ec) == m_plan.tar_size && !ec) {
        resumed = true;
        for (std::size_t i = 1; i < lines.size(); ++i)
          if (Digest::is_valid(lines[i])) claimed.insert(Digest::parse(lines[i]));
        started = partial_lines(lines);
      }
    }
    if (!resumed) {
      std::error_code ec;
      fs::remove(sidecar_path(), ec);
      fs::remove(partial, ec);
    }
    m_fd = UniqueFd(partial, O_RDWR | O_CREAT);
    if (!resumed) {
      // Reserve the space now: a disk too small fails here, before any download.
      if (::fallocate(m_fd.get(), 0, 0, static_cast<off_t>(m_plan.tar_size)) != 0 && errno == ENOSPC)
        throw Error(Errc::io, partial.string() + ": not enough space for " + std::to_string(m_plan.tar_size) + " bytes");
      if (::ftruncate(m_fd.get(), static_cast<off_t>(m_plan.tar_size)) != 0) fail_errno(partial, "truncate", errno);
      m_sidecar.start(m_plan.id);
    } else {
      m_sidecar.open_append();
    }
    for (const auto& e : m_plan.entries) {
      if (e.bytes) {
        std::string block = e.header + *e.bytes + std::string(tar_padding(e.desc.size), '\0');
        pwrite_all(m_fd.get(), partial, block.data(), block.size(), e.offset);
        continue;
      }
      RegionReader region(m_fd.get(), e.offset, e.end() - e.offset);
      if (claimed.count(e.desc.digest) && entry_matches(region, e)) {
        ++m_reused_blobs;
        m_reused_bytes += e.desc.size;
        continue;
      }
      m_pending.push_back(e.desc);
      auto part = started.find(e.desc.digest);
      if (part == started.end() || part->second == 0 || part->second >= e.desc.size) continue;
      RegionReader head(m_fd.get(), e.offset, e.header.size() + part->second);
      std::string h(e.header.size(), '\0');
      if (!read_exact(head, h.data(), h.size()) || h != e.header) continue;
      if (auto hasher = hash_prefix(head, e.desc.digest, part->second)) {
        m_partials.put(e.desc.digest, part->second, std::move(*hasher));
        m_reused_bytes += part->second;
        ++m_continued_blobs;
      }
    }
    m_progress = m_reused_bytes > 0;
  }

  ~TarPlanWriter() override
  {
    if (m_committed) return;
    m_fd.reset();
    if (m_options.resume && m_progress) return;  // kept for a re-run
    m_sidecar.remove();
    std::error_code ec;
    fs::remove(partial_path(), ec);
  }

  void write(const Descriptor& desc, Reader& content) override
  {
    const Entry& e = entry(desc);
    fs::path partial = partial_path();
    auto kept = m_partials.take(e.desc.digest);
    if (!kept) pwrite_all(m_fd.get(), partial, e.header.data(), e.header.size(), e.offset);
    copy_entry(
        e, content, std::move(kept),
        [&](const char* p, std::size_t n, std::uint64_t pos) { pwrite_all(m_fd.get(), partial, p, n, e.data_offset() + pos); },
        [&](std::uint64_t pos) { checkpoint(e, pos); }, [&] { checkpoint(e, 0); });
    std::string pad(tar_padding(e.desc.size), '\0');
    pwrite_all(m_fd.get(), partial, pad.data(), pad.size(), e.data_offset() + e.desc.size);
    finished(e.desc.digest);
  }

  void commit() override
  {
    check_all_written();
    fs::path partial = partial_path();
    std::string end(1024, '\0');
    pwrite_all(m_fd.get(), partial, end.data(), end.size(), m_plan.tar_size - 1024);
    if (::fsync(m_fd.get()) != 0) fail_errno(partial, "fsync", errno);
    m_fd.reset();
    if (::rename(partial.c_str(), m_path.c_str()) != 0) fail_errno(m_path, "rename", errno);
    m_committed = true;
    m_sidecar.remove();
    fsync_dir(m_path.has_parent_path() ? m_path.parent_path() : fs::path("."));
  }

private:
  UniqueFd m_fd;
};

// ---------------------------------------------------------------- .tar.zst

// The tar stream compressed with (multi-threaded) zstd. Every blob written through write()
// ends a zstd frame, and the sidecar records the compressed offset where it ends: a re-run
// keeps the verified prefix of frames and compresses the rest exactly as the first run
// would have.
class ZstdPlanWriter : public BundleWriter {
public:
  ZstdPlanWriter(fs::path path, Plan plan, const Options& options)
    : BundleWriter(std::move(path)), m_plan(std::move(plan)), m_options(options), m_sidecar(sidecar_path()),
      m_out(ZSTD_CStreamOutSize()), m_cctx(ZSTD_createCCtx())
  {
    configure_compressor();

    std::vector<std::size_t> fetched;
    for (std::size_t i = 0; i < m_plan.entries.size(); ++i)
      if (!m_plan.entries[i].bytes) fetched.push_back(i);

    fs::path partial = partial_path();
    std::size_t kept = 0;          // fetched entries taken over
    std::uint64_t kept_offset = 0;  // compressed bytes taken over
    std::vector<std::string> kept_lines;
    std::optional<std::string> part_line;
    if (options.resume && fs::exists(partial)) {
      auto lines = read_lines(sidecar_path());
      if (!lines.empty() && lines[0] == m_plan.id) {
        // Claimed frames: a prefix of the fetched entries with increasing end offsets, then
        // perhaps checkpoints of the next one ("partial <digest> <bytes> <end>", the last wins).
        std::vector<std::uint64_t> ends;
        struct Part {
          std::uint64_t bytes, end;
          std::string line;
        };
        std::optional<Part> part;
        std::error_code ec;
        std::uint64_t file_size = fs::file_size(partial, ec);
        for (std::size_t j = 1; j < lines.size() && ends.size() < fetched.size(); ++j) {
          std::istringstream in(lines[j]);
          std::string word, digest;
          std::uint64_t n = 0, end = 0;
          if (!(in >> word)) break;
          const Entry& next = m_plan.entries[fetched[ends.size()]];
          std::uint64_t floor = ends.empty() ? 0 : ends.back();
          if (word == "partial") {
            if (in >> digest >> n >> end && digest == next.desc.digest.str() && end <= file_size && end > floor) {
              if (n > 0 && n < next.desc.size) part = Part{n, end, lines[j]};
              else part.reset();
            }
            continue;
          }
          if (!(in >> end) || word != next.desc.digest.str() || end > file_size || end <= floor) break;
          ends.push_back(end);
          part.reset();
        }
        if (!ends.empty() || part) {
          UniqueFd fd(partial, O_RDONLY);
          ZstdPrefixReader r(fd.get(), part ? part->end : ends.back());
          std::size_t e = 0;
          bool ok = true;
          for (std::size_t j = 0; ok && j < ends.size(); ++j) {
            for (; ok && e <= fetched[j]; ++e) ok = entry_matches(r, m_plan.entries[e]);
            if (!ok) break;
            kept = j + 1;
            kept_offset = ends[j];
            kept_lines.push_back(lines[j + 1]);
          }
          if (ok && part) {
            // The entries before the cut-off blob, its header, then its first bytes.
            std::size_t target = fetched[kept];
            for (; ok && e < target; ++e) ok = entry_matches(r, m_plan.entries[e]);
            const Entry& t = m_plan.entries[target];
            std::string h(t.header.size(), '\0');
            try {
              ok = ok && read_exact(r, h.data(), h.size()) && h == t.header;
            } catch (const Error&) {
              ok = false;
            }
            std::optional<Hasher> hasher;
            if (ok) hasher = hash_prefix(r, t.desc.digest, part->bytes);
            char extra;
            bool at_end = false;
            try {
              at_end = hasher && r.read(&extra, 1) == 0;
            } catch (const Error&) {
            }
            if (at_end) {
              m_part.emplace(PartialBlob{t.desc.digest, part->bytes, std::move(*hasher)});
              m_reused_bytes += part->bytes;
              ++m_continued_blobs;
              part_line = part->line;
            }
          }
        }
      }
    }
    m_finished_offset = kept_offset;
    m_finished_cursor = kept ? fetched[kept - 1] + 1 : 0;
    m_lines = kept_lines;
    if (m_part) {
      // The next frames continue the cut-off blob where its last checkpoint left it.
      std::istringstream in(*part_line);
      std::string word, digest;
      std::uint64_t n = 0;
      in >> word >> digest >> n >> kept_offset;
      kept_lines.push_back(*part_line);
    }
    if (kept == 0 && !m_part) {
      std::error_code ec;
      fs::remove(partial, ec);
    }
    m_fd = UniqueFd(partial, O_WRONLY | O_CREAT);
    if (::ftruncate(m_fd.get(), static_cast<off_t>(kept_offset)) != 0) fail_errno(partial, "truncate", errno);
    if (::lseek(m_fd.get(), static_cast<off_t>(kept_offset), SEEK_SET) < 0) fail_errno(partial, "seek", errno);
    m_offset = kept_offset;
    m_sidecar.start(m_plan.id, kept_lines);
    for (std::size_t j = 0; j < fetched.size(); ++j) {
      const auto& desc = m_plan.entries[fetched[j]].desc;
      if (j < kept) {
        ++m_reused_blobs;
        m_reused_bytes += desc.size;
      } else {
        m_pending.push_back(desc);
      }
    }
    m_cursor = m_part ? fetched[kept] : m_finished_cursor;
    m_progress = kept > 0 || m_part;
  }

  std::uint64_t resume_offset(const Digest& digest) const override
  {
    return m_part && m_part->digest == digest ? m_part->bytes : 0;
  }

  ~ZstdPlanWriter() override
  {
    if (m_committed) return;
    m_fd.reset();
    if (m_options.resume && m_progress) return;
    m_sidecar.remove();
    std::error_code ec;
    fs::remove(partial_path(), ec);
  }

  bool ordered() const override { return true; }
  bool resumable() const override { return m_options.resume && m_progress && !m_committed; }

  void write(const Descriptor& desc, Reader& content) override
  {
    if (m_next >= m_pending.size() || m_pending[m_next].digest != desc.digest)
      throw Error(Errc::invalid_argument, desc.digest.str() + ": written out of the bundle's order");
    std::size_t index = m_plan.index.at(desc.digest);
    const Entry& e = m_plan.entries[index];
    std::optional<Partials::Partial> kept;
    if (m_part && m_part->digest == desc.digest) kept.emplace(Partials::Partial{m_part->bytes, std::move(m_part->hasher)});
    m_part.reset();
    if (!kept) {
      emit_memory_entries(index);
      compress(e.header.data(), e.header.size());
    }
    // Frames end at every checkpoint too, so a re-run can continue from there and still
    // produce the same bytes.
    copy_entry(
        e, content, std::move(kept), [&](const char* p, std::size_t n, std::uint64_t) { compress(p, n); },
        [&](std::uint64_t pos) {
          end_frame();
          m_sidecar.append("partial " + e.desc.digest.str() + " " + std::to_string(pos) + " " + std::to_string(m_offset));
          m_progress = true;
        },
        [&] {
          // The kept bytes were damaged, or the blob's bytes were wrong from the start (its
          // checkpoints in this run are of bytes that do not hash to its digest): back to the
          // last finished blob, so that writing this one again starts from its first byte
          // (here, or in a re-run). A new
          // compressor: resetting one whose worker threads are mid-frame crashed libzstd
          // 1.5.4 (freeing one waits for its jobs).
          m_cctx.reset(ZSTD_createCCtx());
          configure_compressor();
          if (::ftruncate(m_fd.get(), static_cast<off_t>(m_finished_offset)) != 0 ||
              ::lseek(m_fd.get(), static_cast<off_t>(m_finished_offset), SEEK_SET) < 0)
            fail_errno(partial_path(), "truncate", errno);
          m_offset = m_finished_offset;
          m_cursor = m_finished_cursor;
          m_sidecar.start(m_plan.id, m_lines);
        });
    std::string pad(tar_padding(e.desc.size), '\0');
    compress(pad.data(), pad.size());
    end_frame();
    std::string line = e.desc.digest.str() + " " + std::to_string(m_offset);
    m_sidecar.append(line);
    m_lines.push_back(line);
    m_cursor = index + 1;
    m_finished_offset = m_offset;
    m_finished_cursor = m_cursor;
    ++m_next;
    m_progress = true;
  }

  void commit() override
  {
    if (m_next != m_pending.size())
      throw Error(Errc::io, m_path.string() + ": blob " + m_pending[m_next].digest.str() + " was not written");
    emit_memory_entries(m_plan.entries.size());
    std::string end(1024, '\0');
    compress(end.data(), end.size());
    end_frame();
    fs::path partial = partial_path();
    if (::fsync(m_fd.get()) != 0) fail_errno(partial, "fsync", errno);
    m_fd.reset();
    if (::rename(partial.c_str(), m_path.c_str()) != 0) fail_errno(m_path, "rename", errno);
    m_committed = true;
    m_sidecar.remove();
    fsync_dir(m_path.has_parent_path() ? m_path.parent_path() : fs::path("."));
  }

private:
  void configure_compressor()
  {
    if (!m_cctx) throw Error(Errc::io, "zstd: out of memory");
    ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_compressionLevel, m_options.zstd_level);
    unsigned threads =
        m_options.zstd_threads ? m_options.zstd_threads : std::max(1u, std::thread::hardware_concurrency());
    // Without multi-threading support in libzstd this fails and compression stays on one thread.
    ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_nbWorkers, static_cast<int>(threads));
    // Smaller jobs than zstd's default (4 windows) keep each worker's buffers, and so the
    // peak memory, small; the output depends on it, so it is fixed.
    ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_jobSize, 2 << 20);
  }

  void emit_memory_entries(std::size_t until)
  {
    for (; m_cursor < until; ++m_cursor) {
      const Entry& e = m_plan.entries[m_cursor];
      if (!e.bytes) throw Error(Errc::invalid_argument, e.desc.digest.str() + ": skipped in the bundle's order");
      std::string block = e.header + *e.bytes + std::string(tar_padding(e.desc.size), '\0');
      compress(block.data(), block.size());
    }
  }
  void compress(const char* data, std::size_t n) { run(data, n, ZSTD_e_continue); }
  void end_frame() { run(nullptr, 0, ZSTD_e_end); }
  void run(const char* data, std::size_t n, ZSTD_EndDirective mode)
  {
    ZSTD_inBuffer in{data, n, 0};
    for (;;) {
      ZSTD_outBuffer out{m_out.data(), m_out.size(), 0};
      std::size_t left = ZSTD_compressStream2(m_cctx.get(), &out, &in, mode);
      if (ZSTD_isError(left)) throw Error(Errc::io, partial_path().string() + ": zstd: " + ZSTD_getErrorName(left));
      write_all(m_fd.get(), partial_path(), m_out.data(), out.pos);
      m_offset += out.pos;
      if (mode == ZSTD_e_continue ? in.pos == in.size : left == 0) return;
    }
  }

  Plan m_plan;
  Options m_options;
  Sidecar m_sidecar;
  UniqueFd m_fd;
  std::vector<char> m_out;
  std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> m_cctx;
  struct PartialBlob {
    Digest digest;
    std::uint64_t bytes;
    Hasher hasher;
  };
  std::uint64_t m_offset = 0;
  std::size_t m_cursor = 0;  ///< next entry to emit
  std::size_t m_next = 0;    ///< next pending blob
  std::optional<PartialBlob> m_part;       ///< the blob an interrupted run was in the middle of
  std::uint64_t m_finished_offset = 0;     ///< compressed bytes up to the last finished blob
  std::size_t m_finished_cursor = 0;       ///< the entry after it
  std::vector<std::string> m_lines;        ///< the sidecar's lines for finished blobs
  bool m_progress = false;
  bool m_committed = false;
};

// ---------------------------------------------------------------- directory

// Blobs land in place under `<path>.partial/blobs/`, each through a temporary name and a
// rename, so a blob file that exists is whole (resume re-hashes it all the same); the
// sidecar names the plan and, for the record, each finished blob. One syncfs
// at the end instead of an fsync per blob.
class DirPlanWriter : public UnorderedPlanWriter {
public:
  DirPlanWriter(fs::path path, Plan plan, const Options& options)
    : UnorderedPlanWriter(std::move(path), std::move(plan), options)
  {
    fs::path partial = partial_path();
    bool resumed = false;
    std::map<Digest, std::uint64_t> started;
    if (options.resume && fs::is_directory(partial)) {
      auto lines = read_lines(sidecar_path());
      resumed = !lines.empty() && lines[0] == m_plan.id;
      if (resumed) started = partial_lines(lines);
    }
    if (!resumed) fs::remove_all(partial);
    std::vector<std::string> reused;
    std::set<std::string> dirs;
    for (const auto& e : m_plan.entries) {
      if (e.name == "oci-layout" || e.name == "index.json") continue;  // at commit
      fs::path file = partial / e.name;
      if (dirs.insert(file.parent_path().string()).second) fs::create_directories(file.parent_path());
      if (e.bytes) {
        put(file, *e.bytes);
        continue;
      }
      bool have = false;
      if (resumed && fs::exists(file)) {
        FileReader r(file);
        have = content_matches(r, e.desc.digest, e.desc.size) && fs::file_size(file) == e.desc.size;
      }
      if (have) {
        ++m_reused_blobs;
        m_reused_bytes += e.desc.size;
        reused.push_back(e.desc.digest.str());
        continue;
      }
      m_pending.push_back(e.desc);
      // A blob cut off after a checkpoint: its temporary file holds at least that much.
      auto part = started.find(e.desc.digest);
      fs::path tmp = file.string() + ".tmp";
      std::error_code ec;
      if (part == started.end() || part->second == 0 || part->second >= e.desc.size || fs::file_size(tmp, ec) < part->second || ec)
        continue;
      FileReader r(tmp);
      if (auto hasher = hash_prefix(r, e.desc.digest, part->second)) {
        m_partials.put(e.desc.digest, part->second, std::move(*hasher));
        m_reused_bytes += part->second;
        ++m_continued_blobs;
        reused.push_back("partial " + e.desc.digest.str() + " " + std::to_string(part->second));
      }
    }
    m_sidecar.start(m_plan.id, reused);
    m_progress = m_reused_bytes > 0;
  }

  ~DirPlanWriter() override
  {
    if (m_committed) return;
    if (m_options.resume && m_progress) return;
    m_sidecar.remove();
    std::error_code ec;
    fs::remove_all(partial_path(), ec);
  }

  void write(const Descriptor& desc, Reader& content) override
  {
    const Entry& e = entry(desc);
    fs::path file = partial_path() / e.name;
    fs::path tmp = file.string() + ".tmp";
    {
      auto kept = m_partials.take(e.desc.digest);
      UniqueFd fd(tmp, O_WRONLY | O_CREAT | (kept ? 0 : O_TRUNC));
      if (kept && ::ftruncate(fd.get(), static_cast<off_t>(kept->size)) != 0) fail_errno(tmp, "truncate", errno);
      // A transfer cut off keeps its temporary file for a re-run; damaged bytes do not.
      copy_entry(
          e, content, std::move(kept),
          [&](const char* p, std::size_t n, std::uint64_t pos) { pwrite_all(fd.get(), tmp, p, n, pos); },
          [&](std::uint64_t pos) { checkpoint(e, pos); },
          [&] {
            std::error_code ec;
            fs::remove(tmp, ec);
            checkpoint(e, 0);
          });
    }
    if (::rename(tmp.c_str(), file.c_str()) != 0) fail_errno(file, "rename", errno);
    finished(desc.digest);  // the sidecar line is for people and tests; resume trusts the files
  }

  void commit() override
  {
    check_all_written();
    fs::path partial = partial_path();
    put(partial / "oci-layout", *m_plan.entries[0].bytes);
    put(partial / "index.json", *m_plan.entries[1].bytes);
    {
      UniqueFd dir(partial, O_RDONLY | O_DIRECTORY);
      if (::syncfs(dir.get()) != 0) fail_errno(partial, "syncfs", errno);
    }
    if (fs::exists(m_path)) fs::remove_all(m_path);
    if (::rename(partial.c_str(), m_path.c_str()) != 0) fail_errno(m_path, "rename", errno);
    m_committed = true;
    m_sidecar.remove();
    fsync_dir(m_path.has_parent_path() ? m_path.parent_path() : fs::path("."));
  }

private:
  static void put(const fs::path& file, const std::string& bytes)
  {
    fs::path tmp = file.string() + ".tmp";
    {
      UniqueFd fd(tmp, O_WRONLY | O_CREAT | O_TRUNC);
      write_all(fd.get(), tmp, bytes.data(), bytes.size());
    }
    if (::rename(tmp.c_str(), file.c_str()) != 0) fail_errno(file, "rename", errno);
  }
};

} // namespace

std::unique_ptr<BundleWriter> BundleWriter::create(const fs::path& given, BundleFormat format, const std::string& index_json,
                                                   std::vector<BundleItem> items, const Options& options)
{
  // "out/" names the directory "out": the partial output goes beside it, never inside.
  fs::path path = given.has_filename() ? given : given.parent_path();
  try {
    Plan plan = make_plan(format, index_json, std::move(items), options.zstd_level);
    switch (format) {
    case BundleFormat::tar: return std::make_unique<TarPlanWriter>(path, std::move(plan), options);
    case BundleFormat::tar_zst: return std::make_unique<ZstdPlanWriter>(path, std::move(plan), options);
    case BundleFormat::dir: return std::make_unique<DirPlanWriter>(path, std::move(plan), options);
    }
    throw Error(Errc::invalid_argument, "unknown bundle format");
  } catch (...) {
    rethrow_with_context(path.string());
  }
}

} // namespace ferry

// Volumes for removable media (issue 16): the bundle file split into `NAME.001`, `NAME.002`,
// …, each a 512-byte text header and a payload; the payloads, concatenated, are the bundle.
// The reading side (a volume set seen as one RandomAccessFile) and the writing side (the
// writers' Output that splits at the size limit) share the header format, here.
#include <ferry/store/volumes.hpp>

#include "writer_plan.hpp"

#include <ferry/digest.hpp>
#include <ferry/error.hpp>
#include <ferry/util/file.hpp>

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace ferry {

namespace {

constexpr std::size_t k_io_chunk = 1 << 20;
constexpr std::string_view k_magic = "ferry-volume 1\n";

std::string upper(std::string s)
{
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool all_digits(std::string_view s, std::size_t max_len = 19)
{
  return !s.empty() && s.size() <= max_len && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::uint64_t to_u64(std::string_view s)
{
  std::uint64_t v = 0;
  for (char c : s) v = v * 10 + static_cast<std::uint64_t>(c - '0');
  return v;
}

std::string random_set_id()
{
  std::random_device rd;
  std::string out;
  static const char* hex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) out += hex[rd() & 15];
  return out;
}

// ---------------------------------------------------------------- the header

struct VolumeHeader {
  std::string set;  ///< 32 hex digits, random per save
  std::uint64_t index = 0;
  std::uint64_t count = 0;
  std::uint64_t offset = 0;  ///< of the payload in the whole bundle
  std::uint64_t size = 0;    ///< of the payload
  std::string sha256;        ///< of the payload, hex
};

std::string encode_header(const VolumeHeader& h)
{
  std::string text = std::string(k_magic) + "set " + h.set + "\nvolume " + std::to_string(h.index) + " of " +
                     std::to_string(h.count) + "\noffset " + std::to_string(h.offset) + "\nsize " + std::to_string(h.size) +
                     "\nsha256 " + h.sha256 + "\n";
  text += "check " + Digest::of(text).hex() + "\n";
  text.resize(k_volume_header_size, '\0');
  return text;
}

// Nullopt for anything but a well-formed header (checked by its own hash).
std::optional<VolumeHeader> parse_header(std::string_view block)
{
  if (block.size() != k_volume_header_size || block.substr(0, k_magic.size()) != k_magic) return std::nullopt;
  auto end = block.find('\0');
  if (end == std::string_view::npos) return std::nullopt;
  for (std::size_t i = end; i < block.size(); ++i)
    if (block[i] != '\0') return std::nullopt;
  std::string_view text = block.substr(0, end);
  auto check_at = text.rfind("check ");
  if (check_at == std::string_view::npos || text.back() != '\n') return std::nullopt;
  if (text.substr(check_at + 6, text.size() - check_at - 7) != Digest::of(text.substr(0, check_at)).hex()) return std::nullopt;
  std::vector<std::string_view> lines;
  for (std::size_t pos = 0; pos < check_at;) {
    auto nl = text.find('\n', pos);
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  if (lines.size() != 6) return std::nullopt;
  auto value = [&](std::size_t i, std::string_view key) -> std::optional<std::string_view> {
    if (lines[i].substr(0, key.size()) != key) return std::nullopt;
    return lines[i].substr(key.size());
  };
  VolumeHeader h;
  auto set = value(1, "set ");
  auto vol = value(2, "volume ");
  auto off = value(3, "offset ");
  auto size = value(4, "size ");
  auto sha = value(5, "sha256 ");
  if (!set || !vol || !off || !size || !sha) return std::nullopt;
  auto is_hex = [](std::string_view s, std::size_t n) {
    return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) && !std::isupper(static_cast<unsigned char>(c)); });
  };
  if (!is_hex(*set, 32) || !is_hex(*sha, 64)) return std::nullopt;
  auto of = vol->find(" of ");
  if (of == std::string_view::npos) return std::nullopt;
  auto index = vol->substr(0, of), count = vol->substr(of + 4);
  if (!all_digits(index, 6) || !all_digits(count, 6) || !all_digits(*off) || !all_digits(*size)) return std::nullopt;
  h.set = std::string(*set);
  h.index = to_u64(index);
  h.count = to_u64(count);
  h.offset = to_u64(*off);
  h.size = to_u64(*size);
  h.sha256 = std::string(*sha);
  if (h.index == 0 || h.count == 0 || h.index > h.count) return std::nullopt;
  return h;
}

// Up to `n` bytes; fewer only at the end of the file.
std::size_t pread_some(int fd, const fs::path& path, char* buf, std::size_t n, std::uint64_t offset)
{
  std::size_t done = 0;
  while (done < n) {
    ssize_t k = ::pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) throw Error(Errc::io, path.string() + ": read: " + std::strerror(errno));
    if (k == 0) break;
    done += static_cast<std::size_t>(k);
  }
  return done;
}

void pread_exact(int fd, const fs::path& path, char* buf, std::size_t n, std::uint64_t offset)
{
  std::size_t got = pread_some(fd, path, buf, n, offset);
  if (got < n)
    throw Error(Errc::io, path.string() + ": the file ends " + std::to_string(n - got) + " bytes early (cut short since it was opened?)");
}

// Opens a file to read, refusing anything but a regular file (a FIFO must not block).
UniqueFd open_regular(const fs::path& path, struct stat& st, const char* missing)
{
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    throw Error(err == ENOENT ? Errc::not_found : Errc::io, path.string() + (err == ENOENT ? missing : ": " + std::string(std::strerror(err))));
  }
  UniqueFd out(fd);
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw Error(Errc::io, path.string() + ": not a regular file");
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return out;
}

std::optional<VolumeHeader> read_header(int fd, std::uint64_t file_size)
{
  if (file_size < k_volume_header_size) return std::nullopt;
  std::string block(k_volume_header_size, '\0');
  std::size_t got = 0;
  while (got < block.size()) {
    ssize_t k = ::pread(fd, block.data() + got, block.size() - got, static_cast<off_t>(got));
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return std::nullopt;
    got += static_cast<std::size_t>(k);
  }
  return parse_header(block);
}

std::string changed_note(const fs::path& path, const struct stat& then, int fd)
{
  struct stat now {};
  if (::fstat(fd, &now) != 0 || (now.st_size == then.st_size && now.st_mtim.tv_sec == then.st_mtim.tv_sec &&
                                 now.st_mtim.tv_nsec == then.st_mtim.tv_nsec))
    return {};
  return path.string() + " was written to after it was opened (" + std::to_string(then.st_size) + " bytes then, " +
         std::to_string(now.st_size) + " now)";
}

// ---------------------------------------------------------------- reading

class PlainFile : public RandomAccessFile {
public:
  explicit PlainFile(const fs::path& path) : m_path(path) { m_fd = open_regular(path, m_opened, ": no such bundle file"); }
  std::uint64_t size() const override { return static_cast<std::uint64_t>(m_opened.st_size); }
  std::size_t pread(void* buffer, std::size_t n, std::uint64_t offset) const override
  {
    std::uint64_t total = size();
    if (offset >= total) return 0;
    n = static_cast<std::size_t>(std::min<std::uint64_t>(n, total - offset));
    return pread_some(m_fd.get(), m_path, static_cast<char*>(buffer), n, offset);
  }
  std::string name() const override { return m_path.string(); }
  int fd_if_unchanged() const override
  {
    struct stat now {};
    if (::fstat(m_fd.get(), &now) != 0 || now.st_ino != m_opened.st_ino || now.st_dev != m_opened.st_dev ||
        now.st_size != m_opened.st_size || now.st_mtim.tv_sec != m_opened.st_mtim.tv_sec ||
        now.st_mtim.tv_nsec != m_opened.st_mtim.tv_nsec || now.st_ctim.tv_sec != m_opened.st_ctim.tv_sec ||
        now.st_ctim.tv_nsec != m_opened.st_ctim.tv_nsec)
      throw Error(Errc::digest_mismatch, m_path.string() + " changed after it was opened and verified; refusing to send from it");
    return m_fd.get();
  }
  std::string change_note() const override
  {
    struct stat now {};
    if (::fstat(m_fd.get(), &now) != 0 ||
        (now.st_size == m_opened.st_size && now.st_mtim.tv_sec == m_opened.st_mtim.tv_sec &&
         now.st_mtim.tv_nsec == m_opened.st_mtim.tv_nsec))
      return {};
    return "the bundle was written to after it was opened (" + std::to_string(m_opened.st_size) + " bytes then, " +
           std::to_string(now.st_size) + " now)";
  }

private:
  fs::path m_path;
  UniqueFd m_fd;
  struct stat m_opened {};
};

class VolumeSet : public RandomAccessFile {
public:
  struct Volume {
    fs::path path;
    UniqueFd fd;
    struct stat opened {};
    VolumeHeader header;
    // The payload's hash, taken as reads go through it front to back.
    mutable std::mutex mutex;
    mutable Hasher hasher;
    mutable std::uint64_t hashed = 0;
    mutable bool done = false, bad = false;
  };

  VolumeSet(fs::path first, std::vector<std::unique_ptr<Volume>> volumes)
    : m_first(std::move(first)), m_volumes(std::move(volumes))
  {
    for (const auto& v : m_volumes) m_size += v->header.size;
  }

  std::uint64_t size() const override { return m_size; }
  std::string name() const override { return m_first.string(); }

  std::size_t pread(void* buffer, std::size_t n, std::uint64_t offset) const override
  {
    if (offset >= m_size) return 0;
    n = static_cast<std::size_t>(std::min<std::uint64_t>(n, m_size - offset));
    auto* out = static_cast<char*>(buffer);
    std::size_t done = 0;
    // The volume holding `offset`: the last whose payload starts at or before it.
    auto it = std::upper_bound(m_volumes.begin(), m_volumes.end(), offset,
                               [](std::uint64_t o, const std::unique_ptr<Volume>& v) { return o < v->header.offset; });
    for (--it; done < n; ++it) {
      const Volume& v = **it;
      std::uint64_t local = offset + done - v.header.offset;
      auto k = static_cast<std::size_t>(std::min<std::uint64_t>(n - done, v.header.size - local));
      pread_exact(v.fd.get(), v.path, out + done, k, k_volume_header_size + local);
      track(v, local, out + done, k);
      done += k;
    }
    return n;
  }

  void check() const override
  {
    std::vector<char> buf(k_io_chunk);
    for (const auto& v : m_volumes) {
      std::lock_guard lock(v->mutex);
      if (!v->done) {
        while (v->hashed < v->header.size) {
          auto k = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), v->header.size - v->hashed));
          pread_exact(v->fd.get(), v->path, buf.data(), k, k_volume_header_size + v->hashed);
          v->hasher.update(buf.data(), k);
          v->hashed += k;
        }
        finish(*v);
      }
      if (v->bad) throw damaged(*v);
    }
  }

  std::string change_note() const override
  {
    for (const auto& v : m_volumes)
      if (auto note = changed_note(v->path, v->opened, v->fd.get()); !note.empty()) return note;
    return {};
  }

private:
  Error damaged(const Volume& v) const
  {
    return Error(Errc::invalid_manifest, v.path.string() + ": volume " + std::to_string(v.header.index) + " of " +
                                             std::to_string(v.header.count) +
                                             " is damaged: its content does not match the SHA-256 in its header");
  }

  void finish(const Volume& v) const
  {
    v.done = true;
    v.bad = v.hasher.finish().hex() != v.header.sha256;
  }

  // Hashes what a read gave when it continues the volume's hashed prefix (a gap of up to
  // 1 MiB, a tar's skipped padding, is read in); a volume read to its end is checked.
  void track(const Volume& v, std::uint64_t local, const char* data, std::size_t n) const
  {
    std::lock_guard lock(v.mutex);
    if (v.done) {
      if (v.bad) throw damaged(v);
      return;
    }
    if (local > v.hashed) {
      if (local - v.hashed > k_io_chunk) return;
      std::vector<char> gap(static_cast<std::size_t>(local - v.hashed));
      pread_exact(v.fd.get(), v.path, gap.data(), gap.size(), k_volume_header_size + v.hashed);
      v.hasher.update(gap.data(), gap.size());
      v.hashed = local;
    }
    if (local + n <= v.hashed) return;
    auto skip = static_cast<std::size_t>(v.hashed - local);
    v.hasher.update(data + skip, n - skip);
    v.hashed = local + n;
    if (v.hashed == v.header.size) {
      finish(v);
      if (v.bad) throw damaged(v);
    }
  }

  fs::path m_first;
  std::vector<std::unique_ptr<Volume>> m_volumes;
  std::uint64_t m_size = 0;
};

} // namespace

// ---------------------------------------------------------------- names and sizes

std::uint64_t parse_size(const std::string& text, const std::string& what)
{
  auto bad = [&]() {
    return Error(Errc::invalid_argument, what + ": invalid size \"" + text +
                                             "\": want bytes, or a number with K, M, G or T (powers of 1024), e.g. 4G or 700M");
  };
  std::size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  std::string whole = text.substr(0, i), fraction;
  if (i < text.size() && text[i] == '.') {
    std::size_t j = ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    fraction = text.substr(j, i - j);
    if (fraction.empty()) throw bad();
  }
  if (whole.empty() || whole.size() > 19 || fraction.size() > 9) throw bad();
  std::string suffix = upper(text.substr(i));
  std::uint64_t mult = 0;
  static const std::pair<const char*, int> units[] = {{"", 0},   {"B", 0},   {"K", 1},   {"KB", 1},  {"KIB", 1},
                                                      {"M", 2},  {"MB", 2},  {"MIB", 2}, {"G", 3},   {"GB", 3},
                                                      {"GIB", 3}, {"T", 4},  {"TB", 4},  {"TIB", 4}};
  for (const auto& [name, power] : units)
    if (suffix == name) mult = 1ull << (10 * power);
  if (mult == 0) throw bad();
  if (mult == 1 && !fraction.empty() && fraction.find_first_not_of('0') != std::string::npos) throw bad();
  std::uint64_t w = to_u64(whole);
  if (w > UINT64_MAX / mult / 2) throw bad();
  std::uint64_t value = w * mult;
  if (!fraction.empty()) {
    std::uint64_t scale = 1;
    for (std::size_t k = 0; k < fraction.size(); ++k) scale *= 10;
    // mult ≤ 2^40 and fraction < 10^9 < 2^30: no overflow.
    value += to_u64(fraction) * mult / scale;
  }
  if (value == 0) throw Error(Errc::invalid_argument, what + ": a size of 0 bytes holds nothing");
  if (value <= k_volume_header_size)
    throw Error(Errc::invalid_argument, what + ": " + text + " is too small: a volume holds a " +
                                            std::to_string(k_volume_header_size) + "-byte header and at least one byte");
  return value;
}

std::optional<fs::path> volume_set_name(const fs::path& first)
{
  std::string s = first.string();
  if (s.size() <= 4 || s.compare(s.size() - 4, 4, ".001") != 0) return std::nullopt;
  return fs::path(s.substr(0, s.size() - 4));
}

bool has_volume_suffix(const fs::path& path)
{
  std::string s = path.filename().string();
  auto dot = s.rfind('.');
  return dot != std::string::npos && dot > 0 && s.size() - dot - 1 >= 3 && all_digits(std::string_view(s).substr(dot + 1), 10);
}

fs::path volume_path(const fs::path& name, unsigned index)
{
  std::string n = std::to_string(index);
  if (n.size() < 3) n.insert(0, 3 - n.size(), '0');
  return fs::path(name.string() + "." + n);
}

bool is_volume(const fs::path& path)
{
  struct stat st {};
  try {
    UniqueFd fd = open_regular(path, st, ": missing");
    std::string block(k_magic.size(), '\0');
    return ::pread(fd.get(), block.data(), block.size(), 0) == static_cast<ssize_t>(block.size()) && block == k_magic;
  } catch (const Error&) {
    return false;
  }
}

std::size_t RandomAccessReader::read(char* buf, std::size_t n)
{
  if (n > m_left) n = static_cast<std::size_t>(m_left);
  if (n == 0) return 0;
  std::size_t k = m_file.pread(buf, n, m_offset);
  if (k == 0) throw Error(Errc::io, m_what + ": the file ends " + std::to_string(m_left) + " bytes early");
  m_offset += k;
  m_left -= k;
  return k;
}

std::unique_ptr<RandomAccessFile> open_file(const fs::path& path) { return std::make_unique<PlainFile>(path); }

std::unique_ptr<RandomAccessFile> open_volumes(const fs::path& first)
{
  auto fail = [](const fs::path& p, const std::string& why) { return Error(Errc::invalid_manifest, p.string() + ": " + why); };
  if (!has_volume_suffix(first)) throw fail(first, "not a volume's name (NAME.001, NAME.002, …)");
  std::string given = first.string();
  fs::path name = given.substr(0, given.rfind('.'));
  std::vector<std::unique_ptr<VolumeSet::Volume>> volumes;
  VolumeHeader head;
  for (std::uint64_t i = 1;; ++i) {
    fs::path path = i == 1 ? first : volume_path(name, static_cast<unsigned>(i));
    auto v = std::make_unique<VolumeSet::Volume>();
    v->path = path;
    try {
      v->fd = open_regular(path, v->opened, i == 1 ? ": no such bundle file" : ": missing");
    } catch (const Error& e) {
      if (e.code() == Errc::not_found && i > 1)
        throw fail(path, "missing: volume " + std::to_string(i) + " of the " + std::to_string(head.count) + " that " +
                             first.string() + " belongs to");
      throw;
    }
    auto file_size = static_cast<std::uint64_t>(v->opened.st_size);
    auto h = read_header(v->fd.get(), file_size);
    if (!h) {
      if (i == 1) throw fail(path, "not a ferry volume (no volume header; give the first volume, NAME.001)");
      if (file_size < k_volume_header_size) throw fail(path, "truncated: " + std::to_string(file_size) + " bytes, less than a volume header");
      throw fail(path, "not a ferry volume, or its header is damaged");
    }
    if (i == 1) {
      head = *h;
      if (h->index != 1) {
        std::string digits = given.substr(given.rfind('.') + 1);
        if (to_u64(digits) == h->index)
          throw fail(path, "is volume " + std::to_string(h->index) + " of " + std::to_string(h->count) +
                               "; give the first volume, " + volume_path(name, 1).string());
        throw fail(path, "holds volume " + std::to_string(h->index) + " of " + std::to_string(h->count) +
                             ", not volume 1 (volumes renamed or reordered)");
      }
      if (h->count > k_max_volumes) throw fail(path, "its header names " + std::to_string(h->count) + " volumes, more than " + std::to_string(k_max_volumes));
    } else {
      if (h->set != head.set)
        throw fail(path, "belongs to another save than " + first.string() + " (volume set " + h->set.substr(0, 12) + ", not " +
                             head.set.substr(0, 12) + "): a foreign volume");
      if (h->index != i)
        throw fail(path, "holds volume " + std::to_string(h->index) + " of " + std::to_string(h->count) + ", not volume " +
                             std::to_string(i) + " (volumes renamed or reordered)");
    }
    std::uint64_t expected_offset = volumes.empty() ? 0 : volumes.back()->header.offset + volumes.back()->header.size;
    if (h->count != head.count || h->offset != expected_offset || h->size == 0 || h->size > UINT64_MAX / 4)
      throw fail(path, "its header does not fit the set (volume " + std::to_string(h->index) + " of " + std::to_string(h->count) + ")");
    if (file_size != k_volume_header_size + h->size) {
      if (file_size < k_volume_header_size + h->size)
        throw fail(path, "truncated: " + std::to_string(file_size) + " bytes, its header says " +
                             std::to_string(k_volume_header_size + h->size));
      throw fail(path, std::to_string(file_size) + " bytes, its header says " + std::to_string(k_volume_header_size + h->size) +
                           " (bytes appended?)");
    }
    v->header = *h;
    volumes.push_back(std::move(v));
    if (i == head.count) break;
  }
  return std::make_unique<VolumeSet>(first, std::move(volumes));
}

// ---------------------------------------------------------------- writing

namespace detail {

namespace {

// The one partial file (`<path>.partial`), renamed into place at commit.
class FileOutput : public Output {
public:
  FileOutput(fs::path path, fs::path partial) : m_path(std::move(path)), m_partial(std::move(partial))
  {
    m_fd = UniqueFd(m_partial, O_RDWR | O_CREAT);
  }
  void pwrite(const char* data, std::size_t n, std::uint64_t offset) override { pwrite_all(m_fd.get(), m_partial, data, n, offset); }
  void truncate(std::uint64_t size) override
  {
    if (::ftruncate(m_fd.get(), static_cast<off_t>(size)) != 0) fail_errno(m_partial, "truncate", errno);
  }
  void reserve(std::uint64_t size) override
  {
    // Reserve the space now: a disk too small fails here, before any download.
    if (::fallocate(m_fd.get(), 0, 0, static_cast<off_t>(size)) != 0 && errno == ENOSPC)
      throw Error(Errc::no_space, m_partial.string() + ": not enough space for " + std::to_string(size) + " bytes");
    truncate(size);
  }
  void commit() override
  {
    if (::fsync(m_fd.get()) != 0) fail_errno(m_partial, "fsync", errno);
    m_fd.reset();
    if (::rename(m_partial.c_str(), m_path.c_str()) != 0) fail_errno(m_path, "rename", errno);
    m_committed = true;
  }
  void close(bool keep) override
  {
    m_fd.reset();
    if (m_committed || keep) return;
    std::error_code ec;
    fs::remove(m_partial, ec);
  }
  int fd() const override { return m_fd.get(); }

private:
  fs::path m_path, m_partial;
  UniqueFd m_fd;
  bool m_committed = false;
};

// Volumes `NAME.001`, … at most `volume_size` bytes each, written as `NAME.00K.partial`
// (header space left empty), headers written and renamed into place at commit.
class VolumeOutput : public Output {
public:
  VolumeOutput(fs::path path, std::uint64_t volume_size) : m_name(std::move(path)), m_capacity(volume_size - k_volume_header_size)
  {
    if (volume_size <= k_volume_header_size)
      throw Error(Errc::invalid_argument, "--max-size " + std::to_string(volume_size) + " is too small for a volume header");
    fs::path first = volume_path(m_name, 1);
    std::error_code ec;
    if (fs::exists(first, ec) && !is_volume(first))
      throw Error(Errc::io, first.string() + ": exists and is not a ferry volume; refusing to replace it");
  }
  ~VolumeOutput() override { close(false); }

  void pwrite(const char* data, std::size_t n, std::uint64_t offset) override
  {
    while (n > 0) {
      std::uint64_t k = offset / m_capacity, local = offset % m_capacity;
      auto m = static_cast<std::size_t>(std::min<std::uint64_t>(n, m_capacity - local));
      Volume& v = volume(k);
      pwrite_all(v.fd.get(), v.tmp, data, m, k_volume_header_size + local);
      {
        std::lock_guard lock(v.mutex);
        // Only writes in order keep the incremental hash; any other is hashed at commit.
        if (!v.stale && local == v.hashed) {
          v.hasher.update(data, m);
          v.hashed += m;
        } else {
          v.stale = true;
        }
      }
      {
        std::lock_guard lock(m_mutex);
        m_size = std::max(m_size, offset + m);
      }
      data += m;
      n -= m;
      offset += m;
    }
  }

  void truncate(std::uint64_t size) override
  {
    std::lock_guard lock(m_mutex);
    std::uint64_t keep = std::max<std::uint64_t>(1, (size + m_capacity - 1) / m_capacity);
    while (m_volumes.size() > keep) {
      auto& v = *m_volumes.back();
      v.fd.reset();
      std::error_code ec;
      fs::remove(v.tmp, ec);
      m_volumes.pop_back();
    }
    if (!m_volumes.empty()) {
      auto& v = *m_volumes.back();
      std::uint64_t local = size - (m_volumes.size() - 1) * m_capacity;
      if (::ftruncate(v.fd.get(), static_cast<off_t>(k_volume_header_size + local)) != 0) fail_errno(v.tmp, "truncate", errno);
      std::lock_guard vlock(v.mutex);
      if (v.hashed > local) v.stale = true;
    }
    m_size = size;
  }

  void reserve(std::uint64_t size) override
  {
    std::uint64_t count = std::max<std::uint64_t>(1, (size + m_capacity - 1) / m_capacity);
    check_count(count);
    for (std::uint64_t k = 0; k < count; ++k) {
      Volume& v = volume(k);
      std::uint64_t bytes = k_volume_header_size + std::min(m_capacity, size - k * m_capacity);
      if (::fallocate(v.fd.get(), 0, 0, static_cast<off_t>(bytes)) != 0 && errno == ENOSPC)
        throw Error(Errc::no_space, v.tmp.string() + ": not enough space for " + std::to_string(bytes) + " bytes");
      if (::ftruncate(v.fd.get(), static_cast<off_t>(bytes)) != 0) fail_errno(v.tmp, "truncate", errno);
    }
    std::lock_guard lock(m_mutex);
    m_size = size;
  }

  void commit() override
  {
    std::uint64_t count = std::max<std::uint64_t>(1, (m_size + m_capacity - 1) / m_capacity);
    truncate(m_size);
    volume(count - 1);
    std::string set = random_set_id();
    std::vector<std::string> sha(count);
    std::vector<std::uint64_t> reread;
    for (std::uint64_t k = 0; k < count; ++k) {
      Volume& v = *m_volumes[k];
      std::uint64_t payload = std::min(m_capacity, m_size - k * m_capacity);
      if (::ftruncate(v.fd.get(), static_cast<off_t>(k_volume_header_size + payload)) != 0) fail_errno(v.tmp, "truncate", errno);
      if (!v.stale && v.hashed == payload)
        sha[k] = v.hasher.finish().hex();
      else
        reread.push_back(k);
    }
    // Written out of order (the .tar writer's blobs from several threads): each such volume
    // read once more and hashed, several at a time (one thread and 1 MiB each).
    if (!reread.empty()) {
      std::atomic<std::size_t> next{0};
      std::vector<std::exception_ptr> errors(reread.size());
      auto work = [&] {
        std::vector<char> buf(k_io_chunk);
        for (std::size_t j; (j = next++) < reread.size();) {
          try {
            std::uint64_t k = reread[j];
            Volume& v = *m_volumes[k];
            std::uint64_t payload = std::min(m_capacity, m_size - k * m_capacity);
            Hasher h;
            for (std::uint64_t at = 0; at < payload;) {
              auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), payload - at));
              pread_exact(v.fd.get(), v.tmp, buf.data(), n, k_volume_header_size + at);
              h.update(buf.data(), n);
              at += n;
            }
            sha[k] = h.finish().hex();
          } catch (...) {
            errors[j] = std::current_exception();
          }
        }
      };
      std::size_t threads = std::min<std::size_t>(reread.size(), std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
      std::vector<std::thread> pool;
      for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
      work();
      for (auto& t : pool) t.join();
      for (auto& e : errors)
        if (e) std::rethrow_exception(e);
    }
    for (std::uint64_t k = 0; k < count; ++k) {
      Volume& v = *m_volumes[k];
      std::uint64_t payload = std::min(m_capacity, m_size - k * m_capacity);
      VolumeHeader header{set, k + 1, count, k * m_capacity, payload, sha[k]};
      std::string block = encode_header(header);
      pwrite_all(v.fd.get(), v.tmp, block.data(), block.size(), 0);
      if (::fsync(v.fd.get()) != 0) fail_errno(v.tmp, "fsync", errno);
    }
    for (std::uint64_t k = 0; k < count; ++k) {
      Volume& v = *m_volumes[k];
      v.fd.reset();
      fs::path final_path = volume_path(m_name, static_cast<unsigned>(k + 1));
      if (::rename(v.tmp.c_str(), final_path.c_str()) != 0) fail_errno(final_path, "rename", errno);
    }
    m_committed = true;
    // Higher-numbered volumes of an older set of the same name would make it look longer.
    for (unsigned i = static_cast<unsigned>(count) + 1; i <= k_max_volumes + 1; ++i) {
      fs::path p = volume_path(m_name, i);
      if (!is_volume(p)) break;
      std::error_code ec;
      fs::remove(p, ec);
    }
  }

  void close(bool) override
  {
    std::lock_guard lock(m_mutex);
    for (auto& v : m_volumes) {
      v->fd.reset();
      if (!m_committed) {
        std::error_code ec;
        fs::remove(v->tmp, ec);
      }
    }
    m_volumes.clear();
  }

  int fd() const override { return -1; }

private:
  struct Volume {
    fs::path tmp;
    UniqueFd fd;
    std::mutex mutex;
    Hasher hasher;
    std::uint64_t hashed = 0;
    bool stale = false;
  };

  void check_count(std::uint64_t count) const
  {
    if (count > k_max_volumes)
      throw Error(Errc::invalid_argument, m_name.string() + ": --max-size " + std::to_string(m_capacity + k_volume_header_size) +
                                              " would make more than " + std::to_string(k_max_volumes) +
                                              " volumes; give a larger size");
  }

  Volume& volume(std::uint64_t k)
  {
    std::lock_guard lock(m_mutex);
    check_count(k + 1);
    while (m_volumes.size() <= k) {
      auto v = std::make_unique<Volume>();
      v->tmp = volume_path(m_name, static_cast<unsigned>(m_volumes.size() + 1)).string() + ".partial";
      v->fd = UniqueFd(v->tmp, O_RDWR | O_CREAT | O_TRUNC);
      m_volumes.push_back(std::move(v));
    }
    return *m_volumes[k];
  }

  fs::path m_name;
  std::uint64_t m_capacity;
  std::mutex m_mutex;
  std::vector<std::unique_ptr<Volume>> m_volumes;
  std::uint64_t m_size = 0;
  bool m_committed = false;
};

} // namespace

std::unique_ptr<Output> make_output(const fs::path& path, const fs::path& partial, std::optional<std::uint64_t> volume_size)
{
  if (volume_size) return std::make_unique<VolumeOutput>(path, *volume_size);
  return std::make_unique<FileOutput>(path, partial);
}

} // namespace detail

} // namespace ferry

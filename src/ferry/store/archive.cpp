#include <ferry/store/archive.hpp>

#include <ferry/error.hpp>
#include <ferry/util/text.hpp>
#include <ferry/store/gzip.hpp>
#include <ferry/store/zstd.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <unistd.h>
#include <vector>

namespace ferry {

namespace {

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

constexpr std::size_t k_chunk = 1 << 20;

} // namespace

struct ArchiveReader::Impl {
  const RandomAccessFile& file;
  std::uint64_t file_size;
  std::string where;
  // The client stream libarchive reads: the file itself (plain tar), read with pread and
  // skipped by seeking, or its decompressed content.
  std::unique_ptr<Reader> decoded;
  std::uint64_t pos = 0;  ///< client stream bytes handed to libarchive
  // The last chunks handed over, with their stream offsets: after the end-of-archive
  // marker, what libarchive read ahead of it is checked from here.
  std::deque<std::pair<std::uint64_t, std::vector<char>>> recent;
  std::unique_ptr<archive, ArchiveReadFree> a;
  std::string current;  ///< name of the entry being read, for messages
  bool at_end = false;

  struct DataReader : Reader {
    Impl* self = nullptr;
    std::size_t read(char* buf, std::size_t n) override
    {
      la_ssize_t k = archive_read_data(self->a.get(), buf, n);
      if (k < 0) throw self->damaged("entry " + quote_name(self->current) + ": ");
      return static_cast<std::size_t>(k);
    }
  } data;

  Impl(const RandomAccessFile& f, Compression compression, std::string w) : file(f), file_size(f.size()), where(std::move(w))
  {
    data.self = this;
    if (compression == Compression::zstd)
      decoded = std::make_unique<ZstdReader>(std::make_unique<RandomAccessReader>(file, 0, file_size, where), where, true);
    else if (compression == Compression::gzip)
      decoded = std::make_unique<GzipReader>(std::make_unique<RandomAccessReader>(file, 0, file_size, where), where);
    a.reset(archive_read_new());
    if (!a) throw Error(Errc::io, where + ": libarchive: out of memory");
    archive_read_support_format_tar(a.get());
    archive_read_set_callback_data(a.get(), this);
    archive_read_set_read_callback(a.get(), &Impl::read_cb);
    if (!decoded) archive_read_set_skip_callback(a.get(), &Impl::skip_cb);
    if (archive_read_open1(a.get()) != ARCHIVE_OK) throw damaged("");
  }

  Error damaged(const std::string& what)
  {
    const char* s = archive_error_string(a.get());
    std::string message = s ? s : "damaged archive";
    // A read error (the file cut or changed under ferry) already names the bundle.
    if (message.rfind(where + ": ", 0) == 0) message = message.substr(where.size() + 2);
    return Error(Errc::invalid_manifest, where + ": " + what + message);
  }

  static la_ssize_t read_cb(archive* ar, void* data, const void** buf)
  {
    auto* self = static_cast<Impl*>(data);
    try {
      // The oldest of the chunks kept is reused: no allocation per read.
      std::vector<char> chunk;
      if (self->recent.size() >= 3) {
        chunk = std::move(self->recent.front().second);
        self->recent.pop_front();
      }
      chunk.resize(k_chunk);
      std::size_t n;
      if (self->decoded) {
        n = self->decoded->read(chunk.data(), chunk.size());
      } else {
        auto want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), self->file_size - std::min(self->pos, self->file_size)));
        RandomAccessReader r(self->file, self->pos, want, self->where);
        n = 0;
        while (n < want) {
          std::size_t k = r.read(chunk.data() + n, want - n);
          if (k == 0) break;
          n += k;
        }
      }
      chunk.resize(n);
      self->recent.emplace_back(self->pos, std::move(chunk));
      while (self->recent.size() > 3) self->recent.pop_front();
      self->pos += n;
      *buf = self->recent.back().second.data();
      return static_cast<la_ssize_t>(n);
    } catch (const std::exception& e) {
      archive_set_error(ar, EIO, "%s", e.what());
      return -1;
    }
  }

  static la_int64_t skip_cb(archive*, void* data, la_int64_t request)
  {
    auto* self = static_cast<Impl*>(data);
    auto n = static_cast<std::uint64_t>(std::max<la_int64_t>(request, 0));
    n = std::min(n, self->file_size - std::min(self->pos, self->file_size));
    self->pos += n;
    return static_cast<la_int64_t>(n);
  }

  // After the end-of-archive marker only zero bytes may follow: what libarchive read ahead
  // (still in `recent`), then the rest of the stream. What is hidden there is named when it
  // looks like a tar header (what `tar --ignore-zeros` would read).
  void check_tail()
  {
    auto consumed = static_cast<std::uint64_t>(archive_filter_bytes(a.get(), 0));
    auto bad = [&](std::uint64_t at, const char* block, std::size_t left) {
      std::string what = where + ": data after the end of the archive (at byte " + std::to_string(at) + ")";
      if (at % 512 == 0 && left >= 512) {
        std::string name(block, strnlen(block, 100));
        if (!name.empty()) what += ", an entry " + quote_name(name) + " hidden there";
      }
      return Error(Errc::invalid_manifest, what);
    };
    for (const auto& [start, bytes] : recent)
      for (std::uint64_t i = std::max(consumed, start); i < start + bytes.size(); ++i)
        if (bytes[static_cast<std::size_t>(i - start)] != '\0') {
          auto off = static_cast<std::size_t>(i - start);
          throw bad(i, bytes.data() + off, bytes.size() - off);
        }
    std::vector<char> buf(k_chunk);
    // Tar pads to its record size (10 KiB by default, a few MiB at most with -b): a longer
    // run of zeros is no padding, and in a compressed stream it costs time without bound
    // (a 1 MB .tar.zst holds tens of GB of zeros).
    constexpr std::uint64_t k_max_tail = 64ull << 20;
    std::uint64_t tail = 0;
    for (;;) {
      if (tail > k_max_tail)
        throw Error(Errc::invalid_manifest, where + ": more than 64 MiB of zeros after the end of the archive; "
                                                    "refusing to read further");
      std::size_t n;
      if (decoded) {
        n = decoded->read(buf.data(), buf.size());
      } else {
        if (pos >= file_size) break;
        n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), file_size - pos));
        RandomAccessReader r(file, pos, n, where);
        for (std::size_t got = 0; got < n;) {
          std::size_t k = r.read(buf.data() + got, n - got);
          if (k == 0) break;
          got += k;
        }
      }
      if (n == 0) break;
      auto it = std::find_if(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n), [](char c) { return c != '\0'; });
      if (it != buf.begin() + static_cast<std::ptrdiff_t>(n)) {
        auto off = static_cast<std::size_t>(it - buf.begin());
        throw bad(pos + off, buf.data() + off, n - off);
      }
      pos += n;
      tail += n;
    }
  }

  std::optional<Entry> next()
  {
    for (;;) {
      if (at_end) return std::nullopt;
      archive_entry* e = nullptr;
      int rc = archive_read_next_header(a.get(), &e);
      if (rc == ARCHIVE_EOF) {
        at_end = true;
        check_tail();
        return std::nullopt;
      }
      // A warning is a header libarchive had to guess at (a malformed pax record, say):
      // nothing is guessed in a bundle. The entry it belongs to is named when known.
      if (rc == ARCHIVE_WARN && e && archive_entry_pathname(e))
        throw damaged("entry " + quote_name(archive_entry_pathname(e)) + ": ");
      if (rc != ARCHIVE_OK) throw damaged(current.empty() ? "" : "after entry " + quote_name(current) + ": ");
      const char* raw = archive_entry_pathname(e);
      current = raw ? raw : "";
      EntryType type = EntryType::other;
      auto ft = archive_entry_filetype(e);
      if (ft == AE_IFDIR) type = EntryType::directory;
      else if (ft == AE_IFLNK) type = EntryType::symlink;
      else if (ft == AE_IFREG && archive_entry_hardlink(e) == nullptr && archive_entry_sparse_reset(e) == 0 &&
               archive_entry_size_is_set(e) && archive_entry_size(e) >= 0)
        type = EntryType::file;
      Entry out;
      out.path = layout_path(current, type, where);
      if (out.path.role == LayoutPath::Role::ignored) continue;
      out.name = current;
      out.size = type == EntryType::file ? static_cast<std::uint64_t>(archive_entry_size(e)) : 0;
      out.offset = static_cast<std::uint64_t>(archive_filter_bytes(a.get(), 0));
      return out;
    }
  }
};

ArchiveReader::ArchiveReader(const RandomAccessFile& file, Compression compression, std::string where)
  : m_impl(std::make_unique<Impl>(file, compression, std::move(where)))
{
}

ArchiveReader::~ArchiveReader() = default;

std::optional<ArchiveReader::Entry> ArchiveReader::next() { return m_impl->next(); }

Reader& ArchiveReader::data() { return m_impl->data; }

} // namespace ferry

// A bundle in an archive (`.tar`, `.tar.zst`, `.tar.gz`): one file descriptor, read through the one
// archive codec. A plain tar is read in place afterwards (pread at the offsets its one pass
// recorded); a compressed one in further streaming passes over the same descriptor.
#include "readers.hpp"

#include <ferry/error.hpp>
#include <ferry/store/archive.hpp>
#include <ferry/store/gzip.hpp>
#include <ferry/store/zstd.hpp>
#include <ferry/util/file.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>

namespace fs = std::filesystem;

namespace ferry::detail {

namespace {

class TarReader : public LayoutReader {
public:
  TarReader(const fs::path& path, const Options& options) : LayoutReader(path, BundleFormat::tar, options)
  {
    // O_NONBLOCK: a FIFO planted where the bundle should be must not block the open.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
      int err = errno;
      throw Error(err == ENOENT ? Errc::not_found : Errc::io,
                  path.string() + (err == ENOENT ? ": no such bundle file" : ": " + std::string(std::strerror(err))));
    }
    m_fd = UniqueFd(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) throw Error(Errc::io, path.string() + ": not a regular file");
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    m_size = static_cast<std::uint64_t>(st.st_size);
    m_opened = st;
    // What the bytes are decides, not the name: a zstd stream named `.tar` is read as one,
    // and so is a gzip stream.
    m_format = has_zstd_magic(fd)   ? BundleFormat::tar_zst
               : has_gzip_magic(fd) ? BundleFormat::tar_gz
                                    : BundleFormat::tar;
  }

  bool random_access() const override { return m_format == BundleFormat::tar; }

  void for_each_blob(const std::vector<Descriptor>& wanted, const std::function<void(const Descriptor&, Reader&)>& fn) override
  {
    std::map<Digest, Descriptor> left;
    for (const auto& d : wanted) left.emplace(d.digest, d);
    std::string where = m_path.string();
    if (random_access()) {
      std::vector<Descriptor> order;
      for (const auto& [d, desc] : left) {
        if (!blob(d)) throw Error(Errc::not_found, where + ": blob " + d.str() + " is missing");
        order.push_back(desc);
      }
      std::sort(order.begin(), order.end(),
                [&](const Descriptor& a, const Descriptor& b) { return blob(a.digest)->offset < blob(b.digest)->offset; });
      for (const auto& desc : order) {
        auto r = fetch(desc);
        fn(desc, *r);
      }
      return;
    }
    bool in_fn = false;
    try {
      walk([&](WalkEntry& e) {
        if (e.path.role != LayoutPath::Role::blob) return true;
        auto it = left.find(*e.path.digest);
        if (it == left.end()) return true;
        Descriptor desc = it->second;
        left.erase(it);
        VerifyingReader r(std::make_unique<ReaderRef>(e.data()), desc.digest, desc.size, where + ": " + e.path.path);
        in_fn = true;
        fn(desc, r);
        in_fn = false;
        return !left.empty();
      });
    } catch (const Error& e) {
      // The archive failed between blobs (cut, or changed since it was opened and scanned):
      // name the blob that was next.
      if (!in_fn)
        for (const BlobKey* k : m_blob_order)
          if (Digest d = k->digest(); left.count(d))
            throw Error(e.code(), std::string(e.what()) + " (while reading up to blob " + d.str() + ")" + change_note());
      if (auto note = change_note(); !note.empty()) throw Error(e.code(), std::string(e.what()) + note);
      throw;
    }
    if (!left.empty()) throw Error(Errc::not_found, where + ": blob " + left.begin()->first.str() + " is missing");
  }

protected:
  void walk(const std::function<bool(WalkEntry&)>& fn) override
  {
    ArchiveReader archive(m_fd.get(), m_size,
                          m_format == BundleFormat::tar_zst  ? ArchiveReader::Compression::zstd
                          : m_format == BundleFormat::tar_gz ? ArchiveReader::Compression::gzip
                                                             : ArchiveReader::Compression::none,
                          m_path.string());
    while (auto e = archive.next()) {
      WalkEntry w{std::move(e->path), std::move(e->name), e->size, e->offset, [&]() -> Reader& { return archive.data(); }};
      if (!fn(w)) return;
    }
  }

  std::unique_ptr<Reader> open_blob(const Digest& digest) override
  {
    const BlobEntry* entry = blob(digest);
    if (!entry || m_format != BundleFormat::tar)
      throw Error(Errc::not_found, m_path.string() + ": blob " + digest.str() + " is missing");
    return std::make_unique<RegionReader>(m_fd.get(), entry->offset, entry->size,
                                          m_path.string() + ": " + blob_path(digest));
  }

private:
  // A pass after the first reads the file again. Written in place since, what it gives is
  // checked all the same (each blob against its digest, the archive by its codec); when a
  // pass fails, this says why.
  std::string change_note() const
  {
    struct stat st {};
    if (::fstat(m_fd.get(), &st) != 0 ||
        (st.st_size == m_opened.st_size && st.st_mtim.tv_sec == m_opened.st_mtim.tv_sec &&
         st.st_mtim.tv_nsec == m_opened.st_mtim.tv_nsec))
      return {};
    return "; the bundle was written to after it was opened (" + std::to_string(m_opened.st_size) + " bytes then, " +
           std::to_string(st.st_size) + " now), so it no longer holds what was read" +
           (m_index_digest ? " (index.json " + m_index_digest->str() + ")" : std::string());
  }

  UniqueFd m_fd;
  std::uint64_t m_size = 0;
  struct stat m_opened {};
};

} // namespace

std::unique_ptr<LayoutReader> open_tar_layout(const fs::path& path, const LayoutReader::Options& options)
{
  return std::make_unique<TarReader>(path, options);
}

} // namespace ferry::detail

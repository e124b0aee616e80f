// A bundle in an archive (`.tar`, `.tar.zst`, `.tar.gz`), or such an archive split into volumes
// (`NAME.001`, …): one RandomAccessFile, read through the one archive codec. A plain tar is read
// in place afterwards (pread at the offsets its one pass recorded); a compressed one in further
// streaming passes over the same file.
#include "readers.hpp"

#include <ferry/digest.hpp>
#include <ferry/error.hpp>
#include <ferry/store/archive.hpp>
#include <ferry/store/volumes.hpp>

#include <algorithm>
#include <cstring>
#include <fcntl.h>

namespace fs = std::filesystem;

namespace ferry::detail {

namespace {

// A blob of a volume set, read in place and checked against its digest (LayoutReader::fetch):
// a mismatch names the damaged volume (RandomAccessFile::check) rather than the blob. No hash
// of its own: the digest check it wraps is the one that finds the damage.
class BlameVolumeReader : public Reader {
public:
  BlameVolumeReader(const RandomAccessFile& file, std::unique_ptr<Reader> inner) : m_file(file), m_inner(std::move(inner)) {}
  std::size_t read(char* buf, std::size_t n) override
  {
    try {
      return m_inner->read(buf, n);
    } catch (const Error& e) {
      if (e.code() == Errc::digest_mismatch) m_file.check();  // throws naming the volume
      throw;
    }
  }

private:
  const RandomAccessFile& m_file;
  std::unique_ptr<Reader> m_inner;
};

class TarReader : public LayoutReader {
public:
  TarReader(const fs::path& path, const Options& options) : LayoutReader(path, BundleFormat::tar, options)
  {
    // `NAME.001`: a volume set, read as the one file its payloads make (a damaged one is
    // named, never read as a tar); `NAME.002`, … only when it is a volume (to say which to
    // give), so a plain bundle named `x.tar.2024` is read as the file it is.
    m_volumes = has_volume_suffix(path) && (volume_set_name(path) || is_volume(path));
    m_file = m_volumes ? open_volumes(path) : open_file(path);
    // What the bytes are decides, not the name: a zstd stream named `.tar` is read as one,
    // and so is a gzip stream.
    unsigned char magic[4] = {};
    std::size_t got = m_file->pread(magic, sizeof magic, 0);
    static const unsigned char zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
    m_format = got == 4 && std::memcmp(magic, zstd_magic, 4) == 0 ? BundleFormat::tar_zst
               : got >= 2 && magic[0] == 0x1f && magic[1] == 0x8b ? BundleFormat::tar_gz
                                                                  : BundleFormat::tar;
  }

  bool random_access() const override { return m_format == BundleFormat::tar; }
  bool parallel_reads() const override { return m_format == BundleFormat::tar && !m_volumes; }

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
    try {
      ArchiveReader archive(*m_file,
                            m_format == BundleFormat::tar_zst  ? ArchiveReader::Compression::zstd
                            : m_format == BundleFormat::tar_gz ? ArchiveReader::Compression::gzip
                                                               : ArchiveReader::Compression::none,
                            m_path.string());
      while (auto e = archive.next()) {
        WalkEntry w{std::move(e->path), std::move(e->name), e->size, e->offset, [&]() -> Reader& { return archive.data(); }};
        if (!fn(w)) return;
      }
      // A volume set read to its end: each volume's payload against its header (free after
      // a pass that read every byte: a compressed one, or a plain tar at ReadDepth::verify).
      if (m_format != BundleFormat::tar || m_options.depth == ReadDepth::verify) m_file->check();
    } catch (const Error& e) {
      // Damaged content in a volume set: name the volume, not what it broke in the archive.
      if (e.code() == Errc::invalid_manifest || e.code() == Errc::digest_mismatch) m_file->check();
      throw;
    }
  }

  std::unique_ptr<Reader> open_blob(const Digest& digest) override
  {
    const BlobEntry* entry = blob(digest);
    if (!entry || m_format != BundleFormat::tar)
      throw Error(Errc::not_found, m_path.string() + ": blob " + digest.str() + " is missing");
    return std::make_unique<RandomAccessReader>(*m_file, entry->offset, entry->size, m_path.string() + ": " + blob_path(digest));
  }

  std::optional<BlobFile> blob_file(const Digest& digest) const override
  {
    if (m_format != BundleFormat::tar || m_volumes) return std::nullopt;
    const BlobEntry* entry = blob(digest);
    if (!entry) throw Error(Errc::not_found, m_path.string() + ": blob " + digest.str() + " is missing");
    int fd = m_file->fd_if_unchanged();
    if (fd < 0) return std::nullopt;
    int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) throw Error(Errc::io, m_path.string() + ": " + std::strerror(errno));
    return BlobFile{UniqueFd(copy), entry->offset, entry->size};
  }

  std::unique_ptr<Reader> fetch(const Descriptor& desc) override
  {
    auto r = LayoutReader::fetch(desc);
    if (!m_volumes) return r;
    return std::make_unique<BlameVolumeReader>(*m_file, std::move(r));
  }

private:
  // A pass after the first reads the file again. Written in place since, what it gives is
  // checked all the same (each blob against its digest, the archive by its codec); when a
  // pass fails, this says why.
  std::string change_note() const
  {
    std::string note = m_file->change_note();
    if (note.empty()) return {};
    return "; " + note + ", so it no longer holds what was read" +
           (m_index_digest ? " (index.json " + m_index_digest->str() + ")" : std::string());
  }

  std::unique_ptr<RandomAccessFile> m_file;
  bool m_volumes = false;
};

} // namespace

std::unique_ptr<LayoutReader> open_tar_layout(const fs::path& path, const LayoutReader::Options& options)
{
  return std::make_unique<TarReader>(path, options);
}

} // namespace ferry::detail

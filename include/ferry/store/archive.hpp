#pragma once
/// The one archive codec (design §8): a tar, zstd- or gzip-compressed tar read through libarchive
/// from the bundle's one file (a regular file or a volume set, store/volumes.hpp). Every command that reads an archive reads it
/// through ArchiveReader, so no two commands can disagree about what an archive holds.
#include <ferry/store/layout_path.hpp>
#include <ferry/store/volumes.hpp>
#include <ferry/util/reader.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace ferry {

class ArchiveReader {
public:
  struct Entry {
    LayoutPath path;           ///< canonical path and role (layout_path)
    std::string name;          ///< the name as stored, for messages
    std::uint64_t size = 0;    ///< content bytes
    std::uint64_t offset = 0;  ///< where the content starts in the (uncompressed) tar stream
  };

  /// How the tar stream is stored in the file.
  enum class Compression { none, zstd, gzip };

  /// Reads the archive in `file` (not owned; read with pread, so several readers may share
  /// it), decompressing it (the one zstd decoder, the one gzip decoder). `where` names the
  /// bundle in messages.
  ArchiveReader(const RandomAccessFile& file, Compression compression, std::string where);
  ~ArchiveReader();
  ArchiveReader(const ArchiveReader&) = delete;
  ArchiveReader& operator=(const ArchiveReader&) = delete;

  /// The next entry that is not ignored (layout_path: `./` itself is skipped), directories
  /// included; nullopt after the last. Throws Errc::invalid_manifest naming the entry for
  /// names and types a layout must not hold (layout_path), for sparse files, for damaged or
  /// cut-off archives and for anything but zero bytes after the end-of-archive marker.
  std::optional<Entry> next();
  /// The content of the entry next() returned last (may be left unread).
  Reader& data();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace ferry

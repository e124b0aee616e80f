#pragma once
/// Volumes for removable media (issue 16): `save --max-size 4G` writes a `.tar`, `.tar.zst` or
/// `.tar.gz` bundle as `NAME.001`, `NAME.002`, … (NAME is the output name, e.g.
/// `bundle.tar.zst.001`), each at most the given size. Each volume starts with a small header
/// naming the set (a random id), its position, the number of volumes, where its payload sits
/// in the whole stream and the payload's SHA-256, so a missing, reordered, truncated or foreign
/// volume is named in one line. The payloads, concatenated, are exactly the bundle file a save
/// without --max-size would have written. verify, inspect and push take the first volume and
/// read across all of them without joining them on disk.
#include <ferry/util/reader.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace ferry {

/// Parses a size: bytes, or with a suffix K, M, G, T (powers of 1024; `KiB`/`MiB`/`GiB`/`TiB`
/// and `KB`… taken as the same), decimals allowed (`1.5G`). Throws Errc::invalid_argument
/// naming `what` (the flag) for anything else, zero, or a volume too small to hold a header and
/// one byte.
std::uint64_t parse_size(const std::string& text, const std::string& what);

/// Bytes at the start of every volume: its header (text, NUL-padded).
inline constexpr std::uint64_t k_volume_header_size = 512;
/// Volumes of one set at most: the reader holds one descriptor per volume.
inline constexpr unsigned k_max_volumes = 500;

/// `NAME.001` → NAME; nullopt for a path that does not end in `.001`.
std::optional<std::filesystem::path> volume_set_name(const std::filesystem::path& first);
/// True when the path ends in `.` and three or more digits (`NAME.001`, `NAME.002`, …): a
/// volume's name, which LayoutReader::open reads as a volume set (open_volumes).
bool has_volume_suffix(const std::filesystem::path& path);
/// True when `path` is a regular file that starts with a ferry volume header.
bool is_volume(const std::filesystem::path& path);
/// `NAME` and a 1-based index → `NAME.001` (three digits up to 999, then as many as needed).
std::filesystem::path volume_path(const std::filesystem::path& name, unsigned index);

/// A readable byte range: a regular file, or a volume set seen as the one file its payloads
/// make. What the archive readers read through (ArchiveReader, the plain tar's in-place blobs).
class RandomAccessFile {
public:
  virtual ~RandomAccessFile() = default;
  virtual std::uint64_t size() const = 0;
  /// Reads up to `n` bytes at `offset` (fewer only at the end); thread-safe. Throws Errc::io
  /// naming the file (the volume) on a read error.
  virtual std::size_t pread(void* buffer, std::size_t n, std::uint64_t offset) const = 0;
  /// For messages: the path (the first volume's, for a set).
  virtual std::string name() const = 0;
  /// A volume set: reads what was not yet read through of each volume and checks its payload
  /// against the SHA-256 in its header; throws Errc::invalid_manifest naming the first
  /// damaged volume. Reads that go through a volume front to back hash it on the way (a
  /// mismatch throws from pread()), so after a sequential pass this reads nothing. A regular
  /// file: nothing to check.
  virtual void check() const {}
  /// Empty, or why what is read now may differ from what was read first (a file written to
  /// since it was opened), for messages.
  virtual std::string change_note() const { return {}; }
  /// A regular file: its descriptor, after checking it is still the file that was opened
  /// (same inode, size, modification and change times; throws Errc::digest_mismatch naming
  /// it when not). A volume set: -1 (no one place holds its bytes).
  virtual int fd_if_unchanged() const { return -1; }
};

/// Reads `[offset, offset + length)` of a RandomAccessFile; one that ends early throws
/// Errc::io naming `what`.
class RandomAccessReader : public Reader {
public:
  RandomAccessReader(const RandomAccessFile& file, std::uint64_t offset, std::uint64_t length, std::string what)
    : m_file(file), m_offset(offset), m_left(length), m_what(std::move(what))
  {
  }
  std::size_t read(char* buf, std::size_t n) override;

private:
  const RandomAccessFile& m_file;
  std::uint64_t m_offset, m_left;
  std::string m_what;
};

/// Opens a regular file (an fd held until destruction).
std::unique_ptr<RandomAccessFile> open_file(const std::filesystem::path& path);
/// Opens the volume set whose first volume is `first`: reads every header, checks set id,
/// positions, count and sizes, holds one fd per volume. Throws Errc::invalid_manifest (one
/// line naming the volume) for a missing, reordered, truncated or foreign volume, and for a
/// first volume that is not one.
std::unique_ptr<RandomAccessFile> open_volumes(const std::filesystem::path& first);

} // namespace ferry

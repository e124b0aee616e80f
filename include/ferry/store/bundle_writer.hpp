#pragma once
/// The bundle writer of `save` (issue 5): every entry is known before the first byte is
/// written, so a `.tar` is laid out up front and blobs are written into their own regions
/// from several threads at once, a `.tar.zst` is streamed through multi-threaded zstd, and
/// a directory gets each blob in place. Each byte is written once and hashed on the way.
///
/// Resume: the partial output (`<path>.partial`) and a sidecar (`<path>.partial.resume`)
/// naming the plan, every blob finished and, every 8 MiB, how far a large blob got,
/// survive an interruption. A writer created for the same plan reuses each finished blob
/// after re-hashing it on disk, and continues a large blob from its last checkpoint, so a
/// re-run only fetches what is missing and ends byte-identical to an uninterrupted run.
#include <ferry/descriptor.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/util/reader.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <functional>
#include <vector>

namespace ferry {

/// One blob of the plan: its content is known now (`bytes`: manifests, trust material) or
/// written later through BundleWriter::write.
struct BundleItem {
  Descriptor desc;
  std::optional<std::string> bytes;
};

/// ustar header block(s) for a regular file `name` of `size` bytes: mode 0644, owner 0,
/// mtime 0; preceded by a pax extended header when the name or size does not fit ustar.
std::string tar_header(const std::string& name, std::uint64_t size);
/// Zero bytes after `size` bytes of data up to the next 512-byte block.
inline std::uint64_t tar_padding(std::uint64_t size) { return (512 - size % 512) % 512; }

class BundleWriter {
public:
  struct Options {
    int zstd_level = 3;
    /// zstd worker threads; 0: one per core.
    unsigned zstd_threads = 0;
    /// Reuse a matching partial output; false starts afresh.
    bool resume = true;
    /// An archive split into volumes `<path>.001`, … of at most this many bytes each
    /// (store/volumes.hpp); refused for a directory. Volumes do not resume (resume is off).
    std::optional<std::uint64_t> volume_size;
  };

  /// Plans the bundle `oci-layout`, `index.json`, then `items` in order, and writes what is
  /// known now. Fails if `path` exists and is not replaceable (see save's check_output).
  static std::unique_ptr<BundleWriter> create(const std::filesystem::path& path, BundleFormat format,
                                              const std::string& index_json, std::vector<BundleItem> items,
                                              const Options& options);
  static std::unique_ptr<BundleWriter> create(const std::filesystem::path& path, BundleFormat format,
                                              const std::string& index_json, std::vector<BundleItem> items)
  {
    return create(path, format, index_json, std::move(items), Options{});
  }
  /// Not committed: keeps the partial output and its sidecar when a blob was finished (a
  /// re-run resumes), removes them otherwise.
  virtual ~BundleWriter() = default;

  /// Blobs still to write, in plan order (items without bytes that were not reused): the
  /// plan's own descriptors, not copies (issue 18), valid as long as the writer.
  const std::vector<std::reference_wrapper<const Descriptor>>& pending() const { return m_pending; }
  /// Blobs and bytes taken over from an interrupted run: whole blobs, and blobs continued
  /// from a checkpoint (their kept bytes count in reused_bytes()).
  std::size_t reused_blobs() const { return m_reused_blobs; }
  std::size_t continued_blobs() const { return m_continued_blobs; }
  std::uint64_t reused_bytes() const { return m_reused_bytes; }
  /// How many leading bytes of pending blob `digest` an interrupted run already wrote and
  /// this writer keeps (0: none). write() then takes the content from that byte on; should
  /// the whole turn out not to match its digest, the kept bytes are dropped and the next
  /// write() of that blob starts from 0.
  virtual std::uint64_t resume_offset(const Digest& digest) const = 0;
  /// True when write() must be called in pending() order, one call at a time (`.tar.zst`);
  /// otherwise write() may be called from several threads in any order.
  virtual bool ordered() const = 0;
  /// Writes one pending blob, checking digest and size while it is copied (a mismatch
  /// throws and leaves nothing recorded for it).
  virtual void write(const Descriptor& desc, Reader& content) = 0;
  /// Checks every pending blob was written, flushes, fsyncs, renames into place and
  /// removes the sidecar.
  virtual void commit() = 0;
  /// True when, destroyed now without commit, the writer would keep its partial output for
  /// a re-run (resume is on and some blob is in it).
  virtual bool resumable() const = 0;

  const std::filesystem::path& path() const { return m_path; }
  std::filesystem::path partial_path() const { return m_path.string() + ".partial"; }
  std::filesystem::path sidecar_path() const { return m_path.string() + ".partial.resume"; }

protected:
  explicit BundleWriter(std::filesystem::path path) : m_path(std::move(path)) {}
  std::filesystem::path m_path;
  std::vector<std::reference_wrapper<const Descriptor>> m_pending;
  std::size_t m_reused_blobs = 0;
  std::size_t m_continued_blobs = 0;
  std::uint64_t m_reused_bytes = 0;
};

} // namespace ferry

#pragma once
/// OCI image layouts as bundles (image-spec v1.1 image-layout.md, design §3): a directory,
/// a plain tar or a zstd-compressed tar.
#include <ferry/store/memory_store.hpp>
#include <ferry/store/target.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace ferry {

enum class BundleFormat { dir, tar, tar_zst };

/// The format a bundle path names: `*.tar` → tar, `*.tar.zst`/`*.tzst` → tar_zst, else dir.
BundleFormat format_from_path(const std::filesystem::path& path);
/// Parses `--format` ("tar", "tar.zst", "dir"); throws Errc::invalid_argument.
BundleFormat parse_format(const std::string& text);
const char* format_name(BundleFormat format);

/// `{"imageLayoutVersion":"1.0.0"}`
inline constexpr std::string_view k_oci_layout_file = "{\"imageLayoutVersion\":\"1.0.0\"}";
inline constexpr std::string_view k_annotation_ref_name = "org.opencontainers.image.ref.name";
inline constexpr std::string_view k_annotation_image_name = "io.containerd.image.name";
inline constexpr std::string_view k_annotation_title = "org.opencontainers.image.title";

/// Path of a blob inside a layout: `blobs/<alg>/<hex>`.
std::string blob_path(const Digest& digest);
/// The digest named by a layout entry path `blobs/<alg>/<hex>`, if it is one.
std::optional<Digest> digest_from_blob_path(std::string_view path);

/// Visits every file entry of a bundle once: in storage order for tar formats (one
/// streaming pass); `oci-layout`, `index.json`, then every file under `blobs/` in name order
/// for a directory. `fn(name, size, data)` may read `data` or not; it returns false to stop.
/// Throws on entries a layout must not contain (design §8: absolute paths, `..`, links,
/// devices) naming them.
void scan_entries(const std::filesystem::path& path, BundleFormat format,
                  const std::function<bool(const std::string& name, std::uint64_t size, Reader& data)>& fn);

/// Writes a new bundle atomically: everything goes to `<path>.partial` and `commit()`
/// fsyncs and renames it into place. Destroying a writer that was not committed removes
/// the partial output. Tar order is the order of the calls (design §3: oci-layout,
/// index.json, manifests, small blobs, layers).
class LayoutWriter {
public:
  virtual ~LayoutWriter() = default;
  /// Creates the writer; fails if `path` exists unless `overwrite`.
  static std::unique_ptr<LayoutWriter> create(const std::filesystem::path& path, BundleFormat format,
                                              bool overwrite = false);
  /// Writes `oci-layout` and `index.json`. For tar formats this must come first.
  virtual void write_index(const std::string& index_json) = 0;
  /// Writes one blob, verified against `desc` while it is copied. Thread-safe for dir.
  virtual void write_blob(const Descriptor& desc, Reader& content) = 0;
  /// True when blobs may be written from several threads at once.
  virtual bool concurrent() const = 0;
  /// Flushes, fsyncs and renames into place.
  virtual void commit() = 0;
  virtual const std::filesystem::path& path() const = 0;
};

/// A bundle opened for reading. On open it reads `index.json` and every manifest reachable
/// from its entries (the graph's metadata) into memory; blobs are read on demand.
class LayoutReader : public Source {
public:
  static std::unique_ptr<LayoutReader> open(const std::filesystem::path& path, BundleFormat format);
  static std::unique_ptr<LayoutReader> open(const std::filesystem::path& path) { return open(path, format_from_path(path)); }

  const std::filesystem::path& path() const { return m_path; }
  BundleFormat format() const { return m_format; }
  /// Raw `index.json` bytes and its parsed entries.
  const std::string& index_json() const { return m_index_json; }
  const std::vector<Descriptor>& index_entries() const { return m_entries; }
  /// Every manifest in the graph, by digest (bytes verified).
  MemoryStore& metadata() { return m_metadata; }

  /// Visits every blob in `wanted` once, in storage order (one streaming pass for tar
  /// formats). The reader passed to `fn` verifies digest and size; `fn` must read it to the
  /// end. Throws Errc::not_found naming the first digest the bundle lacks.
  virtual void for_each_blob(const std::set<Digest>& wanted,
                             const std::function<void(const Descriptor&, Reader&)>& fn) = 0;
  /// True when fetch() reads a blob in place, cheaply and from any thread (a directory, an
  /// uncompressed tar); false when it costs a pass over the bundle (`.tar.zst`).
  virtual bool random_access() = 0;
  /// Checks every entry against the layout's entry rules (design §8: only `oci-layout`,
  /// `index.json` and `blobs/<alg>/<hex>`, regular files, each once) and finds a cut
  /// archive, without hashing content (that is verify's work). A plain tar is checked when
  /// opened and a directory is listed; a `.tar.zst` costs one decompression pass. Throws
  /// Errc::invalid_manifest naming the entry. push and inspect run it before anything else.
  virtual void check_structure() = 0;

  // Source
  Descriptor resolve(const std::string& ref) override;
  std::vector<Descriptor> referrers(const Descriptor& subject, const std::string& artifact_type = {}) override;

protected:
  LayoutReader(std::filesystem::path path, BundleFormat format) : m_path(std::move(path)), m_format(format) {}
  /// Parses index.json bytes into entries; throws naming the bundle.
  void load_index(std::string bytes);
  /// Descriptors of manifests still missing from metadata(), reachable from the index.
  std::vector<Descriptor> missing_manifests();
  /// Loads every manifest reachable from the index with fetch() (readers with random
  /// access: a directory, a plain tar), level by level.
  void load_manifests_in_place();

  std::filesystem::path m_path;
  BundleFormat m_format;
  std::string m_index_json;
  std::vector<Descriptor> m_entries;
  MemoryStore m_metadata;
  /// Descriptor for each digest known from the graph (manifests and blobs).
  std::map<Digest, Descriptor> m_known;
};

} // namespace ferry

#pragma once
/// OCI image layouts as bundles (image-spec v1.1 image-layout.md, design §3): a directory,
/// a plain tar or a zstd-compressed tar, read by one scanner through one entry-path rule
/// (layout_path.hpp) and, for archives, one codec (archive.hpp).
#include <ferry/store/layout_path.hpp>
#include <ferry/store/memory_store.hpp>
#include <ferry/store/target.hpp>
#include <ferry/util/file.hpp>

#include <array>
#include <compare>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace ferry {

enum class BundleFormat { dir, tar, tar_zst, tar_gz };

/// The format a bundle path names: `*.tar` → tar, `*.tar.zst`/`*.tzst` → tar_zst,
/// `*.tar.gz`/`*.tgz` → tar_gz, else dir (case-insensitive).
BundleFormat format_from_path(const std::filesystem::path& path);
/// The format of an output path (save): format_from_path, but a name ending like an
/// archive ferry does not write (`.zip`, `.tar.bz2`, `.tar.xz`, `.gz`, ...) throws
/// Errc::invalid_argument naming the formats, instead of becoming a directory.
BundleFormat format_for_output(const std::filesystem::path& path);
/// Parses `--format` ("tar", "tar.zst"/"tzst", "tar.gz"/"tgz", "dir"); throws
/// Errc::invalid_argument.
BundleFormat parse_format(const std::string& text);
/// "directory, .tar, .tar.zst, .tar.gz/.tgz": the formats, for messages.
inline constexpr std::string_view k_format_names = "a directory, .tar, .tar.zst (.tzst) or .tar.gz (.tgz)";
const char* format_name(BundleFormat format);

/// `{"imageLayoutVersion":"1.0.0"}`
inline constexpr std::string_view k_oci_layout_file = "{\"imageLayoutVersion\":\"1.0.0\"}";
inline constexpr std::string_view k_annotation_ref_name = "org.opencontainers.image.ref.name";
inline constexpr std::string_view k_annotation_image_name = "io.containerd.image.name";
inline constexpr std::string_view k_annotation_title = "org.opencontainers.image.title";

/// index.json may list thousands of roots; bounded all the same (design §8).
inline constexpr std::size_t k_max_index_size = 64 << 20;
/// A signature envelope (notation-go's limit) or a trust material file kept in memory.
inline constexpr std::size_t k_max_kept_blob = 32 << 20;

/// Path of a blob inside a layout: `blobs/<alg>/<hex>`.
std::string blob_path(const Digest& digest);
/// The digest named by a layout entry path `blobs/<alg>/<hex>`, if it is one.
std::optional<Digest> digest_from_blob_path(std::string_view path);

/// The cosign tag an index.json entry is named by (its ref.name, or the tag at the end of a
/// full reference there), if it is one.
std::optional<CosignTag> entry_cosign_tag(const Descriptor& entry);

/// Bounds on the work one bundle can cause (design §8, issue 13 §6). The defaults are far
/// beyond any real bundle; the CLI raises them with --max-entries and --max-problems.
struct BundleLimits {
  /// Entries of an archive (directories included) or files of a directory bundle.
  std::uint64_t max_entries = 500'000;
  /// Integrity problems listed one by one; the rest are only counted.
  std::size_t max_problems = 100;
  /// Signature envelopes and trust files kept in memory for verification, in total.
  std::uint64_t max_kept_bytes = 256ull << 20;
};

struct IntegrityProblem {
  std::string digest;  ///< the blob or manifest concerned, when there is one
  std::string message;
};

/// Problems, the first `limit` listed and all counted.
struct ProblemList {
  std::vector<IntegrityProblem> listed;
  std::size_t total = 0;
  std::size_t limit = 100;
  void add(std::string digest, std::string message);
  bool empty() const { return total == 0; }
};

/// How much of a bundle LayoutReader::open reads before it returns.
enum class ReadDepth {
  /// index.json and every manifest reachable from it. A `.tar.zst` is read only that far
  /// (design §3: inspect of a 100 GB bundle reads only its head); a directory or a plain tar
  /// is checked whole (a listing, a header walk), as with `structure`.
  head,
  /// Every entry checked against the layout's rules and the entry limit; blob contents are
  /// not read (push hashes each blob on its way out).
  structure,
  /// `structure`, and every blob hashed against its name; signature envelopes and the trust
  /// artifact's files are kept in memory for the verifier.
  verify,
};

/// A blob's digest as 65 bytes (algorithm, raw hash) instead of two strings: a bundle of
/// half a million entries is held in a few tens of MiB (design §8, bounded work).
struct BlobKey {
  std::uint8_t algorithm = 0;  ///< 0 sha256, 1 sha512
  std::array<std::uint8_t, 64> bytes{};
  static BlobKey of(const Digest& digest);
  Digest digest() const;
  auto operator<=>(const BlobKey&) const = default;
};

/// A blob entry of the bundle.
struct BlobEntry {
  std::uint64_t size = 0;
  std::uint64_t offset = 0;  ///< plain tar: where its content starts in the file
  bool hashed = false;       ///< ReadDepth::verify: its bytes were hashed ...
  bool intact = false;       ///< ... and matched its name
};

/// Where a blob's bytes lie in one file, to send them without copying (serve): a duplicate
/// descriptor of the file that was read when the bundle was opened, the blob's offset in it
/// and its size.
struct BlobFile {
  UniqueFd fd;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
};

/// A bundle opened for reading, once (design §8): one file descriptor for an archive, one
/// directory descriptor for a directory, held until it is destroyed, so what is read later
/// (push, sign) comes from the file that was read first even if the path is replaced. On
/// open it makes one pass over every entry (layout_path, duplicates, the entry limit) and
/// reads index.json and every manifest reachable from it into memory; those bytes are never
/// read again. Blobs are read on demand, each checked against its digest on the way out.
class LayoutReader : public Source {
public:
  struct Options {
    ReadDepth depth = ReadDepth::structure;
    BundleLimits limits;
  };
  /// Opens and scans the bundle. Throws Errc::invalid_manifest naming the entry for
  /// anything the layout's entry rules refuse, and Errc::not_found for a missing bundle.
  /// At ReadDepth::verify content problems (bytes that do not match their names, index.json
  /// or a manifest that does not parse) are collected in problems(); at the other depths
  /// the first one is thrown.
  static std::unique_ptr<LayoutReader> open(const std::filesystem::path& path, BundleFormat format, const Options& options);
  static std::unique_ptr<LayoutReader> open(const std::filesystem::path& path, BundleFormat format)
  {
    return open(path, format, Options{});
  }
  static std::unique_ptr<LayoutReader> open(const std::filesystem::path& path) { return open(path, format_from_path(path)); }

  const std::filesystem::path& path() const { return m_path; }
  /// The format the content turned out to be (a zstd stream named `.tar` is tar_zst).
  BundleFormat format() const { return m_format; }
  /// index.json's exact bytes as read on open, their digest (the bundle's identity), and
  /// its entries.
  const std::string& index_json() const { return m_index_json; }
  const std::optional<Digest>& index_digest() const { return m_index_digest; }
  const std::vector<Descriptor>& index_entries() const { return m_entries; }
  /// Every manifest reachable from index.json through `manifests`, by digest (bytes checked
  /// against their digests).
  MemoryStore& metadata() { return m_metadata; }
  const MemoryStore& metadata() const { return m_metadata; }
  /// Why a manifest reachable from index.json was not loaded although its bytes match its
  /// digest (it does not parse, or is not what its descriptor says); null when it was.
  const std::string* manifest_error(const Digest& digest) const;
  /// ReadDepth::verify: a signature envelope or trust file kept in memory (checked).
  const std::string* kept(const Digest& digest) const;
  /// Every blob entry seen (after a ReadDepth::head open of a `.tar.zst`, only those of its
  /// head): one by digest, all by key, and their digests in storage order.
  const BlobEntry* blob(const Digest& digest) const;
  const std::map<BlobKey, BlobEntry>& blobs() const { return m_blobs; }
  std::vector<Digest> blob_order() const;
  /// Entries seen (files and directories).
  std::uint64_t entry_count() const { return m_entry_count; }
  /// Files of other tools found beside the layout at its top level (`manifest.json` of
  /// `ctr export` and `docker save`, `repositories`), in the order seen: never read, never
  /// pushed (LayoutPath::Role::extra). After a ReadDepth::head open of a compressed tar,
  /// only those in its head.
  const std::vector<std::string>& ignored_entries() const { return m_ignored; }
  /// Content problems found (ReadDepth::verify).
  const ProblemList& problems() const { return m_problems; }
  ProblemList& problems() { return m_problems; }
  const Options& options() const { return m_options; }

  /// Visits every blob of `wanted` once, in storage order (one streaming pass for a
  /// `.tar.zst`). The reader passed to `fn` checks digest and size against the descriptor;
  /// `fn` must read it to the end. Throws Errc::not_found naming the first blob the bundle
  /// lacks.
  virtual void for_each_blob(const std::vector<Descriptor>& wanted,
                             const std::function<void(const Descriptor&, Reader&)>& fn) = 0;
  /// True when fetch() reads a blob in place, cheaply and from any thread (a directory, an
  /// uncompressed tar); false when it costs a pass over the bundle (`.tar.zst`).
  virtual bool random_access() const = 0;
  /// True when blobs can be read in place from several threads at once at no extra cost (a
  /// directory, a plain tar; not a volume set, whose volumes are hashed front to back).
  virtual bool parallel_reads() const { return random_access(); }

  /// A blob's place in one file (a directory or a plain tar), for sending it as it is: the
  /// file must still be the one read when the bundle was opened (a directory's blob file: the
  /// same inode, size, modification and change times as when it was listed; a tar: as when
  /// it was opened), so its bytes are the ones that were hashed; throws Errc::digest_mismatch
  /// naming it when not, Errc::not_found when the bundle lacks the blob. Nullopt for a
  /// format with no such place (compressed, a volume set).
  virtual std::optional<BlobFile> blob_file(const Digest&) const { return std::nullopt; }

  // Source
  std::unique_ptr<Reader> fetch(const Descriptor& desc) override;
  bool exists(const Descriptor& desc) override;
  Descriptor resolve(const std::string& ref) override;
  std::vector<Descriptor> referrers(const Descriptor& subject, const std::string& artifact_type = {}) override;
  /// index.json entries named by cosign tags of `subject` (entry_cosign_tag).
  std::vector<Attachment> attachments(const Descriptor& subject) override;

  /// One entry of a pass over the bundle (internal to the readers and their scanner).
  struct WalkEntry;

protected:
  LayoutReader(std::filesystem::path path, BundleFormat format, Options options)
    : m_path(std::move(path)), m_format(format), m_options(options)
  {
    m_problems.limit = options.limits.max_problems;
  }
  /// One pass over every entry in storage order; `fn` returns false to stop early.
  virtual void walk(const std::function<bool(WalkEntry&)>& fn) = 0;
  /// A blob's content read in place (random access formats), unchecked.
  virtual std::unique_ptr<Reader> open_blob(const Digest& digest) = 0;
  /// The scan: runs walk() and reads what open() promises.
  void scan();

  std::filesystem::path m_path;
  BundleFormat m_format;
  Options m_options;
  std::string m_index_json;
  std::optional<Digest> m_index_digest;
  std::vector<Descriptor> m_entries;
  MemoryStore m_metadata;
  std::map<Digest, std::string> m_kept;
  std::map<Digest, std::string> m_rejected;
  std::map<BlobKey, BlobEntry> m_blobs;
  std::vector<const BlobKey*> m_blob_order;  ///< keys of m_blobs, in storage order
  std::uint64_t m_entry_count = 0;
  std::vector<std::string> m_ignored;
  ProblemList m_problems;
  std::optional<std::multimap<Digest, Attachment>> m_attachments;  ///< subject → cosign tag entries, built on first use

  friend class LayoutScanner;
};

struct LayoutReader::WalkEntry {
  LayoutPath path;
  std::string name;  ///< as stored, for messages
  std::uint64_t size = 0;
  std::uint64_t offset = 0;
  /// Opens the entry's content (at most once; may be left unread).
  std::function<Reader&()> data;
};

} // namespace ferry

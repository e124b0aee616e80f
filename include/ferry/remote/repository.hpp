#pragma once
/// A repository in a registry speaking the OCI distribution-spec v1.1 (design §4 Remote).
#include <ferry/remote/http_client.hpp>
#include <ferry/store/target.hpp>

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::remote {

/// Blobs up to this size are held in memory for upload so the request can be replayed
/// after a 401 or a transient failure; larger ones are streamed once.
inline constexpr std::uint64_t k_replayable_upload_limit = 8 << 20;
/// Larger blobs are uploaded in PATCH chunks of this size (each replayable).
inline constexpr std::size_t k_upload_chunk = 8 << 20;
/// Bound on referrers pages followed through `Link` (design §8: endless pagination). A `Link`
/// to another origin than the registry's, or back to a page already read, is an error at once.
inline constexpr int k_max_referrer_pages = 1000;
/// Tags read through the tags list API before ferry stops listing and asks for each cosign
/// tag by name instead (a repository with more tags than this is rare and slow to list).
inline constexpr std::size_t k_max_listed_tags = 100'000;

class Repository : public Source {
public:
  /// `base_url` is `http(s)://host[:port]`; `name` the repository path.
  Repository(HttpClient& client, std::string base_url, std::string name);

  const std::string& name() const { return m_name; }
  /// "host/name" for messages.
  std::string display() const;

  // Source
  std::unique_ptr<Reader> fetch(const Descriptor& desc) override;
  /// A blob from byte `offset` on, with a Range request (unchecked: the caller hashes).
  std::unique_ptr<Reader> fetch_from(const Descriptor& desc, std::uint64_t offset) override;
  bool exists(const Descriptor& desc) override;
  Descriptor resolve(const std::string& ref) override;
  /// Referrers of `subject`: through the referrers API when the registry has it, else
  /// through the `sha256-<hex>` tag schema (distribution-spec v1.1 §Listing Referrers,
  /// §Referrers Tag Schema). A fallback tag that resolves to anything but an index, or to
  /// the subject itself, means "no referrers".
  std::vector<Descriptor> referrers(const Descriptor& subject, const std::string& artifact_type = {}) override;

  /// cosign's `.sig`, `.att` and `.sbom` tags of `subject` that exist: looked up in the
  /// repository's tag list (read once, list_tags), or asked for by name when the registry
  /// does not list its tags.
  std::vector<Attachment> attachments(const Descriptor& subject) override;
  /// The repository's tags (distribution-spec §Listing Tags, `n` and `Link` pages, same
  /// origin only), read once and cached; nullopt when the registry does not list them
  /// (401, 403, 404, 405) or they are more than k_max_listed_tags.
  std::optional<std::vector<std::string>> list_tags();
  /// Whether the registry answered the tags list (list_tags, read once) with 404
  /// NAME_UNKNOWN: it stores nothing under this name yet (on distribution, not even blobs an
  /// interrupted push linked without a manifest, hence only a hint).
  bool name_unknown();
  /// The repositories of this repository's registry (distribution-spec `GET /v2/_catalog`,
  /// `n` and `Link` pages, same origin only), sorted; nullopt when the registry does not list
  /// them (401, 403, 404, 405) or they are more than `limit`.
  std::optional<std::vector<std::string>> list_catalog(std::size_t limit);

  /// Uploads a blob (or a manifest, by digest), read from `content` to its end.
  void push(const Descriptor& desc, Reader& content);
  /// Points `tag` at the manifest `desc` (which must already be stored).
  void tag(const Descriptor& desc, const std::string& tag);

  /// Manifest bytes by digest, from the cache filled by resolve/fetch when possible.
  std::string fetch_manifest_bytes(const Descriptor& desc);
  /// PUTs manifest bytes under `ref` (a tag or the digest); checks Docker-Content-Digest.
  void put_manifest(const Descriptor& desc, const std::string& bytes, const std::string& ref);
  /// The descriptor a tag points at now, or nullopt when the tag does not exist.
  std::optional<Descriptor> resolve_optional(const std::string& ref);
  /// Whether the registry serves the referrers API (probed once, then cached). A PUT
  /// answered with `OCI-Subject` also proves it.
  bool referrers_api(const Descriptor& probe_subject);
  /// Adds `additions` to the fallback index `sha256-<hex of subject>`, merging with what is
  /// there (see merge_fallback_index). Returns true when it wrote the index.
  bool update_fallback_index(const Descriptor& subject, const std::vector<Descriptor>& additions);
  /// Asks the registry to mount blob `desc` from repository `from` of the same registry
  /// (distribution-spec §Mounting a blob from another repository). True when mounted; a
  /// registry that declines starts an upload session, which is cancelled.
  bool mount(const Descriptor& desc, const std::string& from);

private:
  HttpResponse send(HttpRequest request);
  [[noreturn]] void fail(const std::string& what, HttpResponse& response);
  /// Reads a paginated JSON list (`key` of each page) from `first` on: sorted, unique;
  /// nullopt as list_tags says.
  /// `name_unknown` (may be null) is set when the first page is a 404 NAME_UNKNOWN.
  std::optional<std::vector<std::string>> read_pages(std::string first, const std::string& what, const char* key,
                                                     std::size_t limit, bool* name_unknown = nullptr);
  std::optional<std::vector<Descriptor>> referrers_via_api(const Descriptor& subject, const std::string& artifact_type);
  std::vector<Descriptor> referrers_via_tag(const Descriptor& subject, const std::string& artifact_type);
  std::string url(const std::string& path) const;
  std::string resolve_location(const std::string& location) const;
  /// A blob's body from `offset` on, continued with Range requests when cut off.
  std::unique_ptr<Reader> blob_body(const Descriptor& desc, std::uint64_t offset);
  /// Sends one chunk of a chunked upload at `offset` of `session`; after a failure asks
  /// the registry where the upload stands and resends or moves on. Returns the next URL.
  std::string patch_chunk(const std::string& session, std::string_view bytes, std::uint64_t offset,
                          const std::string& what);

  HttpClient& m_client;
  std::string m_base_url;
  std::string m_name;
  std::mutex m_mutex;
  std::optional<bool> m_referrers_api;
  std::map<Digest, std::string> m_manifest_cache;
  bool m_tags_listed = false;
  bool m_name_unknown = false;
  std::optional<std::vector<std::string>> m_tags;  ///< sorted
};

/// The result of merging referrer descriptors into a fallback index.
struct FallbackMerge {
  std::vector<Descriptor> manifests;
  bool changed = false;
};

/// Merges `additions` into the `existing` entries of a fallback index: keeps the order of
/// what was there, appends what is new (deduplicated by digest), and drops existing entries
/// whose manifest no longer exists (`still_exists` false) so that the PUT is accepted.
/// Every entry carries artifactType and annotations (distribution-spec v1.1).
FallbackMerge merge_fallback_index(const std::vector<Descriptor>& existing, const std::vector<Descriptor>& additions,
                                   const std::function<bool(const Descriptor&)>& still_exists);

/// Serialises a fallback index (an OCI image index listing the referrers).
std::string fallback_index_bytes(const std::vector<Descriptor>& manifests);

/// Parses an RFC 8288 `Link` header and returns the target of rel="next", if any.
std::optional<std::string> next_link(const std::string& link_header);

} // namespace ferry::remote

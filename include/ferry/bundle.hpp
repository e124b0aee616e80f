#pragma once
/// What a bundle's index.json says (design §3): roots with their source references,
/// referrers listed untagged, fallback-tag lists from other tools, the trust artifact.
#include <ferry/graph.hpp>
#include <ferry/reference.hpp>
#include <ferry/store/layout.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ferry {

inline constexpr std::string_view k_trust_ref_name = "ferry.trust";

struct BundleRoot {
  Descriptor desc;
  /// Full source reference (`io.containerd.image.name`), when known.
  std::optional<Reference> source;
  /// Tag (`org.opencontainers.image.ref.name`), empty for a root saved by digest.
  std::string tag;
};

struct BundleContents {
  /// Every index.json entry that is not a referrer, a fallback-tag list or the trust
  /// artifact, in index.json order: what verify checks and push tags.
  std::vector<BundleRoot> roots;
  /// index.json entries that are referrers (manifests with a subject).
  std::vector<Descriptor> referrer_entries;
  /// `sha256-<hex>` tagged indexes written by other tools (referrer lists, never tags).
  std::vector<Descriptor> fallback_lists;
  /// cosign's tag attachments (ref.name `<alg>-<hex>.sig`, `.att`, `.sbom`) of a manifest the
  /// bundle holds: pushed under that tag with their subject, never roots of their own.
  std::vector<std::pair<CosignTag, Descriptor>> attachments;
  std::optional<Descriptor> trust;
  /// The bundle's record (record.hpp, ref.name `ferry.record`): its image set, its delta base.
  std::optional<Descriptor> record;
  /// Entries whose manifest is missing from the bundle or whose bytes do not match their
  /// digest (verify reports them as integrity problems; push, inspect and sign refuse).
  std::vector<Descriptor> unreadable;
};

/// The one definition of a bundle's roots (design §3), used by verify, push, inspect and
/// sign: classifies the entries of the opened bundle's index.json. Throws
/// Errc::invalid_manifest naming the entry for one that is not a manifest or an index, whose
/// bytes are not what its media type says (or do not parse), that claims to be the trust
/// artifact and is not (or is a second one), or whose ref.name is neither a tag nor a
/// reference: what it refuses, every command refuses.
BundleContents classify(const LayoutReader& bundle);

/// classify(), and every entry readable: throws Errc::not_found naming the first
/// unreadable one (push, inspect, sign).
BundleContents classify_complete(const LayoutReader& bundle);

/// True for a `sha256-<hex>` / `sha512-<hex>` referrers fallback tag.
bool is_fallback_tag(const std::string& tag);

/// The `org.opencontainers.image.ref.name` of each root as save writes it, unique within the
/// bundle (skopeo, umoci and podman select an image by this name and take the first match):
/// the tag when no other root has the same tag; else the full reference
/// `registry/repository:tag` (which classify() reads back as that tag); else, should even
/// that repeat, `registry/repository:tag@digest`. Empty for a root without a tag.
std::vector<std::string> root_ref_names(const std::vector<BundleRoot>& roots);

/// Problems a bundle made elsewhere may have that make other tools guess (issue 14): one
/// line per `ref.name` that names different manifests in index.json (at most 100 lines, then
/// one counting the rest; long names and digest lists cut).
std::vector<std::string> ref_name_collisions(const std::vector<Descriptor>& index_entries);

/// index.json for a saved graph: the roots with `io.containerd.image.name` and (when
/// tagged) `org.opencontainers.image.ref.name` (root_ref_names), then every referrer untagged,
/// then cosign's tag attachments named by their tags (`sha256-<hex>.sig`, as cosign's own
/// layouts and sigstore-vectors name them).
/// With `trust`, the trust artifact is listed too, as `ferry.trust`; with `record`, the
/// record artifact, as `ferry.record`.
std::string build_index_json(const std::vector<BundleRoot>& roots, const Graph& graph,
                             const std::optional<Descriptor>& trust = std::nullopt,
                             const std::optional<Descriptor>& record = std::nullopt);

/// Total size of a root's content: the node and everything under it through
/// manifests/config/layers, each blob counted once (referrers not included).
std::uint64_t content_size(const Graph& graph, const Digest& root);

} // namespace ferry

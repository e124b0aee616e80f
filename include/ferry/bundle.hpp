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
  std::vector<BundleRoot> roots;
  /// index.json entries that are referrers (manifests with a subject).
  std::vector<Descriptor> referrer_entries;
  /// `sha256-<hex>` tagged indexes written by other tools (referrer lists, never tags).
  std::vector<Descriptor> fallback_lists;
  std::optional<Descriptor> trust;
};

/// Classifies the entries of an opened bundle's index.json.
BundleContents classify(LayoutReader& bundle);

/// True for a `sha256-<hex>` / `sha512-<hex>` referrers fallback tag.
bool is_fallback_tag(const std::string& tag);

/// index.json for a saved graph: the roots with `io.containerd.image.name` and (when
/// tagged) `org.opencontainers.image.ref.name`, then every referrer untagged.
/// With `trust`, the trust artifact is listed too, as `ferry.trust`.
std::string build_index_json(const std::vector<BundleRoot>& roots, const Graph& graph,
                             const std::optional<Descriptor>& trust = std::nullopt);

/// Total size of a root's content: the node and everything under it through
/// manifests/config/layers, each blob counted once (referrers not included).
std::uint64_t content_size(const Graph& graph, const Digest& root);

} // namespace ferry

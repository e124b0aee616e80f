#pragma once
/// The content graph of a set of roots and how it is discovered (after oras-go's
/// ExtendedCopy, design §4 Graph).
#include <ferry/descriptor.hpp>
#include <ferry/store/memory_store.hpp>
#include <ferry/store/target.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace ferry {

struct GraphOptions {
  /// Follow referrers (manifests whose subject is a node), recursively.
  bool referrers = true;
  /// Keep only referrers of these artifact types (and what hangs under them); empty: all.
  /// A cosign tag attachment (`.sig`, `.att`, `.sbom`) has no artifact type: it is kept
  /// when the media type of its first layer is listed.
  std::vector<std::string> artifact_types;
  /// Follow cosign's tag-based attachments (`<alg>-<hex>.sig/.att/.sbom`, Source::attachments)
  /// of every manifest too (when `referrers` is on).
  bool cosign_tags = true;
};

/// Everything reachable from some roots: manifests held as bytes, blobs as descriptors.
struct Graph {
  /// Manifest and index bytes, verified.
  MemoryStore manifests;
  /// Every node (manifests and blobs) by digest.
  std::map<Digest, Descriptor> nodes;
  /// Nodes in an order where every node follows its children, and every referrer follows
  /// its subject: the order to push manifests in.
  std::vector<Digest> order;
  /// subject digest → its referrers (as the referrers API lists them).
  std::map<Digest, std::vector<Descriptor>> referrers;
  /// Manifests reached as referrers (not through manifests/config/layers).
  std::set<Digest> referrer_nodes;
  /// subject digest → its cosign tag attachments (`.sig`, `.att`, `.sbom`), each pushed under
  /// its tag `<alg>-<hex of subject>.<suffix>` in the subject's repository.
  std::map<Digest, std::vector<Attachment>> attachments;
  /// Manifests reached as cosign tag attachments.
  std::set<Digest> attachment_nodes;
  /// Blobs used as a config, or as a layer of a referrer (signature envelopes, SBOM
  /// documents): the "small blobs" written before image layers (design §3).
  std::set<Digest> small_blobs;
  /// The source each node was first found in (to fetch blobs from later).
  std::map<Digest, Source*> origin;

  /// Adds `root` and everything under it, read from `source`. Throws on a manifest that
  /// cannot be fetched or parsed, on a referrer that cannot be fetched (never a warning),
  /// and on cycles.
  void add(Source& source, const Descriptor& root, const GraphOptions& options);

  /// Adds everything of `other` that this graph lacks, keeping `order` valid.
  void merge(const Graph& other);

  bool contains(const Digest& d) const { return nodes.count(d) != 0; }
  /// Every blob (non-manifest) descriptor.
  std::vector<Descriptor> blobs() const;
  /// Manifests in `order`.
  std::vector<Descriptor> manifests_in_order() const;
  /// All referrers of `subject` in this graph, recursively (the referrer tree flattened).
  std::vector<Descriptor> referrer_closure(const Digest& subject) const;
};

/// Selects an index's children matching any of `platforms` (os/arch[/variant]).
std::vector<Descriptor> select_platforms(const Descriptor& index, const std::string& index_bytes,
                                         const std::vector<Platform>& platforms);

} // namespace ferry

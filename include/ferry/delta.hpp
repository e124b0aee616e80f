#pragma once
/// Delta bundles (issue 16): what accounts for the blobs a delta leaves out. verify takes a
/// base bundle (--base), a base inventory (--base-inventory) or the registry the delta goes
/// to (--against); push checks its destination before it writes anything.
#include <ferry/bundle.hpp>
#include <ferry/inventory.hpp>
#include <ferry/ops.hpp>
#include <ferry/record.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/verify/verifier.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

using verify::DeltaBaseCheck;

/// `--base-inventory FILE…`: each left-out blob is listed, with its size, in one of the
/// inventories (they vouch for what the far side holds; nothing is hashed).
DeltaBaseCheck delta_base_inventories(std::vector<std::pair<std::string, Inventory>> bases);

/// `--base BUNDLE…`: each left-out blob is in one of the base bundles and its bytes match
/// its digest (read and hashed once, in one pass over each base that holds some).
DeltaBaseCheck delta_base_bundles(std::vector<std::shared_ptr<LayoutReader>> bases);

/// Where a delta's left-out blobs are at a push target.
struct DeltaAtTarget {
  struct Missing {
    std::string repository;  ///< host/repository that needs it
    LeftOutBlob blob;
  };
  std::vector<Missing> missing;
  /// Blob → a repository of the target registry that holds it, to mount from.
  std::map<Digest, std::string> mounts;
  std::size_t present = 0;  ///< (repository, blob) pairs found in place
};

/// Asks `target` (host[:port][/namespace], mapped as push maps: `map`) whether every
/// destination repository holds the left-out blobs its roots need (HEAD), or a repository of
/// the base holding it (the record's repositories, mapped likewise for a bundle base; as they
/// are for a registry base on the same host) can be mounted from. Reads only.
DeltaAtTarget delta_at_target(LayoutReader& bundle, const BundleContents& contents, const DeltaRecord& delta,
                              const std::string& target, const std::vector<PushMap>& map, const RepositoryOpener& open,
                              unsigned concurrency);

/// `--against TARGET`: each left-out blob is at the registry the delta goes to, in the
/// repository its roots land in (as push would find it; mountable from a base repository
/// counts). Reads only; a registry that cannot be asked is an error, not a problem.
DeltaBaseCheck delta_base_against(LayoutReader& bundle, std::string target, RepositoryOpener open, unsigned concurrency);

/// One line naming what is missing at the target (the first few blobs by digest and repository).
std::string delta_missing_line(const DeltaAtTarget& at, const DeltaRecord& delta, const std::string& target);

} // namespace ferry

#pragma once
// What push and copy share (internal to libferry): pushing graphs into repositories of one
// registry, then re-reading the destination to prove that everything arrived.
#include <ferry/ops.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry::detail {

/// One destination repository's share of a push or copy.
struct RepositoryJob {
  std::shared_ptr<remote::Repository> repo;
  Graph graph;
  /// The roots with the tags they get at the destination (empty: untagged).
  std::vector<ProofRoot> roots;

  /// A tag to write: the last root given it, and what the tag points at now (looked up
  /// once, before anything is sent).
  struct TagWrite {
    std::string tag;
    Descriptor desc;
    std::optional<Descriptor> current;
    bool unchanged() const { return current && current->digest == desc.digest; }
    bool moves() const { return current && current->digest != desc.digest; }
  };
  std::vector<TagWrite> tags;
  /// The registry answered NAME_UNKNOWN for the repository before the push (lookup_tags).
  bool new_repository = false;
};

/// Calls `upload(desc, content)` once for each of `blobs` (all nodes of `job.graph`),
/// possibly from several threads at once.
using BlobFeed = std::function<void(const RepositoryJob& job, const std::vector<Descriptor>& blobs,
                                    const std::function<void(const Descriptor&, Reader&)>& upload)>;

/// Feeds blobs from a bundle: in parallel from a directory, in one streaming pass over a tar.
BlobFeed bundle_feed(LayoutReader& bundle, unsigned concurrency);

struct TransferOptions {
  std::string verb = "push";  ///< for messages: "push to host/repo: …"
  unsigned concurrency = 4;
  /// Blob digest → repositories of the destination registry that hold it, or are likely to
  /// (cross-repository mount sources, tried in order). Grows as repositories are pushed.
  std::map<Digest, std::vector<std::string>> placed;
  /// Adds `repository` to the mount sources of `digest` (after those already known).
  void place(const Digest& digest, const std::string& repository);
  std::function<void()> before_proof;
  /// Ask, do not send: record the plan in the result (PushOptions::dry_run).
  bool dry_run = false;
  /// Refuse (Errc::denied, before the first upload) when a tag would move (PushOptions::no_clobber).
  bool no_clobber = false;
  Progress* progress = nullptr;
};

/// Looks up every job's tags at the destination; then, unless the push is refused for a tag
/// move (`no_clobber`), pushes each job in turn — blobs the repository lacks (HEAD; then mounted from `placed`;
/// else uploaded from `feed`), manifests children first and referrers after their subjects,
/// tags, referrer links (fallback indexes merged where the registry has no referrers API) —
/// then runs `before_proof`, then proves every job into `result.proof`.
void transfer(std::deque<RepositoryJob>& jobs, const BlobFeed& feed, TransferOptions options, PushResult& result,
              const Logger& log);

} // namespace ferry::detail

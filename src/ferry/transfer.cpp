#include "transfer.hpp"

#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/util/parallel.hpp>

#include <mutex>
#include <set>

namespace ferry::detail {

namespace {

// Pushes one repository's graph; returns nothing, counts into `result`.
void push_repository(RepositoryJob& job, const BlobFeed& feed, TransferOptions& options, PushResult& result,
                     const Logger& log)
{
  auto& repo = *job.repo;
  const Graph& graph = job.graph;
  const std::string where = repo.display();
  std::mutex result_mutex;

  // 1. Blobs the registry lacks: HEAD, then mount what another repository of the same
  // registry holds, then upload the rest.
  auto blobs = graph.blobs();
  std::vector<Descriptor> missing;
  parallel_for_each(blobs, options.concurrency, [&](const Descriptor& d) {
    bool have = repo.exists(d);
    std::lock_guard lock(result_mutex);
    if (have) ++result.blobs_skipped;
    else missing.push_back(d);
  });
  std::vector<Descriptor> to_mount, to_upload;
  for (const auto& d : missing) {
    auto it = options.placed.find(d.digest);
    (it != options.placed.end() && it->second != repo.name() ? to_mount : to_upload).push_back(d);
  }
  parallel_for_each(to_mount, options.concurrency, [&](const Descriptor& d) {
    bool ok = repo.mount(d, options.placed.at(d.digest));
    std::lock_guard lock(result_mutex);
    if (ok) ++result.blobs_mounted;
    else to_upload.push_back(d);
  });
  if (!to_upload.empty()) {
    log(where + ": uploading " + std::to_string(to_upload.size()) + " blobs");
    feed(job, to_upload, [&](const Descriptor& d, Reader& content) {
      try {
        repo.push(d, content);
      } catch (...) {
        rethrow_with_context("blob " + d.digest.str());
      }
      std::lock_guard lock(result_mutex);
      ++result.blobs_pushed;
      result.bytes_pushed += d.size;
    });
  }
  for (const auto& d : blobs) options.placed.emplace(d.digest, repo.name());

  // 2. Manifests, children before parents, referrers after their subjects.
  for (const auto& m : graph.manifests_in_order()) {
    if (repo.exists(m)) {
      ++result.manifests_skipped;
      continue;
    }
    repo.put_manifest(m, *graph.manifests.get(m.digest), m.digest.str());
    ++result.manifests_pushed;
  }

  // 3. Tags.
  for (const auto& root : job.roots) {
    std::string dest = where + (root.tag.empty() ? "@" + root.desc.digest.str() : ":" + root.tag);
    result.roots.push_back({dest, root.desc});
    if (root.tag.empty()) continue;
    auto current = repo.resolve_optional(root.tag);
    if (current && current->digest == root.desc.digest) {
      ++result.tags_unchanged;
      continue;
    }
    repo.put_manifest(root.desc, *graph.manifests.get(root.desc.digest), root.tag);
    ++result.tags_written;
    log("tagged " + dest);
  }

  // 4. Referrer links: the registry indexes them itself when it has the API; else the
  // fallback index of each subject is merged (never clobbered).
  result.referrers += graph.referrer_nodes.size();
  if (!graph.referrers.empty()) {
    Descriptor probe = graph.nodes.at(graph.referrers.begin()->first);
    bool api = repo.referrers_api(probe);
    result.referrers_api[where] = api;
    if (!api)
      for (const auto& [subject, refs] : graph.referrers)
        if (repo.update_fallback_index(graph.nodes.at(subject), refs)) ++result.fallback_indexes_written;
  }
}

} // namespace

BlobFeed bundle_feed(LayoutReader& bundle, unsigned concurrency)
{
  return [&bundle, concurrency](const RepositoryJob& job, const std::vector<Descriptor>& blobs,
                                const std::function<void(const Descriptor&, Reader&)>& upload) {
    if (bundle.random_access()) {
      // A directory or an uncompressed tar: every blob read in place, uploads in parallel.
      parallel_for_each(blobs, concurrency, [&](const Descriptor& d) {
        auto r = bundle.fetch(d);
        upload(d, *r);
      });
      return;
    }
    std::set<Digest> wanted;
    for (const auto& d : blobs) wanted.insert(d.digest);
    // One streaming pass over the compressed archive: small blobs are read into memory and
    // uploaded by a pool (at most `concurrency` of them held at once), large ones stream
    // from the archive to the registry as they pass.
    constexpr std::uint64_t k_small = 4 << 20;
    TaskPool pool(std::max(1u, concurrency), std::max(1u, concurrency));
    bundle.for_each_blob(wanted, [&](const Descriptor& d, Reader& r) {
      const Descriptor& desc = job.graph.nodes.at(d.digest);
      if (desc.size > k_small || concurrency <= 1) {
        upload(desc, r);
        return;
      }
      auto bytes = std::make_shared<std::string>(read_all(r, k_small, desc.digest.str()));
      pool.submit([&upload, desc, bytes] {
        StringReader sr(std::move(*bytes));
        upload(desc, sr);
      });
    });
    pool.finish();
  };
}

void transfer(std::deque<RepositoryJob>& jobs, const BlobFeed& feed, TransferOptions options, PushResult& result,
              const Logger& log)
{
  for (auto& job : jobs) {
    try {
      push_repository(job, feed, options, result, log);
    } catch (...) {
      rethrow_with_context(options.verb + " to " + job.repo->display());
    }
  }
  if (options.before_proof) options.before_proof();
  for (auto& job : jobs) {
    try {
      result.proof.merge(prove_destination(*job.repo, job.graph, job.roots, options.concurrency));
    } catch (...) {
      rethrow_with_context("proof of " + options.verb + " to " + job.repo->display());
    }
  }
  log(result.proof.ok() ? "proof: " + result.proof.summary() : "proof FAILED: " + result.proof.summary());
}

} // namespace ferry::detail

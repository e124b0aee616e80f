#include "transfer.hpp"

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>
#include <ferry/util/parallel.hpp>
#include <ferry/util/text.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <tuple>

namespace ferry::detail {

void TransferOptions::place(const Digest& digest, const std::string& repository)
{
  auto& list = placed[digest];
  if (std::find(list.begin(), list.end(), repository) == list.end()) list.push_back(repository);
}

namespace {

// A blob's mount sources tried before it is uploaded: a mount that fails costs a round trip.
constexpr std::size_t k_max_mount_attempts = 3;
// Below this size a blob is uploaded to a repository the registry does not know without a HEAD.
constexpr std::uint64_t k_head_skip_below = 1 << 20;

// The graph's manifests in waves: each after the waves holding its child manifests and,
// for a referrer, its subject. Within a wave nothing depends on anything else.
std::vector<std::vector<Descriptor>> manifest_waves(const Graph& graph)
{
  std::map<Digest, std::size_t> wave_of;
  std::map<Digest, Digest> subject_of;
  for (const auto& [subject, refs] : graph.referrers)
    for (const auto& r : refs) subject_of.emplace(r.digest, subject);
  for (const auto& [subject, list] : graph.attachments)
    for (const auto& a : list) subject_of.emplace(a.desc.digest, subject);
  std::vector<std::vector<Descriptor>> waves;
  for (const auto& m : graph.manifests_in_order()) {  // children and subjects come first
    std::size_t w = 0;
    for (const auto& child : successors(m, *graph.manifests.get(m.digest)))
      if (auto it = wave_of.find(child.digest); it != wave_of.end()) w = std::max(w, it->second + 1);
    if (auto s = subject_of.find(m.digest); s != subject_of.end())
      if (auto it = wave_of.find(s->second); it != wave_of.end()) w = std::max(w, it->second + 1);
    wave_of[m.digest] = w;
    if (waves.size() <= w) waves.resize(w + 1);
    waves[w].push_back(m);
  }
  return waves;
}

// Phase 1 for one repository: the blobs its graph lacks there; counts into `result`.
void push_blobs(RepositoryJob& job, const BlobFeed& feed, TransferOptions& options, PushResult& result,
                const Logger& log)
{
  auto& repo = *job.repo;
  const Graph& graph = job.graph;
  const std::string where = repo.display();
  std::mutex result_mutex;

  // 1. Blobs the registry lacks: HEAD, then mount what another repository of the same
  // registry holds, then upload the rest.
  auto blobs = graph.blobs();
  std::vector<Descriptor> missing, present;
  parallel_for_each(blobs, options.concurrency, [&](const Descriptor& d) {
    // In a repository the registry does not know, a small blob is not asked for: the HEAD
    // would cost about what its upload does (issue 18). Large blobs are still asked for (an
    // interrupted push may have left them, linked, with no manifest yet).
    bool have = job.new_repository && d.size < k_head_skip_below ? false : repo.exists(d);
    std::lock_guard lock(result_mutex);
    if (have) ++result.blobs_skipped;
    (have ? present : missing).push_back(d);
  });
  // Where each missing blob may be mounted from: the known holders other than this repository.
  auto sources = [&](const Descriptor& d) {
    std::vector<std::string> out;
    if (auto it = options.placed.find(d.digest); it != options.placed.end())
      for (const auto& r : it->second)
        if (r != repo.name() && out.size() < k_max_mount_attempts) out.push_back(r);
    return out;
  };
  std::vector<Descriptor> to_mount, to_upload;
  for (const auto& d : missing) (sources(d).empty() ? to_upload : to_mount).push_back(d);
  if (options.dry_run) {
    for (const auto& d : present) result.plan.push_back({"present", where, d, {}});
    for (const auto& d : to_mount) result.plan.push_back({"mount", where, d, {}});
    for (const auto& d : to_upload) {
      result.plan.push_back({"upload", where, d, {}});
      result.bytes_pushed += d.size;
    }
    result.blobs_mounted += to_mount.size();
    result.blobs_pushed += to_upload.size();
    for (const auto& d : blobs) options.place(d.digest, repo.name());
    return;
  }
  parallel_for_each(to_mount, options.concurrency, [&](const Descriptor& d) {
    bool ok = false;
    for (const auto& from : sources(d))
      if ((ok = repo.mount(d, from))) break;
    std::lock_guard lock(result_mutex);
    if (ok) ++result.blobs_mounted;
    else to_upload.push_back(d);
  });
  if (!to_upload.empty()) {
    log(where + ": uploading " + counted(to_upload.size(), "blob"));
    ProgressPhase phase(options.progress, "pushing to " + where, to_upload);
    feed(job, to_upload, [&](const Descriptor& d, Reader& content) {
      try {
        auto counted = with_progress(std::make_unique<ReaderRef>(content), d, options.progress);
        repo.push(d, *counted);
      } catch (...) {
        rethrow_with_context("blob " + d.digest.str());
      }
      std::lock_guard lock(result_mutex);
      ++result.blobs_pushed;
      result.bytes_pushed += d.size;
    });
  }
  for (const auto& d : blobs) options.place(d.digest, repo.name());
}

// Phase 2 for one repository: its manifests, children before parents, referrers after
// their subjects, by digest (no tag yet): in waves, each pushed in parallel (a thousand
// images are a thousand independent manifests). Counts into `result`.
void push_manifests(RepositoryJob& job, TransferOptions& options, PushResult& result)
{
  auto& repo = *job.repo;
  const Graph& graph = job.graph;
  const std::string where = repo.display();
  std::mutex result_mutex;
  for (const auto& wave : manifest_waves(graph)) {
    parallel_for_each(wave, options.concurrency, [&](const Descriptor& m) {
      // A repository the registry did not know holds no manifest but those pushed now.
      bool have = !job.new_repository && repo.exists(m);
      if (!have && !options.dry_run) repo.put_manifest(m, *graph.manifests.get(m.digest), m.digest.str());
      std::lock_guard lock(result_mutex);
      ++(have ? result.manifests_skipped : result.manifests_pushed);
      if (graph.referrer_nodes.count(m.digest) || graph.attachment_nodes.count(m.digest))
        ++(have ? result.referrers_skipped : result.referrers_pushed);
      if (options.dry_run) result.plan.push_back({have ? "present" : "push", where, m, {}});
    });
  }
}

// Phase 3 for one repository: referrer links. The registry indexes them itself when it has
// the API; else the fallback index of each subject is merged (never clobbered).
void link_referrers(RepositoryJob& job, TransferOptions& options, PushResult& result)
{
  auto& repo = *job.repo;
  const Graph& graph = job.graph;
  if (options.dry_run || graph.referrers.empty()) return;
  Descriptor probe = graph.nodes.at(graph.referrers.begin()->first);
  bool api = repo.referrers_api(probe);
  result.referrers_api[repo.display()] = api;
  if (!api)
    for (const auto& [subject, refs] : graph.referrers)
      if (repo.update_fallback_index(graph.nodes.at(subject), refs)) ++result.fallback_indexes_written;
}

// Phase 0 for one repository: which tags it gets (when several roots carry one tag, the
// last one, as the proof expects) and what each points at now. Nothing is written.
void lookup_tags(RepositoryJob& job, TransferOptions& options)
{
  job.tags.clear();
  for (const auto& root : job.roots) {
    if (root.tag.empty()) continue;
    auto it = std::find_if(job.tags.begin(), job.tags.end(), [&](const auto& t) { return t.tag == root.tag; });
    if (it != job.tags.end()) it->desc = root.desc;
    else job.tags.push_back({root.tag, root.desc, std::nullopt});
  }
  // cosign's tag attachments keep their tags (`sha256-<hex>.sig`, ...), written with the rest.
  for (const auto& [subject, list] : job.graph.attachments)
    for (const auto& a : list) job.tags.push_back({subject.cosign_tag(a.suffix), a.desc, std::nullopt});
  // The tags list (one request) says which tags exist: only those are looked up (a thousand
  // new tags are otherwise a thousand requests), none in a repository the registry does not
  // know. A registry that does not list tags is asked for each, and so is every tag under
  // --no-clobber (a list that lags behind a write must not let a move through).
  job.new_repository = job.repo->name_unknown();
  auto listed = job.repo->list_tags();
  std::vector<std::size_t> each;
  for (std::size_t i = 0; i < job.tags.size(); ++i)
    if (options.no_clobber ||
        (!job.new_repository && (!listed || std::binary_search(listed->begin(), listed->end(), job.tags[i].tag))))
      each.push_back(i);
  parallel_for_each(each, options.concurrency,
                    [&](std::size_t i) { job.tags[i].current = job.repo->resolve_optional(job.tags[i].tag); });
}

// Phase 4 for one repository: the tags, last of all. Counts into `result`.
void write_tags(RepositoryJob& job, TransferOptions& options, PushResult& result, const Logger& log)
{
  auto& repo = *job.repo;
  const Graph& graph = job.graph;
  const std::string where = repo.display();
  std::mutex result_mutex;
  for (const auto& root : job.roots)
    result.roots.push_back({where + (root.tag.empty() ? "@" + root.desc.digest.str() : ":" + root.tag), root.desc});
  parallel_for_each(job.tags, options.concurrency, [&](const RepositoryJob::TagWrite& t) {
    bool same = t.unchanged();
    if (!same && !options.dry_run) repo.put_manifest(t.desc, *graph.manifests.get(t.desc.digest), t.tag);
    std::lock_guard lock(result_mutex);
    ++(same ? result.tags_unchanged : result.tags_written);
    if (t.moves()) result.tags_moved.push_back({where, t.tag, t.current->digest, t.desc});
    if (options.dry_run) {
      PlanStep step{same ? "unchanged" : t.moves() ? "move" : "tag", where, t.desc, t.tag, std::nullopt};
      if (t.moves()) step.previous = t.current->digest;
      result.plan.push_back(std::move(step));
    } else if (t.moves()) {
      log("moved tag " + where + ":" + t.tag + " from " + t.current->digest.str() + " to " + t.desc.digest.str());
    } else if (!same) {
      log("tagged " + where + ":" + t.tag);
    }
  });
}

// `no_clobber`: one error naming the first tag that would move and both digests.
void refuse_tag_moves(const std::deque<RepositoryJob>& jobs, const TransferOptions& options)
{
  const RepositoryJob* first_job = nullptr;
  const RepositoryJob::TagWrite* first = nullptr;
  std::size_t moves = 0;
  for (const auto& job : jobs)
    for (const auto& t : job.tags)
      if (t.moves() && moves++ == 0) {
        first_job = &job;
        first = &t;
      }
  if (!first) return;
  throw Error(Errc::denied, options.verb + " to " + first_job->repo->display() + ": --no-clobber: tag " + first->tag +
                                " points at " + first->current->digest.str() + ", the " + options.verb +
                                " would move it to " + first->desc.digest.str() +
                                (moves > 1 ? " (and " + counted(moves - 1, "more tag") + ")" : "") +
                                "; nothing was sent");
}

} // namespace

BlobFeed bundle_feed(LayoutReader& bundle, unsigned concurrency)
{
  return [&bundle, concurrency](const RepositoryJob& job, const std::vector<Descriptor>& blobs,
                                const std::function<void(const Descriptor&, Reader&)>& upload) {
    // Every blob comes from the bundle opened once, through a reader that checks it against
    // its digest as it goes out: bytes that differ from what was verified fail the upload
    // before the registry keeps them, and before any manifest or tag is written.
    if (bundle.random_access()) {
      // A directory or an uncompressed tar: every blob read in place, uploads in parallel.
      parallel_for_each(blobs, concurrency, [&](const Descriptor& d) {
        auto r = bundle.fetch(d);
        upload(d, *r);
      });
      return;
    }
    // One streaming pass over the compressed archive: small blobs are read into memory and
    // uploaded by a pool (at most `concurrency` of them held at once), large ones stream
    // from the archive to the registry as they pass.
    constexpr std::uint64_t k_small = 4 << 20;
    TaskPool pool(std::max(1u, concurrency), std::max(1u, concurrency));
    bundle.for_each_blob(blobs, [&](const Descriptor& d, Reader& r) {
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
  // What each destination tag points at now, asked once before anything is sent: the plan
  // and the report say which tags move, and --no-clobber refuses a move here.
  for (auto& job : jobs) {
    try {
      lookup_tags(job, options);
    } catch (...) {
      rethrow_with_context(options.verb + " to " + job.repo->display());
    }
  }
  if (options.no_clobber) refuse_tag_moves(jobs, options);
  // Every blob of every repository first: a blob that fails (a bundle's bytes that do not
  // match their name, a registry that refuses them) stops the push before any manifest or
  // tag is written anywhere, so nothing half-pushed becomes visible (design §8).
  for (auto& job : jobs) {
    try {
      push_blobs(job, feed, options, result, log);
    } catch (...) {
      rethrow_with_context(options.verb + " to " + job.repo->display());
    }
  }
  // Then the manifests of every repository, the referrer links, and the tags last: a tag
  // is written only once everything it names has arrived everywhere (issue 13 §3).
  auto each = [&](const std::function<void(RepositoryJob&)>& step) {
    for (auto& job : jobs) {
      try {
        step(job);
      } catch (...) {
        rethrow_with_context(options.verb + " to " + job.repo->display());
      }
    }
  };
  each([&](RepositoryJob& job) { push_manifests(job, options, result); });
  each([&](RepositoryJob& job) { link_referrers(job, options, result); });
  each([&](RepositoryJob& job) { write_tags(job, options, result, log); });
  std::sort(result.tags_moved.begin(), result.tags_moved.end(),
            [](const auto& a, const auto& b) { return std::tie(a.repository, a.tag) < std::tie(b.repository, b.tag); });
  if (options.dry_run) {
    log("dry run: nothing was sent");
    return;
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

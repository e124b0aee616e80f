#include <ferry/ops.hpp>

#include "transfer.hpp"

#include <ferry/delta.hpp>
#include <ferry/inventory.hpp>
#include <ferry/error.hpp>
#include <ferry/util/parallel.hpp>
#include <ferry/util/text.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>

#include <algorithm>
#include <deque>
#include <mutex>
#include <tuple>
#include <set>

namespace ferry {

namespace {

struct Destination {
  std::string repository;
  std::string tag;
};

// Where `root` lands below `target`: its source repository (a tag's --map first, then its
// repository's), under the target namespace, with its tag (or the map's).
Destination destination_of(const BundleRoot& root, const Target& target, const PushOptions& options,
                           const LayoutReader& bundle)
{
  if (!root.source) {
    // A layout written by skopeo, umoci or oras carries only a tag: TARGET is the
    // repository (`oras cp --from-oci-layout` style).
    if (target.ns.empty())
      throw Error(Errc::invalid_argument,
                  bundle.path().string() + ": root " + root.desc.digest.str() +
                      (root.tag.empty() ? "" : " (tag " + root.tag + ")") +
                      " has no source repository; give the target as host[:port]/repository");
    return {target.ns, root.tag};
  }
  Destination dest{root.source->repository, root.tag};
  const PushMap* by_repo = nullptr;
  const PushMap* by_tag = nullptr;
  for (const auto& m : options.map) {
    if (m.source_repository != root.source->repository) continue;
    if (m.source_tag.empty()) by_repo = &m;
    else if (!root.tag.empty() && m.source_tag == root.tag) by_tag = &m;
  }
  if (by_tag) dest = {by_tag->repository, by_tag->tag};
  else if (by_repo) dest.repository = by_repo->repository;
  if (!target.ns.empty()) dest.repository = target.ns + "/" + dest.repository;
  if (!Reference::is_valid_repository(dest.repository))
    throw Error(Errc::invalid_reference, "invalid destination repository \"" + dest.repository + "\"");
  return dest;
}

// Usage checks of the maps that need the bundle: two maps of one source, a tag map that
// matches no root (a typo would otherwise push under the old name).
void check_maps(const PushOptions& options, const std::vector<BundleRoot>& roots, const LayoutReader& bundle)
{
  std::set<std::pair<std::string, std::string>> sources;
  for (const auto& m : options.map)
    if (!sources.emplace(m.source_repository, m.source_tag).second)
      throw Error(Errc::invalid_argument, "--map " + m.source_repository + (m.source_tag.empty() ? "" : ":" + m.source_tag) +
                                              " is given twice");
  for (const auto& m : options.map) {
    if (m.source_tag.empty()) continue;
    bool found = std::any_of(roots.begin(), roots.end(), [&](const BundleRoot& r) {
      return r.source && r.source->repository == m.source_repository && r.tag == m.source_tag;
    });
    if (!found)
      throw Error(Errc::not_found, "--map " + m.str() + ": " + bundle.path().string() + " has no root " +
                                       m.source_repository + ":" + m.source_tag + "; nothing was sent");
  }
}

// A repository of the base, as a push with `options` would name it at `target`: the source
// repository of a bundle base mapped like a root of that repository.
std::string mapped_repository(const std::string& source, const Target& target, const std::vector<PushMap>& map)
{
  std::string repo = source;
  for (const auto& m : map)
    if (m.source_tag.empty() && m.source_repository == source) repo = m.repository;
  return target.ns.empty() ? repo : target.ns + "/" + repo;
}

} // namespace

DeltaAtTarget delta_at_target(LayoutReader& bundle, const BundleContents& contents, const DeltaRecord& delta,
                              const std::string& target_text, const std::vector<PushMap>& map, const RepositoryOpener& open,
                              unsigned concurrency)
{
  Target target = Target::parse(target_text);
  PushOptions options;
  options.map = map;
  // Which destination repositories need which left-out blobs: those their roots' graphs name.
  std::map<std::string, std::set<Digest>> need;
  for (const auto& root : contents.roots) {
    std::string repo = destination_of(root, target, options, bundle).repository;
    Graph g;
    g.add(bundle, root.desc, GraphOptions{});
    for (const auto& [d, node] : g.nodes)
      if (delta.find(d)) need[repo].insert(d);
  }
  // The base's repositories that may hold a blob, at the target.
  std::string base_host = delta.base_source.substr(0, delta.base_source.find('/'));
  auto candidates = [&](const LeftOutBlob& b) {
    std::vector<std::string> out;
    if (delta.base_kind == "bundle")
      for (const auto& r : b.repositories) out.push_back(mapped_repository(r, target, map));
    else if (base_host == target.registry)
      out = b.repositories;
    return out;
  };
  struct Ask {
    std::string repository;
    const LeftOutBlob* blob;
  };
  std::vector<Ask> asks;
  for (const auto& [repo, digests] : need)
    for (const auto& d : digests) asks.push_back({repo, delta.find(d)});
  std::map<std::string, std::shared_ptr<remote::Repository>> repos;
  auto repository = [&](const std::string& name) {
    auto& r = repos[name];
    if (!r) r = open(target.registry, name);
    return r;
  };
  for (const auto& a : asks) repository(a.repository);
  for (const auto& a : asks)
    for (const auto& c : candidates(*a.blob)) repository(c);
  DeltaAtTarget out;
  std::mutex mutex;
  parallel_for_each(asks, concurrency, [&](const Ask& a) {
    Descriptor d;
    d.media_type = "application/octet-stream";
    d.digest = a.blob->digest;
    d.size = a.blob->size;
    try {
      if (repos.at(a.repository)->exists(d)) {
        std::lock_guard lock(mutex);
        ++out.present;
        return;
      }
      for (const auto& c : candidates(*a.blob))
        if (c != a.repository && repos.at(c)->exists(d)) {
          std::lock_guard lock(mutex);
          out.mounts.emplace(d.digest, c);
          return;
        }
    } catch (...) {
      rethrow_with_context("blob " + d.digest.str() + " in " + target.registry + "/" + a.repository);
    }
    std::lock_guard lock(mutex);
    out.missing.push_back({target.registry + "/" + a.repository, *a.blob});
  });
  std::sort(out.missing.begin(), out.missing.end(), [](const DeltaAtTarget::Missing& x, const DeltaAtTarget::Missing& y) {
    return std::tie(x.repository, x.blob.digest) < std::tie(y.repository, y.blob.digest);
  });
  return out;
}

namespace {

// `push --have`: the inventory must be of the destination registry (its repositories are
// mount sources there).
void check_inventory(const Inventory& have, const Target& target)
{
  std::string host = have.source.substr(0, have.source.find('/'));
  if (have.kind != "registry")
    throw Error(Errc::invalid_argument, "--have: the inventory is of bundle " + have.source +
                                            ", not of the destination registry " + target.registry +
                                            " (make it with ferry inventory " + target.registry + ")");
  if (host != target.registry)
    throw Error(Errc::invalid_argument, "--have: the inventory is of registry " + host + ", not of the destination " +
                                            target.registry + " (make it with ferry inventory " + target.registry + ")");
}

} // namespace

PushMap PushMap::parse(const std::string& text)
{
  auto usage = [&](const std::string& why) {
    return Error(Errc::invalid_argument,
                 "invalid --map \"" + text + "\": " + why + "; want SRC_REPO=DST_REPO or SRC_REPO:TAG=DST_REPO:TAG");
  };
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) throw usage("no SRC=DST");
  auto split = [&](const std::string& side, std::string& repo, std::string& tag) {
    if (side.find('@') != std::string::npos) throw usage("a digest cannot be renamed, only a repository or a tag");
    auto colon = side.find(':');
    repo = side.substr(0, colon);
    if (colon != std::string::npos) {
      tag = side.substr(colon + 1);
      if (!Reference::is_valid_tag(tag)) throw usage("\"" + tag + "\" is not a valid tag");
    }
    if (!Reference::is_valid_repository(repo)) throw usage("\"" + repo + "\" is not a valid repository name");
    return colon != std::string::npos;
  };
  PushMap m;
  bool src_tag = split(text.substr(0, eq), m.source_repository, m.source_tag);
  bool dst_tag = split(text.substr(eq + 1), m.repository, m.tag);
  if (src_tag != dst_tag) throw usage("a tag on one side only (give both tags, or none to rename the whole repository)");
  return m;
}

std::string PushMap::str() const
{
  return source_repository + (source_tag.empty() ? "" : ":" + source_tag) + "=" + repository + (tag.empty() ? "" : ":" + tag);
}

std::string verification_failure(const verify::VerifyReport& report)
{
  if (!report.problems.empty())
    return report.problems.listed.front().message +
           (report.problems.total > 1 ? " (and " + std::to_string(report.problems.total - 1) + " more problems)" : "");
  if (report.artifacts.empty()) return "the bundle has no artifact to verify";
  for (const auto& a : report.artifacts)
    if (!a.verified) return a.reference + ": " + a.reason;
  return "not verified";
}

std::string refusal_reason(const PushResult& result)
{
  if (result.verification && !result.verification->verified) return "verification failed: " + verification_failure(*result.verification);
  if (result.refused_unverified && !result.unverified.empty()) {
    const auto& first = result.unverified.front();
    return std::to_string(result.unverified.size()) + " unverified manifest" + (result.unverified.size() == 1 ? "" : "s") +
           " (no verified signature covers " + (result.unverified.size() == 1 ? "it" : "them") +
           "; --only-verified), the first " + first.desc.digest.str() + ": " + first.reason;
  }
  return "refused";
}

std::vector<UnverifiedManifest> unverified_manifests(const verify::VerifyReport& report, const Graph& graph)
{
  // Covered: every root, referrer or other manifest of a root's graph with a signature of
  // its own that verified, what hangs under it through `manifests` (their digests are in
  // the signed bytes), and those signatures themselves.
  std::set<Digest> covered, visited;
  std::map<Digest, std::string> skipped;  // admitted without a signature check
  std::vector<Digest> stack;
  auto consider = [&](const Descriptor& desc, const std::vector<verify::SignatureVerdict>& signatures, bool verified,
                      const std::optional<std::string>& policy) {
    bool signed_ok = false;
    for (const auto& s : signatures)
      if (s.verified) {
        signed_ok = true;
        covered.insert(s.manifest.digest);
      }
    if (signed_ok) stack.push_back(desc.digest);
    else if (verified && policy) skipped.emplace(desc.digest, *policy);
  };
  for (const auto& a : report.artifacts) {
    consider(a.desc, a.signatures, a.verified, a.policy);
    for (const auto& r : a.referrers) consider(r.desc, r.signatures, r.verified, a.policy);
  }
  while (!stack.empty()) {
    Digest d = stack.back();
    stack.pop_back();
    if (!visited.insert(d).second) continue;
    covered.insert(d);
    auto bytes = graph.manifests.get(d);
    if (!bytes || !graph.contains(d)) continue;
    for (const auto& child : successors(graph.nodes.at(d), *bytes))
      if (media_type::is_manifest(child.media_type)) stack.push_back(child.digest);
  }
  std::map<Digest, Digest> subject_of;
  for (const auto& [subject, refs] : graph.referrers)
    for (const auto& r : refs) subject_of.emplace(r.digest, subject);
  std::vector<UnverifiedManifest> out;
  for (const auto& desc : graph.manifests_in_order()) {
    if (covered.count(desc.digest)) continue;
    Manifest m = Manifest::parse(*graph.manifests.get(desc.digest), desc.media_type, desc.digest.str());
    UnverifiedManifest u;
    u.desc = desc;
    u.artifact_type = m.effective_artifact_type();
    if (auto it = skipped.find(desc.digest); it != skipped.end()) {
      u.reason = "admitted by trust policy statement \"" + it->second + "\", which skips signature verification";
    } else if (is_cosign_signature_manifest(m)) {
      u.reason = m.subject ? "a cosign signature of " + m.subject->digest.short_str() + " that was not verified"
                           : "cosign signatures (a .sig or .att tag) none of which was verified";
    } else if (m.subject) {
      bool image = media_type::is_image_manifest(m.media_type) && m.config &&
                   (m.config->media_type == media_type::k_oci_config ||
                    m.config->media_type == "application/vnd.docker.container.image.v1+json");
      std::string what = is_signature_manifest(m) ? "a signature that was not verified"
                         : image                  ? "a referrer that is itself a runnable image"
                                                  : "a referrer";
      u.reason = what + " of " + m.subject->digest.short_str() + ", with no verified signature of its own";
    } else {
      u.reason = "no verified signature covers it";
    }
    out.push_back(std::move(u));
  }
  return out;
}

PushResult push(LayoutReader& bundle, const PushOptions& options, const RepositoryOpener& open, const Logger& log)
{
  Target target = Target::parse(options.target);

  PushResult result;
  result.bundle_digest = bundle.index_digest();
  // The one definition of the roots (design §3), from the index.json read once.
  BundleContents contents = options.verify ? classify(bundle) : classify_complete(bundle);
  if (contents.roots.empty() && contents.unreadable.empty())
    throw Error(Errc::not_found, bundle.path().string() + ": the bundle has no images");
  check_maps(options, contents.roots, bundle);
  if (options.have) check_inventory(*options.have, target);
  // Each root (and so its referrers) lands in its own destination repository.
  std::map<std::string, std::vector<std::pair<BundleRoot, std::string>>> groups;
  for (const auto& root : contents.roots) {
    auto dest = destination_of(root, target, options, bundle);
    groups[dest.repository].emplace_back(root, dest.tag);
  }

  // A delta bundle (issue 16): every blob it leaves out must be at the destination (or be
  // mountable there from a repository of its base) before anything is written.
  std::optional<DeltaRecord> delta;
  if (contents.record) delta = read_record(bundle, *contents.record).delta;
  DeltaAtTarget at_target;
  if (delta && !delta->left_out.empty()) {
    log(bundle.path().string() + " is a delta of " + delta->base_kind + " " + delta->base_source + " (base " +
        delta->base.str() + "): checking that " + options.target + " holds the " +
        counted(delta->left_out.size(), "blob") + " it leaves out");
    at_target = delta_at_target(bundle, contents, *delta, options.target, options.map, open, options.concurrency);
    if (!at_target.missing.empty()) {
      for (const auto& m : at_target.missing)
        log("missing at the destination: blob " + m.blob.digest.str() + " (" + human_bytes(m.blob.size) + ") in " + m.repository);
      throw Error(Errc::not_found, bundle.path().string() + ": nothing was sent: " +
                                       delta_missing_line(at_target, *delta, options.target));
    }
  }

  if (options.verify) {
    // Before anything is opened at the destination (design §1 promise 3), on the bytes the
    // bundle's one scan read; each root under the trust policy statement of the repository
    // it lands in (issue 13 §4).
    log("verifying " + bundle.path().string());
    result.verification = verify::verify_bundle(
        bundle, *options.verify,
        [&](const BundleRoot& root) {
          return target.registry + "/" + destination_of(root, target, options, bundle).repository;
        },
        [&](const DeltaRecord&, ProblemList&) {
          // Checked above: each left-out blob is in place or mountable at the destination.
          return "the destination " + options.target;
        });
    if (!result.verification->verified) return result;
    if (options.after_verify) options.after_verify();
  }
  // One job per destination repository.
  std::deque<detail::RepositoryJob> jobs;
  std::vector<std::pair<Digest, std::string>> from_source;
  // Each root's graph lies whole in its job's graph: the checks below go job by job, with no
  // merged copy of everything (one copy of the 1,000-image set in memory, issue 18).
  for (const auto& [repo_name, roots] : groups) {
    auto& job = jobs.emplace_back();
    try {
      job.repo = open(target.registry, repo_name);
      for (const auto& [root, tag] : roots) {
        if (root.source && root.source->registry == target.registry) {
          // Saved from the target registry itself: its source repository there is a mount
          // source of every blob it reaches (issue 18).
          Graph g;
          g.add(bundle, root.desc, GraphOptions{});
          for (const auto& b : g.blobs()) from_source.emplace_back(b.digest, root.source->repository);
          job.graph.merge(g);
        } else {
          job.graph.add(bundle, root.desc, GraphOptions{});
        }
        job.roots.push_back({root.desc, tag});
      }
    } catch (...) {
      rethrow_with_context("push to " + target.registry + "/" + repo_name);
    }
  }
  if (result.verification) {
    std::set<Digest> listed;
    for (const auto& job : jobs)
      for (auto& u : unverified_manifests(*result.verification, job.graph))
        if (listed.insert(u.desc.digest).second) result.unverified.push_back(std::move(u));
    for (const auto& u : result.unverified)
      log("unverified manifest " + u.desc.digest.str() + " (" +
          (u.artifact_type.empty() ? u.desc.media_type : u.artifact_type) + "): " + u.reason);
    if (options.only_verified && !result.unverified.empty()) {
      result.refused_unverified = true;
      return result;
    }
  }
  detail::TransferOptions transfer;
  transfer.concurrency = options.concurrency;
  transfer.before_proof = options.before_proof;
  transfer.dry_run = options.dry_run;
  transfer.no_clobber = options.no_clobber;
  transfer.progress = options.progress;
  // Cross-repository mount sources (issue 18), in the order they are tried: the delta's base
  // blobs found above, the inventory of the destination, the roots' source repositories when
  // the bundle came from the target registry itself.
  for (const auto& [d, repo] : at_target.mounts) transfer.place(d, repo);
  if (options.have) {
    auto held = options.have->blobs();
    for (const auto& job : jobs)
      for (const auto& b : job.graph.blobs())
        if (auto it = held.find(b.digest); it != held.end())
          for (const auto& r : it->second.repositories) transfer.place(b.digest, r);
  }
  for (const auto& [d, repo] : from_source) transfer.place(d, repo);
  result.dry_run = options.dry_run;
  detail::transfer(jobs, detail::bundle_feed(bundle, options.concurrency), std::move(transfer), result, log);
  return result;
}

} // namespace ferry

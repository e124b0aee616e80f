#include <ferry/ops.hpp>

#include "transfer.hpp"

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>

#include <deque>
#include <set>

namespace ferry {

namespace {

std::string destination_repository(const BundleRoot& root, const Target& target, const PushOptions& options,
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
    return target.ns;
  }
  std::string repo = root.source->repository;
  if (auto it = options.map.find(repo); it != options.map.end()) repo = it->second;
  if (!target.ns.empty()) repo = target.ns + "/" + repo;
  if (!Reference::is_valid_repository(repo))
    throw Error(Errc::invalid_reference, "invalid destination repository \"" + repo + "\"");
  return repo;
}

} // namespace

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
  for (const auto& [src, dst] : options.map)
    if (!Reference::is_valid_repository(src) || !Reference::is_valid_repository(dst))
      throw Error(Errc::invalid_argument, "invalid --map \"" + src + "=" + dst + "\": want SRC_REPO=DST_REPO");

  PushResult result;
  result.bundle_digest = bundle.index_digest();
  // The one definition of the roots (design §3), from the index.json read once.
  BundleContents contents = options.verify ? classify(bundle) : classify_complete(bundle);
  if (contents.roots.empty() && contents.unreadable.empty())
    throw Error(Errc::not_found, bundle.path().string() + ": the bundle has no images");
  std::map<std::string, std::vector<BundleRoot>> groups;
  for (const auto& root : contents.roots) groups[destination_repository(root, target, options, bundle)].push_back(root);

  if (options.verify) {
    // Before anything is opened at the destination (design §1 promise 3), on the bytes the
    // bundle's one scan read; each root under the trust policy statement of the repository
    // it lands in (issue 13 §4).
    log("verifying " + bundle.path().string());
    result.verification = verify::verify_bundle(bundle, *options.verify, [&](const BundleRoot& root) {
      return target.registry + "/" + destination_repository(root, target, options, bundle);
    });
    if (!result.verification->verified) return result;
    if (options.after_verify) options.after_verify();
  }
  // One job per destination repository.
  std::deque<detail::RepositoryJob> jobs;
  Graph all;
  for (const auto& [repo_name, roots] : groups) {
    auto& job = jobs.emplace_back();
    try {
      job.repo = open(target.registry, repo_name);
      for (const auto& root : roots) {
        job.graph.add(bundle, root.desc, GraphOptions{});
        job.roots.push_back({root.desc, root.tag});
      }
    } catch (...) {
      rethrow_with_context("push to " + target.registry + "/" + repo_name);
    }
    all.merge(job.graph);
  }
  if (result.verification) {
    result.unverified = unverified_manifests(*result.verification, all);
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
  transfer.progress = options.progress;
  result.dry_run = options.dry_run;
  detail::transfer(jobs, detail::bundle_feed(bundle, options.concurrency), std::move(transfer), result, log);
  return result;
}

} // namespace ferry

#include <ferry/ops.hpp>

#include "transfer.hpp"

#include <ferry/error.hpp>

#include <deque>

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
    return report.problems.front().message +
           (report.problems.size() > 1 ? " (and " + std::to_string(report.problems.size() - 1) + " more problems)" : "");
  if (report.artifacts.empty()) return "the bundle has no artifact to verify";
  for (const auto& a : report.artifacts)
    if (!a.verified) return a.reference + ": " + a.reason;
  return "not verified";
}

PushResult push(const PushOptions& options, const RepositoryOpener& open, const Logger& log)
{
  Target target = Target::parse(options.target);
  for (const auto& [src, dst] : options.map)
    if (!Reference::is_valid_repository(src) || !Reference::is_valid_repository(dst))
      throw Error(Errc::invalid_argument, "invalid --map \"" + src + "=" + dst + "\": want SRC_REPO=DST_REPO");
  BundleFormat format = options.format.value_or(format_from_path(options.bundle));

  PushResult result;
  if (options.verify) {
    // Before anything is opened at the destination (design §1 promise 3).
    log("verifying " + options.bundle.string());
    result.verification = verify::verify_bundle(options.bundle, format, *options.verify);
    if (!result.verification->verified) return result;
  }

  auto bundle = LayoutReader::open(options.bundle, format);
  bundle->check_structure();
  BundleContents contents = classify(*bundle);
  if (contents.roots.empty()) throw Error(Errc::not_found, options.bundle.string() + ": the bundle has no images");

  // One job per destination repository.
  std::map<std::string, std::vector<BundleRoot>> groups;
  for (const auto& root : contents.roots)
    groups[destination_repository(root, target, options, *bundle)].push_back(root);
  std::deque<detail::RepositoryJob> jobs;
  for (const auto& [repo_name, roots] : groups) {
    auto& job = jobs.emplace_back();
    try {
      job.repo = open(target.registry, repo_name);
      for (const auto& root : roots) {
        job.graph.add(*bundle, root.desc, GraphOptions{});
        job.roots.push_back({root.desc, root.tag});
      }
    } catch (...) {
      rethrow_with_context("push to " + target.registry + "/" + repo_name);
    }
  }
  detail::TransferOptions transfer;
  transfer.concurrency = options.concurrency;
  transfer.before_proof = options.before_proof;
  transfer.dry_run = options.dry_run;
  transfer.progress = options.progress;
  result.dry_run = options.dry_run;
  detail::transfer(jobs, detail::bundle_feed(*bundle, options.concurrency), std::move(transfer), result, log);
  return result;
}

} // namespace ferry

#include <ferry/ops.hpp>

#include "transfer.hpp"

#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/util/file.hpp>
#include <ferry/util/parallel.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>

namespace fs = std::filesystem;

namespace ferry {

namespace {

// DST tag, else the source tag, else "latest" for a source without tag or digest (as save
// names it); a source given by digest alone lands untagged.
std::string destination_tag(const Reference& src, const Reference& dst)
{
  if (!dst.tag.empty()) return dst.tag;
  if (!src.tag.empty()) return src.tag;
  return src.digest ? std::string() : "latest";
}

// Stages the source in a layout directory, verifies it, and pushes from it.
void copy_verified(const CopyOptions& options, const Reference& dst, const std::string& tag, const RepositoryOpener& open,
                   const Logger& log, detail::TransferOptions transfer, CopyResult& result)
{
  TempDir staging(options.staging_dir, "ferry-copy-");
  SaveOptions stage;
  stage.references = {options.source};
  stage.output = staging.path() / "bundle";
  stage.format = BundleFormat::dir;
  stage.platforms = options.platforms;
  stage.graph = options.graph;
  stage.concurrency = options.concurrency;
  log("staging " + options.source + " in " + stage.output.string() + " for verification");
  save(stage, open, log);
  // The staged layout is opened once: verified there, pushed from there.
  LayoutReader::Options read;
  read.depth = ReadDepth::verify;
  auto bundle = LayoutReader::open(stage.output, BundleFormat::dir, read);
  result.bundle_digest = bundle->index_digest();
  // Under the trust policy statement of the destination (issue 13 §4).
  result.verification = verify::verify_bundle(*bundle, *options.verify, [&](const BundleRoot&) { return dst.name(); });
  if (!result.verification->verified) return;
  if (options.after_verify) options.after_verify();

  std::deque<detail::RepositoryJob> jobs;
  auto& job = jobs.emplace_back();
  job.repo = open(dst.registry, dst.repository);
  for (const auto& root : classify_complete(*bundle).roots) {
    job.graph.add(*bundle, root.desc, GraphOptions{});
    job.roots.push_back({root.desc, tag});
  }
  result.unverified = unverified_manifests(*result.verification, job.graph);
  for (const auto& u : result.unverified)
    log("unverified manifest " + u.desc.digest.str() + " (" +
        (u.artifact_type.empty() ? u.desc.media_type : u.artifact_type) + "): " + u.reason);
  if (options.only_verified && !result.unverified.empty()) {
    result.refused_unverified = true;
    return;
  }
  detail::transfer(jobs, detail::bundle_feed(*bundle, options.concurrency), std::move(transfer), result, log);
}

} // namespace

std::vector<Descriptor> resolve_roots(remote::Repository& repo, const Reference& ref, const std::vector<Platform>& platforms)
{
  Descriptor desc = repo.resolve(ref.digest ? ref.digest->str() : ref.ref_or_default());
  if (platforms.empty() || !media_type::is_index(desc.media_type)) return {desc};
  auto roots = select_platforms(desc, repo.fetch_manifest_bytes(desc), platforms);
  if (roots.empty()) {
    std::string wanted;
    for (const auto& p : platforms) wanted += (wanted.empty() ? "" : ", ") + p.str();
    throw Error(Errc::not_found, "no manifest for platform " + wanted);
  }
  return roots;
}

CopyResult copy(const CopyOptions& options, const RepositoryOpener& open, const Logger& log)
{
  Reference src = Reference::parse(options.source);
  Reference dst = Reference::parse(options.destination);
  if (dst.digest)
    throw Error(Errc::invalid_argument, options.destination + ": the destination takes a tag, not a digest");
  std::string tag = destination_tag(src, dst);

  CopyResult result;
  detail::TransferOptions transfer;
  transfer.verb = "copy";
  transfer.concurrency = options.concurrency;
  transfer.before_proof = options.before_proof;
  transfer.progress = options.progress;
  transfer.no_clobber = options.no_clobber;
  if (options.verify) {
    copy_verified(options, dst, tag, open, log, std::move(transfer), result);
    return result;
  }

  // Blobs stream from source to destination, each read once and never written to disk.
  std::shared_ptr<remote::Repository> source;
  std::deque<detail::RepositoryJob> jobs;
  auto& job = jobs.emplace_back();
  try {
    source = open(src.registry, src.repository);
    for (const auto& root : resolve_roots(*source, src, options.platforms)) {
      log("resolved " + src.str() + " -> " + root.digest.str() + (root.platform ? " (" + root.platform->str() + ")" : ""));
      job.graph.add(*source, root, options.graph);
      job.roots.push_back({root, tag});
    }
  } catch (...) {
    rethrow_with_context(src.str());
  }
  job.repo = open(dst.registry, dst.repository);
  if (src.registry == dst.registry)  // within one registry blobs are mounted, not sent
    for (const auto& d : job.graph.blobs()) transfer.placed.emplace(d.digest, src.repository);
  auto feed = [&](const detail::RepositoryJob& j, const std::vector<Descriptor>& blobs,
                  const std::function<void(const Descriptor&, Reader&)>& upload) {
    parallel_for_each(blobs, options.concurrency, [&](const Descriptor& d) {
      auto content = j.graph.origin.at(d.digest)->fetch(d);
      upload(d, *content);
    });
  };
  detail::transfer(jobs, feed, std::move(transfer), result, log);
  return result;
}

} // namespace ferry

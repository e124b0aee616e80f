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
#include <map>

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

// The ways forward copy names when it refuses --platform on a signed index
// (refuse_signed_index_subset): every platform, or each platform image by digest (which
// carries no signature: the index's covers the index).
std::string copy_ways_forward(const Reference& src, const Reference& dst, const std::string& tag,
                              const std::vector<Descriptor>& chosen)
{
  auto tags = platform_image_tags(tag, chosen);
  std::string commands;
  for (std::size_t i = 0; i < chosen.size(); ++i)
    commands += (commands.empty() ? "ferry copy " : "; ferry copy ") + src.name() + "@" + chosen[i].digest.str() + " " +
                dst.name() + (tags[i].empty() ? "" : ":" + tags[i]);
  return "either drop --platform to copy every platform (the index and its signature arrive whole and stay verifiable), "
         "or copy each platform image by digest (" + commands + "), unsigned, as the index's signature covers only the index";
}

// The destination tag of each root (platform_image_tags, as save names them): `tag` for
// one root; several platform images of one index selected with --platform get
// `<tag>-<os>-<arch>[-<variant>]`, said on the log.
std::map<Digest, std::string> destination_tags(const std::vector<Descriptor>& roots, const Reference& src, const Reference& dst,
                                               const std::string& tag, const Logger& log)
{
  auto tags = platform_image_tags(tag, roots);
  std::map<Digest, std::string> out;
  for (std::size_t i = 0; i < roots.size(); ++i) {
    out[roots[i].digest] = tags[i];
    if (tags[i] != tag)
      log("note: " + (roots[i].platform ? roots[i].platform->str() : std::string("the image")) + " of " + src.str() +
          " is tagged " + dst.name() + ":" + tags[i] + " (one tag cannot name several platform images)");
  }
  return out;
}

// Stages the source in a layout directory, verifies it, and pushes from it; each root gets
// its tag from `tags` (by digest).
void copy_verified(const CopyOptions& options, const Reference& dst, const std::map<Digest, std::string>& tags,
                   const RepositoryOpener& open, const Logger& log, detail::TransferOptions transfer, CopyResult& result)
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
    auto tag = tags.find(root.desc.digest);
    if (tag == tags.end())  // the source moved between resolving and staging: nothing is sent
      throw Error(Errc::not_found, options.source + ": changed while it was staged (" + root.desc.digest.str() +
                                      " was not resolved before); run copy again");
    job.graph.add(*bundle, root.desc, GraphOptions{});
    job.roots.push_back({root.desc, tag->second});
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
  // What the source names, refused (issue 14) before anything is staged or sent.
  std::shared_ptr<remote::Repository> source;
  std::vector<Descriptor> roots;
  try {
    source = open(src.registry, src.repository);
    refuse_signed_index_subset(*source, src, options.platforms, options.graph, "copy",
                               [&](const std::vector<Descriptor>& chosen) { return copy_ways_forward(src, dst, tag, chosen); });
    roots = resolve_roots(*source, src, options.platforms);
  } catch (...) {
    rethrow_with_context(src.str());
  }
  auto tags = destination_tags(roots, src, dst, tag, log);
  if (options.verify) {
    copy_verified(options, dst, tags, open, log, std::move(transfer), result);
    return result;
  }

  // Blobs stream from source to destination, each read once and never written to disk.
  std::deque<detail::RepositoryJob> jobs;
  auto& job = jobs.emplace_back();
  try {
    for (const auto& root : roots) {
      log("resolved " + src.str() + " -> " + root.digest.str() + (root.platform ? " (" + root.platform->str() + ")" : ""));
      job.graph.add(*source, root, options.graph);
      job.roots.push_back({root, tags.at(root.digest)});
    }
  } catch (...) {
    rethrow_with_context(src.str());
  }
  job.repo = open(dst.registry, dst.repository);
  if (src.registry == dst.registry)  // within one registry blobs are mounted, not sent
    for (const auto& d : job.graph.blobs()) transfer.place(d.digest, src.repository);
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

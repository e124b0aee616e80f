#include <ferry/ops.hpp>

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>
#include <ferry/util/parallel.hpp>

#include <atomic>
#include <mutex>

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

PushResult push(const PushOptions& options, const RepositoryOpener& open, const Logger& log)
{
  Target target = Target::parse(options.target);
  for (const auto& [src, dst] : options.map)
    if (!Reference::is_valid_repository(src) || !Reference::is_valid_repository(dst))
      throw Error(Errc::invalid_argument, "invalid --map \"" + src + "=" + dst + "\": want SRC_REPO=DST_REPO");
  auto bundle = LayoutReader::open(options.bundle, options.format.value_or(format_from_path(options.bundle)));
  BundleContents contents = classify(*bundle);
  if (contents.roots.empty()) throw Error(Errc::not_found, options.bundle.string() + ": the bundle has no images");

  // Group roots by destination repository.
  std::map<std::string, std::vector<BundleRoot>> groups;
  for (const auto& root : contents.roots)
    groups[destination_repository(root, target, options, *bundle)].push_back(root);

  PushResult result;
  std::mutex result_mutex;
  // Blobs known to be in some repository of the target registry: later repositories mount
  // them instead of uploading again.
  std::map<Digest, std::string> placed;
  for (const auto& [repo_name, roots] : groups) {
    std::string where = target.registry + "/" + repo_name;
    try {
      auto repo = open(target.registry, repo_name);
      Graph graph;
      for (const auto& root : roots) graph.add(*bundle, root.desc, GraphOptions{});

      // 1. Blobs the registry lacks.
      auto blobs = graph.blobs();
      std::vector<Descriptor> missing;
      parallel_for_each(blobs, options.concurrency, [&](const Descriptor& d) {
        bool have = repo->exists(d);
        std::lock_guard lock(result_mutex);
        if (have) ++result.blobs_skipped;
        else missing.push_back(d);
      });
      std::vector<Descriptor> to_mount, to_upload;
      for (const auto& d : missing) {
        auto it = placed.find(d.digest);
        (it != placed.end() && it->second != repo_name ? to_mount : to_upload).push_back(d);
      }
      parallel_for_each(to_mount, options.concurrency, [&](const Descriptor& d) {
        bool ok = repo->mount(d, placed.at(d.digest));
        std::lock_guard lock(result_mutex);
        if (ok) ++result.blobs_mounted;
        else to_upload.push_back(d);
      });
      missing = std::move(to_upload);
      if (!missing.empty()) log(where + ": uploading " + std::to_string(missing.size()) + " blobs");
      auto upload = [&](const Descriptor& d, Reader& content) {
        repo->push(d, content);
        std::lock_guard lock(result_mutex);
        ++result.blobs_pushed;
        result.bytes_pushed += d.size;
      };
      if (bundle->format() == BundleFormat::dir) {
        parallel_for_each(missing, options.concurrency, [&](const Descriptor& d) {
          auto r = bundle->fetch(d);
          upload(d, *r);
        });
      } else if (!missing.empty()) {
        std::set<Digest> wanted;
        for (const auto& d : missing) wanted.insert(d.digest);
        // One streaming pass over the archive, uploading each missing blob as it passes.
        bundle->for_each_blob(wanted, [&](const Descriptor& d, Reader& r) { upload(graph.nodes.at(d.digest), r); });
      }
      for (const auto& d : blobs) placed.emplace(d.digest, repo_name);

      // 2. Manifests, children before parents, referrers after their subjects.
      for (const auto& m : graph.manifests_in_order()) {
        if (repo->exists(m)) {
          ++result.manifests_skipped;
          continue;
        }
        repo->put_manifest(m, *graph.manifests.get(m.digest), m.digest.str());
        ++result.manifests_pushed;
      }
      // 3. Tags.
      for (const auto& root : roots) {
        std::string dest = where + (root.tag.empty() ? "@" + root.desc.digest.str() : ":" + root.tag);
        result.roots.push_back({dest, root.desc});
        if (root.tag.empty()) continue;
        auto current = repo->resolve_optional(root.tag);
        if (current && current->digest == root.desc.digest) {
          ++result.tags_unchanged;
          continue;
        }
        Descriptor d = root.desc;
        repo->put_manifest(d, *graph.manifests.get(d.digest), root.tag);
        ++result.tags_written;
        log("tagged " + dest);
      }
      // 4. Referrer links: the registry indexes them itself when it has the API; else the
      // fallback index of each subject is merged.
      result.referrers += graph.referrer_nodes.size();
      if (!graph.referrers.empty()) {
        Descriptor probe = graph.nodes.at(graph.referrers.begin()->first);
        bool api = repo->referrers_api(probe);
        result.referrers_api[where] = api;
        if (!api)
          for (const auto& [subject, refs] : graph.referrers)
            if (repo->update_fallback_index(graph.nodes.at(subject), refs)) ++result.fallback_indexes_written;
      }
    } catch (...) {
      rethrow_with_context("push to " + where);
    }
  }
  return result;
}

} // namespace ferry

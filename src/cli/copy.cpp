// ferry copy: registry → registry with the graph semantics of save + push.
#include "common.hpp"
#include "transfer.hpp"

#include <ferry/error.hpp>

#include <algorithm>
#include <optional>
#include <set>

namespace ferry::cli {

namespace {

struct CopyState {
  std::string images_file;
  std::string source;
  std::string destination;
  std::vector<std::string> platforms;
  bool no_referrers = false;
  bool no_clobber = false;
  std::vector<std::string> artifact_types;
  OutputOptions out;
  RegistryFlags registry;
  VerifyGate verify;
};

/// Fills `opts` with what every copy of the command shares (flags, --verify, hooks).
void common_options(CopyState& s, const GlobalOptions& global, CopyOptions& opts)
{
  for (const auto& p : s.platforms) opts.platforms.push_back(Platform::parse(p));
  opts.graph.referrers = !s.no_referrers;
  opts.graph.artifact_types = s.artifact_types;
  opts.no_clobber = s.no_clobber;
  // The staged layout does not exist yet: trust material is loaded (and checked) now,
  // before anything is fetched.
  s.verify.check({}, BundleFormat::dir);
  opts.verify = s.verify.build(nullptr);
  opts.only_verified = s.verify.only_verified;
  opts.after_verify = test_hook("FERRY_TEST_HOOK_AFTER_VERIFY");
  opts.before_proof = test_hook("FERRY_TEST_HOOK_BEFORE_PROOF");
  opts.progress = global.progress.get();
}

/// copy -f FILE DEST: every reference of the image set (expanded first: tags listed, nothing
/// copied yet) to DEST/<its repository>:<its tag>, as push places a bundle's roots.
int copy_image_set(CopyState& s, const GlobalOptions& global)
{
  if (s.source.empty() || !s.destination.empty())
    throw Error(Errc::invalid_argument, "copy -f FILE: give one destination, host[:port][/namespace]");
  const std::string dest_text = s.source;
  Target target = Target::parse(dest_text);
  ImageSet set = load_image_set(s.images_file, s.registry.options);
  if (!s.registry.options.username.empty()) {
    std::set<std::string> registries{target.registry};
    for (const auto& e : set.entries) registries.insert(e.registry);
    if (registries.size() > 1)
      throw Error(Errc::invalid_argument, "--username applies to one registry, but the image set and the destination name " +
                                              std::to_string(registries.size()) + "; use --registry-config for several");
  }
  // Trust material is loaded (and checked) before any tag is listed; CopyOptions holds it
  // uncopyable (CRLs), so each reference gets its own, built the same way.
  std::optional<CopyOptions> first(std::in_place);
  common_options(s, global, *first);
  s.registry.finish();
  remote::Registries registries(s.registry.options);
  auto log = make_logger(global);
  RepositoryOpener opener = shared_opener(registries);
  ImageSetExpansion expansion = expand(set, opener, log);
  auto refs = expansion.references();
  if (refs.empty()) throw Error(Errc::not_found, s.images_file + ": the image set selects no image");
  // Where each lands, all checked before anything is copied.
  std::vector<std::pair<std::string, std::string>> jobs;
  for (const auto& r : refs) {
    std::string repo = target.ns.empty() ? r.repository : target.ns + "/" + r.repository;
    std::string dst = target.registry + "/" + repo + (r.tag.empty() ? "" : ":" + r.tag);
    Reference::parse(dst);
    jobs.emplace_back(r.str(), dst);
  }
  int code = 0;
  nlohmann::json results = nlohmann::json::array();
  for (const auto& [src, dst] : jobs) {
    CopyOptions opts;
    if (first) {
      opts = std::move(*first);
      first.reset();
    } else {
      common_options(s, global, opts);
    }
    opts.concurrency = s.registry.concurrency;
    opts.source = src;
    opts.destination = dst;
    auto result = copy(opts, opener, log);
    nlohmann::json doc = {{"schemaVersion", 2}, {"command", "copy"}, {"source", src}, {"destination", dst}};
    std::string subject = result.verification_failed() ? src : "copy to " + dst;
    nlohmann::json one;
    int c = report_transfer(result, s.out.json, doc, "copied", subject, log, global, &one);
    if (s.out.json) results.push_back(std::move(one));
    code = std::max(code, c);  // 3 (verification) over 1 (proof) over 0
  }
  if (s.out.json)
    print_json({{"schemaVersion", 2},
                {"command", "copy"},
                {"imagesFile", s.images_file},
                {"destination", dest_text},
                {"imageSet", imageset_json(expansion)},
                {"results", results}});
  else
    summary_line("copied %s from %s to %s", counted(jobs.size(), "image").c_str(), s.images_file.c_str(), dest_text.c_str());
  return code;
}

} // namespace

void register_copy(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto* cmd = app.add_subcommand("copy", "Copy an image and all its referrers from one registry to another");
  auto s = std::make_shared<CopyState>();
  cmd->add_option("source", s->source,
                  "Source reference: registry/repo[:tag][@digest] (with -f: the destination host[:port][/namespace])");
  cmd->add_option("destination", s->destination,
                  "Destination: registry/repo[:tag] (default tag: the source's; a digest source without one is copied untagged)");
  cmd->add_option("-f,--images-file", s->images_file,
                  "Copy every image of this file (a plain list, or skopeo sync's YAML as save -f reads it) to "
                  "DEST/repository:tag; the one positional is then DEST = host[:port][/namespace]");
  cmd->add_option("--platform", s->platforms,
                  "Copy only this platform os/arch[/variant] of an index (repeatable); several get tags <tag>-<os>-<arch>; "
                  "refused for an index with a signature, which covers the whole index")
      ->allow_extra_args(false);
  cmd->add_flag("--no-referrers", s->no_referrers, "Do not copy referrers (signatures, SBOMs)");
  cmd->add_option("--artifact-type", s->artifact_types, "Copy only referrers of this artifact type (repeatable)")
      ->allow_extra_args(false);
  cmd->add_flag("--no-clobber", s->no_clobber,
                "Refuse to move an existing destination tag to another digest: send nothing and fail naming the tag");
  cmd->add_flag("--json", s->out.json, "Print the result as JSON on stdout");
  s->registry.add_to(*cmd);
  s->verify.add_to(*cmd);
  // Trust material carried in a bundle (--trust-pin) has no place in a copy: there is no bundle.
  if (auto* pin = cmd->get_option_no_throw("--trust-pin")) cmd->remove_option(pin);
  cmd->callback([s, &global, &action] {
    action = [s, &global] {
      if (!s->images_file.empty()) return copy_image_set(*s, global);
      if (s->source.empty() || s->destination.empty())
        throw Error(Errc::invalid_argument, "copy: give SOURCE and DESTINATION, or -f FILE and DESTINATION");
      CopyOptions opts;
      opts.source = s->source;
      opts.destination = s->destination;
      Reference src = Reference::parse(opts.source);
      Reference dst = Reference::parse(opts.destination);
      if (!s->registry.options.username.empty() && src.registry != dst.registry)
        // Explicit credentials belong to one registry (design §8): never hand them to another.
        throw Error(Errc::invalid_argument, "--username applies to one registry, but " + src.registry + " and " +
                                                dst.registry + " differ; use --registry-config for two");
      common_options(*s, global, opts);
      s->registry.finish();
      opts.concurrency = s->registry.concurrency;
      remote::Registries registries(s->registry.options);
      auto log = make_logger(global);
      auto result = copy(opts, [&](const std::string& reg, const std::string& repo) { return registries.open(reg, repo); }, log);
      nlohmann::json doc = {{"schemaVersion", 2}, {"command", "copy"}, {"source", s->source}, {"destination", s->destination}};
      std::string subject = result.verification_failed() ? s->source : "copy to " + s->destination;
      return report_transfer(result, s->out.json, doc, "copied", subject, log, global);
    };
  });
}

} // namespace ferry::cli

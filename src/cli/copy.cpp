// ferry copy: registry → registry with the graph semantics of save + push.
#include "common.hpp"
#include "transfer.hpp"

#include <ferry/error.hpp>

namespace ferry::cli {

void register_copy(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto* cmd = app.add_subcommand("copy", "Copy an image and all its referrers from one registry to another");
  struct State {
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
  auto s = std::make_shared<State>();
  cmd->add_option("source", s->source, "Source reference: registry/repo[:tag][@digest]")->required();
  cmd->add_option("destination", s->destination,
                  "Destination: registry/repo[:tag] (default tag: the source's; a digest source without one is copied untagged)")
      ->required();
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
      CopyOptions opts;
      opts.source = s->source;
      opts.destination = s->destination;
      for (const auto& p : s->platforms) opts.platforms.push_back(Platform::parse(p));
      opts.graph.referrers = !s->no_referrers;
      opts.graph.artifact_types = s->artifact_types;
      opts.no_clobber = s->no_clobber;
      Reference src = Reference::parse(opts.source);
      Reference dst = Reference::parse(opts.destination);
      if (!s->registry.options.username.empty() && src.registry != dst.registry)
        // Explicit credentials belong to one registry (design §8): never hand them to another.
        throw Error(Errc::invalid_argument, "--username applies to one registry, but " + src.registry + " and " +
                                                dst.registry + " differ; use --registry-config for two");
      // The staged layout does not exist yet: trust material is loaded (and checked) now,
      // before anything is fetched.
      s->verify.check({}, BundleFormat::dir);
      opts.verify = s->verify.build(nullptr);
      opts.only_verified = s->verify.only_verified;
      opts.after_verify = test_hook("FERRY_TEST_HOOK_AFTER_VERIFY");
      opts.before_proof = test_hook("FERRY_TEST_HOOK_BEFORE_PROOF");
      opts.progress = global.progress.get();
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

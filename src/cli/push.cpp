// ferry push: bundle → registry.
#include "common.hpp"

#include <ferry/error.hpp>

namespace ferry::cli {

namespace {

nlohmann::json to_json(const PushResult& r, const std::string& target)
{
  nlohmann::json roots = nlohmann::json::array();
  for (const auto& root : r.roots)
    roots.push_back({{"destination", root.destination}, {"digest", root.desc.digest.str()}, {"mediaType", root.desc.media_type}});
  return {{"schemaVersion", 1},
          {"command", "push"},
          {"target", target},
          {"roots", roots},
          {"blobs", {{"pushed", r.blobs_pushed}, {"skipped", r.blobs_skipped}, {"mounted", r.blobs_mounted}, {"bytes", r.bytes_pushed}}},
          {"manifests", {{"pushed", r.manifests_pushed}, {"skipped", r.manifests_skipped}}},
          {"tags", {{"written", r.tags_written}, {"unchanged", r.tags_unchanged}}},
          {"referrers", r.referrers},
          {"fallbackIndexesWritten", r.fallback_indexes_written},
          {"referrersApi", r.referrers_api}};
}

} // namespace

void register_push(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto* cmd = app.add_subcommand("push", "Push a bundle into a registry with every digest, tag and referrer");
  struct State {
    std::string bundle;
    std::string target;
    std::string format;
    std::vector<std::string> maps;
    OutputOptions out;
    RegistryFlags registry;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("bundle", s->bundle, "Bundle to push (*.tar, *.tar.zst or a layout directory)")->required();
  cmd->add_option("target", s->target, "host[:port][/namespace]; images land at TARGET/<source repository>")->required();
  cmd->add_option("--format", s->format, "Override the bundle format: tar, tar.zst or dir");
  cmd->add_option("--map", s->maps, "Rename a source repository: SRC_REPO=DST_REPO (repeatable)")
      ->allow_extra_args(false);
  cmd->add_flag("--json", s->out.json, "Print the result as JSON on stdout");
  s->registry.add_to(*cmd);
  cmd->callback([s, &global, &action] {
    action = [s, &global] {
      PushOptions opts;
      opts.bundle = s->bundle;
      opts.target = s->target;
      if (!s->format.empty()) opts.format = parse_format(s->format);
      for (const auto& m : s->maps) {
        auto eq = m.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == m.size())
          throw Error(Errc::invalid_argument, "invalid --map \"" + m + "\": want SRC_REPO=DST_REPO");
        opts.map[m.substr(0, eq)] = m.substr(eq + 1);
      }
      s->registry.finish();
      opts.concurrency = s->registry.concurrency;
      remote::Registries registries(s->registry.options);
      auto result = push(opts, [&](const std::string& reg, const std::string& repo) { return registries.open(reg, repo); },
                         make_logger(global));
      if (s->out.json) {
        print_json(to_json(result, s->target));
      } else {
        for (const auto& root : result.roots) std::printf("pushed %s %s\n", root.destination.c_str(), root.desc.digest.str().c_str());
        std::printf("blobs: %zu pushed (%s), %zu mounted, %zu already there; manifests: %zu pushed, %zu already there; tags: %zu "
                    "written; referrers: %zu (%zu fallback indexes written)\n",
                    result.blobs_pushed, human_bytes(result.bytes_pushed).c_str(), result.blobs_mounted, result.blobs_skipped,
                    result.manifests_pushed, result.manifests_skipped, result.tags_written, result.referrers,
                    result.fallback_indexes_written);
      }
      return 0;
    };
  });
}

} // namespace ferry::cli

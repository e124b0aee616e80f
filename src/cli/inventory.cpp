// ferry inventory: what the far side already has (a registry below a prefix, or a bundle), for
// delta bundles (save --have).
#include "common.hpp"

#include <ferry/error.hpp>
#include <ferry/inventory.hpp>
#include <ferry/util/file.hpp>

#include <filesystem>

namespace ferry::cli {

namespace {

nlohmann::json summary_json(const Inventory& inv, const std::string& output)
{
  std::uint64_t bytes = 0;
  auto blobs = inv.blobs();
  for (const auto& [d, h] : blobs) bytes += h.size;
  return {{"schemaVersion", 1},
          {"command", "inventory"},
          {"kind", inv.kind},
          {"source", inv.source},
          {"output", output.empty() ? nlohmann::json(nullptr) : nlohmann::json(output)},
          {"digest", inv.digest().str()},
          {"repositories", inv.repositories.size()},
          {"tags", inv.tag_count()},
          {"manifests", inv.manifest_count()},
          {"blobs", blobs.size()},
          {"bytes", bytes}};
}

} // namespace

void register_inventory(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto* cmd = app.add_subcommand("inventory",
                                 "List what a registry (below a prefix) or a bundle holds, for delta bundles (save --have)");
  struct State {
    std::string source;
    std::string output;
    OutputOptions out;
    RegistryFlags registry;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("source", s->source,
                  "A registry and prefix (host[:port][/prefix]: every repository at or below it), or a bundle (a directory, "
                  "a .tar, a .tar.zst, a first volume)")
      ->required();
  cmd->add_option("-o,--output", s->output, "Write the inventory to this file (default: print it on stdout)");
  cmd->add_flag("--json", s->out.json, "With -o: print a summary as JSON on stdout");
  s->registry.add_to(*cmd);
  cmd->callback([s, &global, &action] {
    action = [s, &global] {
      auto log = make_logger(global);
      Inventory inv;
      std::error_code ec;
      if (std::filesystem::exists(s->source, ec)) {
        // A path that exists is a bundle; anything else names a registry.
        LayoutReader::Options ro;
        ro.depth = ReadDepth::head;
        auto bundle = LayoutReader::open(s->source, format_from_path(s->source), ro);
        inv = inventory_bundle(*bundle);
      } else {
        s->registry.finish();
        remote::Registries registries(s->registry.options);
        InventoryOptions opts;
        opts.target = s->source;
        opts.concurrency = s->registry.concurrency;
        inv = inventory_registry(opts, [&](const std::string& reg, const std::string& repo) { return registries.open(reg, repo); },
                                 log);
      }
      std::string text = inv.to_json();
      if (s->output.empty()) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fputc('\n', stdout);
        return 0;
      }
      write_file_atomic(s->output, text + "\n");
      auto j = summary_json(inv, s->output);
      if (s->out.json) {
        print_json(j);
      } else {
        summary_line("%s: inventory of %s %s: %s, %s, %s, %s, %s (digest %s)", s->output.c_str(), inv.kind.c_str(),
                     inv.source.c_str(), counted(j["repositories"].get<std::size_t>(), "repository").c_str(),
                     counted(j["tags"].get<std::size_t>(), "tag").c_str(),
                     counted(j["manifests"].get<std::size_t>(), "manifest").c_str(),
                     counted(j["blobs"].get<std::size_t>(), "blob").c_str(),
                     human_bytes(j["bytes"].get<std::uint64_t>()).c_str(), inv.digest().str().c_str());
      }
      return 0;
    };
  });
}

} // namespace ferry::cli

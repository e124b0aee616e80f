// ferry inspect: the graph in a bundle, as a tree.
#include "common.hpp"

#include <ferry/error.hpp>
#include <ferry/media_type.hpp>

namespace ferry::cli {

namespace {

nlohmann::json node_json(const InspectNode& n)
{
  nlohmann::json j = {{"digest", n.desc.digest.str()}, {"mediaType", n.desc.media_type}, {"size", n.size}};
  if (!n.artifact_type.empty()) j["artifactType"] = n.artifact_type;
  if (n.desc.platform) j["platform"] = platform_json(*n.desc.platform);
  if (!n.desc.annotations.empty()) j["annotations"] = n.desc.annotations;
  if (!n.manifests.empty()) {
    j["manifests"] = nlohmann::json::array();
    for (const auto& c : n.manifests) j["manifests"].push_back(node_json(c));
  }
  if (!n.kind.empty()) j["kind"] = n.kind;
  if (!n.tag.empty()) j["tag"] = n.tag;
  j["referrers"] = nlohmann::json::array();
  for (const auto& r : n.referrers) j["referrers"].push_back(node_json(r));
  if (!n.attachments.empty()) {
    j["attachments"] = nlohmann::json::array();
    for (const auto& a : n.attachments) j["attachments"].push_back(node_json(a));
  }
  return j;
}

// How people read a signature-like node's kind.
std::string kind_label(const InspectNode& n)
{
  if (n.kind == "sigstore-bundle") return "Sigstore bundle";
  if (n.kind == "cosign-sig") return "cosign signatures " + n.tag;
  if (n.kind == "cosign-att") return "cosign attestations " + n.tag;
  if (n.kind == "cosign-sbom") return "cosign SBOM " + n.tag;
  return {};
}

void print_tree(const InspectNode& n, const std::string& prefix)
{
  std::vector<std::pair<const InspectNode*, bool>> kids;  // (node, is_referrer or attachment)
  for (const auto& c : n.manifests) kids.emplace_back(&c, false);
  for (const auto& r : n.referrers) kids.emplace_back(&r, true);
  for (const auto& a : n.attachments) kids.emplace_back(&a, true);
  for (std::size_t i = 0; i < kids.size(); ++i) {
    bool last = i + 1 == kids.size();
    const InspectNode& k = *kids[i].first;
    std::string label = kids[i].second ? (k.artifact_type.empty() ? std::string("(referrer)") : k.artifact_type)
                                       : (k.desc.platform ? k.desc.platform->str() : std::string("(manifest)"));
    if (auto kind = kind_label(k); !kind.empty()) label = k.tag.empty() ? kind + " (" + label + ")" : kind;
    out_line("%s%s %s %s (%s)", prefix.c_str(), last ? "└──" : "├──", label.c_str(), k.desc.digest.str().c_str(),
             human_bytes(k.size).c_str());
    print_tree(k, prefix + (last ? "    " : "│   "));
  }
}

} // namespace

void register_inspect(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto* cmd = app.add_subcommand("inspect", "Show a bundle's images and their referrer trees");
  struct State {
    std::string bundle;
    std::string format;
    OutputOptions out;
    LimitFlags limits;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("bundle", s->bundle, "Bundle (*.tar, *.tar.zst, *.tar.gz/*.tgz or a layout directory)")->required();
  cmd->add_option("--format", s->format, "Override the bundle format: tar, tar.zst, tar.gz or dir");
  cmd->add_flag("--json", s->out.json, "Print the result as JSON on stdout");
  s->limits.add_to(*cmd, false);
  cmd->callback([s, &global, &action] {
    action = [s, &global] {
      BundleFormat format = s->format.empty() ? format_from_path(s->bundle) : parse_format(s->format);
      // Every entry of a directory or plain tar is checked (a listing, a header walk); a
      // `.tar.zst` is read only up to its head (design §3), each entry checked as it passes.
      auto bundle = LayoutReader::open(s->bundle, format, s->limits.options(ReadDepth::head));
      auto r = inspect(*bundle);
      if (s->out.json) {
        nlohmann::json roots = nlohmann::json::array();
        for (const auto& root : r.roots) {
          nlohmann::json j = node_json(root.node);
          j["reference"] = root.reference;
          if (!root.tag.empty()) j["tag"] = root.tag;
          roots.push_back(j);
        }
        nlohmann::json doc = {{"schemaVersion", 2}, {"command", "inspect"}, {"bundle", r.bundle.string()},
                              {"format", format_name(r.format)}, {"roots", roots}, {"manifests", r.manifests},
                              {"blobs", r.blobs}, {"bytes", r.bytes}, {"warnings", r.warnings},
                              {"ignoredEntries", bundle->ignored_entries()}};
        doc["delta"] = delta_json(r.record ? r.record->delta : std::nullopt);
        doc["imageSet"] = r.record && r.record->imageset ? nlohmann::json::parse(*r.record->imageset) : nlohmann::json(nullptr);
        doc["trust"] = r.trust ? nlohmann::json{{"digest", r.trust->digest.str()}, {"files", r.trust_files}}
                               : nlohmann::json(nullptr);
        print_json(doc);
        return 0;
      }
      for (const auto& w : r.warnings) err_line("warning: %s", w.c_str());
      if (auto note = ignored_entries_note(*bundle); !note.empty()) make_logger(global)(note);
      summary_line("%s (%s): %s, %s, %s, %s", r.bundle.c_str(), format_name(r.format),
                   counted(r.roots.size(), "image").c_str(), counted(r.manifests, "manifest").c_str(),
                   counted(r.blobs, "blob").c_str(), human_bytes(r.bytes).c_str());
      for (const auto& root : r.roots) {
        std::string kind = media_type::is_index(root.node.desc.media_type) ? "index" : "image";
        out_line("%s %s (%s, %s)", root.reference.empty() ? "(untagged)" : root.reference.c_str(),
                 root.node.desc.digest.str().c_str(), kind.c_str(), human_bytes(root.node.size).c_str());
        print_tree(root.node, "");
      }
      if (r.record && r.record->delta) {
        const auto& d = *r.record->delta;
        out_line("delta of %s %s (base %s): %s, %s, left out (verify with --base, --base-inventory or --against)",
                 d.base_kind.c_str(), d.base_source.c_str(), d.base.str().c_str(), counted(d.left_out.size(), "blob").c_str(),
                 human_bytes(d.left_out_bytes()).c_str());
      }
      if (r.record && r.record->imageset) out_line("image set: recorded (inspect --json shows it)");
      if (r.trust) {
        out_line("trust material: %s (pin)", r.trust->digest.str().c_str());
        for (const auto& f : r.trust_files) out_line("    %s", f.c_str());
      }
      return 0;
    };
  });
}

} // namespace ferry::cli

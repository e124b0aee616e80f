#include <ferry/ops.hpp>

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>

namespace ferry {

namespace {

InspectNode build_node(const Graph& graph, const Descriptor& desc, std::set<Digest>& path, const std::string& suffix = {})
{
  InspectNode node;
  node.desc = desc;
  node.size = content_size(graph, desc.digest);
  if (!path.insert(desc.digest).second) return node;  // a cycle is shown once
  if (auto bytes = graph.manifests.get(desc.digest)) {
    Manifest m = Manifest::parse(*bytes, desc.media_type, desc.digest.str());
    node.artifact_type = m.effective_artifact_type();
    node.kind = signature_kind(m, suffix);
    if (m.is_index())
      for (const auto& child : m.manifests)
        if (graph.contains(child.digest)) node.manifests.push_back(build_node(graph, child, path));
  }
  if (auto it = graph.referrers.find(desc.digest); it != graph.referrers.end())
    for (const auto& r : it->second) {
      InspectNode child = build_node(graph, graph.nodes.at(r.digest), path);
      child.artifact_type = r.artifact_type;
      child.desc.annotations = r.annotations;
      node.referrers.push_back(std::move(child));
    }
  if (auto it = graph.attachments.find(desc.digest); it != graph.attachments.end())
    for (const auto& a : it->second) {
      InspectNode child = build_node(graph, graph.nodes.at(a.desc.digest), path, a.suffix);
      child.tag = desc.digest.cosign_tag(a.suffix);
      node.attachments.push_back(std::move(child));
    }
  path.erase(desc.digest);
  return node;
}

} // namespace

std::string signature_kind(const Manifest& m, const std::string& attachment_suffix)
{
  if (!attachment_suffix.empty()) return "cosign-" + attachment_suffix;
  if (is_signature_manifest(m)) return "notation-signature";
  if (m.subject && is_cosign_signature_manifest(m)) return "sigstore-bundle";
  return {};
}

InspectResult inspect(LayoutReader& bundle)
{
  InspectResult result;
  result.bundle = bundle.path();
  result.format = bundle.format();
  // The one definition of the roots (design §3), on the index.json and manifests read once.
  BundleContents contents = classify_complete(bundle);
  result.warnings = ref_name_collisions(bundle.index_entries());
  result.trust = contents.trust;
  if (contents.trust)
    for (const auto& [title, desc] : trust_artifact_files(*contents.trust, *bundle.metadata().get(contents.trust->digest)))
      result.trust_files.push_back(title);
  if (contents.record) {
    try {
      result.record = read_record(bundle, *contents.record);
    } catch (const Error& e) {
      result.warnings.push_back(e.what());
    }
  }
  Graph graph;
  for (const auto& root : contents.roots) {
    graph.add(bundle, root.desc, GraphOptions{});
    InspectResult::Root r;
    r.reference = root.source ? root.source->str() : root.tag;
    r.tag = root.tag;
    std::set<Digest> path;
    r.node = build_node(graph, root.desc, path);
    if (root.desc.platform) r.node.desc.platform = root.desc.platform;
    result.roots.push_back(std::move(r));
  }
  // What the bundle holds: a delta's left-out blobs are named by its graph, not carried.
  for (const auto& [d, desc] : graph.nodes) {
    if (media_type::is_manifest(desc.media_type)) ++result.manifests;
    else if (result.record && result.record->delta && result.record->delta->find(d)) continue;
    else ++result.blobs;
    result.bytes += desc.size;
  }
  return result;
}

} // namespace ferry

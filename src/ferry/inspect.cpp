#include <ferry/ops.hpp>

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>

namespace ferry {

namespace {

InspectNode build_node(const Graph& graph, const Descriptor& desc, std::set<Digest>& path)
{
  InspectNode node;
  node.desc = desc;
  node.size = content_size(graph, desc.digest);
  if (!path.insert(desc.digest).second) return node;  // a cycle is shown once
  if (auto bytes = graph.manifests.get(desc.digest)) {
    Manifest m = Manifest::parse(*bytes, desc.media_type, desc.digest.str());
    node.artifact_type = m.effective_artifact_type();
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
  path.erase(desc.digest);
  return node;
}

} // namespace

InspectResult inspect(const std::filesystem::path& bundle_path, std::optional<BundleFormat> format)
{
  InspectResult result;
  result.bundle = bundle_path;
  result.format = format.value_or(format_from_path(bundle_path));
  auto bundle = LayoutReader::open(bundle_path, result.format);
  // Every entry of a directory or plain tar is checked (cheap: a listing, a header walk); a
  // `.tar.zst` is read only up to its head (design §3: inspect of a 100 GB bundle reads only
  // the head), each entry of which is checked as it is read. verify and push read it all.
  if (bundle->random_access()) bundle->check_structure();
  BundleContents contents = classify(*bundle);
  result.trust = contents.trust;
  if (contents.trust)
    if (auto bytes = bundle->metadata().get(contents.trust->digest))
      for (const auto& l : Manifest::parse(*bytes, contents.trust->media_type, contents.trust->digest.str()).layers)
        result.trust_files.push_back(l.annotation(std::string(k_annotation_title)));
  Graph graph;
  for (const auto& root : contents.roots) {
    graph.add(*bundle, root.desc, GraphOptions{});
    InspectResult::Root r;
    r.reference = root.source ? root.source->str() : root.tag;
    r.tag = root.tag;
    std::set<Digest> path;
    r.node = build_node(graph, root.desc, path);
    if (root.desc.platform) r.node.desc.platform = root.desc.platform;
    result.roots.push_back(std::move(r));
  }
  for (const auto& [d, desc] : graph.nodes) {
    if (media_type::is_manifest(desc.media_type)) ++result.manifests;
    else ++result.blobs;
    result.bytes += desc.size;
  }
  return result;
}

} // namespace ferry

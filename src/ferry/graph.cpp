#include <ferry/graph.hpp>

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>

#include <algorithm>

namespace ferry {

namespace {

struct Walker {
  Graph& graph;
  Source& source;
  const GraphOptions& options;
  std::set<Digest> in_progress;

  enum class Role { content, referrer, attachment };

  /// The artifact type a cosign tag attachment is filtered by: its first layer's media type.
  static std::string attachment_type(const Manifest& m) { return m.layers.empty() ? std::string() : m.layers[0].media_type; }

  bool wanted(const std::string& type) const
  {
    return options.artifact_types.empty() ||
           std::find(options.artifact_types.begin(), options.artifact_types.end(), type) != options.artifact_types.end();
  }

  void visit(const Descriptor& desc, Role role)
  {
    const bool as_referrer = role == Role::referrer;
    if (graph.nodes.count(desc.digest)) return;
    if (in_progress.count(desc.digest))
      throw Error(Errc::invalid_manifest, desc.digest.str() + ": cycle in the content graph");
    graph.origin.emplace(desc.digest, &source);
    if (!media_type::is_manifest(desc.media_type)) {
      graph.nodes.emplace(desc.digest, desc);
      graph.order.push_back(desc.digest);
      return;
    }
    in_progress.insert(desc.digest);
    std::string bytes;
    try {
      bytes = fetch_bytes(source, desc, k_max_manifest_size);
    } catch (...) {
      rethrow_with_context(std::string(as_referrer ? "referrer " : "manifest ") + desc.digest.str());
    }
    Manifest m = Manifest::parse(bytes, desc.media_type, desc.digest.str());
    graph.manifests.put(desc, bytes);
    bool is_referrer_artifact = m.subject.has_value() || role == Role::attachment;
    if (m.is_index()) {
      for (const auto& child : m.manifests) visit(child, Role::content);
    } else {
      graph.small_blobs.insert(m.config->digest);
      visit(*m.config, Role::content);
      for (const auto& layer : m.layers) {
        if (is_referrer_artifact) graph.small_blobs.insert(layer.digest);
        visit(layer, Role::content);
      }
    }
    in_progress.erase(desc.digest);
    graph.nodes.emplace(desc.digest, desc);
    graph.order.push_back(desc.digest);
    if (as_referrer) graph.referrer_nodes.insert(desc.digest);
    if (role == Role::attachment) graph.attachment_nodes.insert(desc.digest);
    if (!options.referrers) return;
    // cosign's tags first: the repository's tag list read for them also answers the
    // referrers tag schema's question without a request per manifest. Signatures have no
    // attachments of their own (a cosign-signed SBOM does: its `.sig`).
    if (options.cosign_tags && !is_signature_manifest(m) && !is_cosign_signature_manifest(m)) {
      std::vector<Attachment> found;
      try {
        found = source.attachments(desc);
      } catch (...) {
        rethrow_with_context("cosign attachments of " + desc.digest.str());
      }
      for (const auto& a : found) {
        if (a.desc.digest == desc.digest) continue;
        if (!options.artifact_types.empty()) {
          std::string bytes;
          try {
            bytes = fetch_bytes(source, a.desc, k_max_manifest_size);
          } catch (...) {
            rethrow_with_context("cosign attachment " + a.desc.digest.str());
          }
          if (!wanted(attachment_type(Manifest::parse(bytes, a.desc.media_type, a.desc.digest.str())))) continue;
        }
        auto& list = graph.attachments[desc.digest];
        if (std::none_of(list.begin(), list.end(), [&](const Attachment& x) { return x.suffix == a.suffix; }))
          list.push_back(a);
        visit(a.desc, Role::attachment);
      }
    }
    if (role == Role::attachment) return;
    std::vector<Descriptor> refs;
    try {
      refs = source.referrers(desc);
    } catch (...) {
      rethrow_with_context("referrers of " + desc.digest.str());
    }
    for (const auto& r : refs) {
      if (r.digest == desc.digest) continue;
      if (!wanted(r.artifact_type)) continue;
      if (!media_type::is_manifest(r.media_type))
        throw Error(Errc::invalid_manifest, "referrer " + r.digest.str() + " of " + desc.digest.str() +
                                                " has media type " + r.media_type + ", not a manifest");
      auto& list = graph.referrers[desc.digest];
      if (std::none_of(list.begin(), list.end(), [&](const Descriptor& d) { return d.digest == r.digest; }))
        list.push_back(r);
      visit(r, Role::referrer);
    }
  }
};

} // namespace

void Graph::add(Source& source, const Descriptor& root, const GraphOptions& options)
{
  Walker w{*this, source, options, {}};
  w.visit(root, Walker::Role::content);
}

void Graph::merge(const Graph& other)
{
  for (const auto& d : other.order) {
    if (nodes.count(d)) continue;
    const Descriptor& desc = other.nodes.at(d);
    nodes.emplace(d, desc);
    order.push_back(d);
    if (auto bytes = other.manifests.get(d)) manifests.put(desc, *bytes);
  }
  for (const auto& [subject, refs] : other.referrers) {
    auto& list = referrers[subject];
    for (const auto& r : refs)
      if (std::none_of(list.begin(), list.end(), [&](const Descriptor& x) { return x.digest == r.digest; })) list.push_back(r);
  }
  referrer_nodes.insert(other.referrer_nodes.begin(), other.referrer_nodes.end());
  for (const auto& [subject, list] : other.attachments) {
    auto& mine = attachments[subject];
    for (const auto& a : list)
      if (std::none_of(mine.begin(), mine.end(), [&](const Attachment& x) { return x.suffix == a.suffix; })) mine.push_back(a);
  }
  attachment_nodes.insert(other.attachment_nodes.begin(), other.attachment_nodes.end());
  small_blobs.insert(other.small_blobs.begin(), other.small_blobs.end());
  origin.insert(other.origin.begin(), other.origin.end());
}

std::vector<Descriptor> Graph::blobs() const
{
  std::vector<Descriptor> out;
  out.reserve(nodes.size() - std::min(nodes.size(), manifests.size()));
  for (const auto& d : order) {
    const auto& desc = nodes.at(d);
    if (!media_type::is_manifest(desc.media_type)) out.push_back(desc);
  }
  return out;
}

std::vector<Descriptor> Graph::manifests_in_order() const
{
  std::vector<Descriptor> out;
  out.reserve(manifests.size());
  for (const auto& d : order) {
    const auto& desc = nodes.at(d);
    if (media_type::is_manifest(desc.media_type)) out.push_back(desc);
  }
  return out;
}

std::vector<Descriptor> Graph::referrer_closure(const Digest& subject) const
{
  std::vector<Descriptor> out;
  std::set<Digest> seen{subject};
  std::vector<Digest> stack{subject};
  while (!stack.empty()) {
    Digest d = stack.back();
    stack.pop_back();
    auto it = referrers.find(d);
    if (it == referrers.end()) continue;
    for (const auto& r : it->second)
      if (seen.insert(r.digest).second) {
        out.push_back(r);
        stack.push_back(r.digest);
      }
  }
  return out;
}

std::vector<Descriptor> select_platforms(const Descriptor& index, const std::string& index_bytes,
                                         const std::vector<Platform>& platforms)
{
  Manifest m = Manifest::parse(index_bytes, index.media_type, index.digest.str());
  std::vector<Descriptor> out;
  for (const auto& child : m.manifests) {
    if (!child.platform) continue;
    for (const auto& p : platforms)
      if (p.matches(*child.platform)) {
        out.push_back(child);
        break;
      }
  }
  return out;
}

} // namespace ferry

#include <ferry/bundle.hpp>

#include <ferry/error.hpp>
#include <ferry/util/text.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>
#include <ferry/record.hpp>

#include <algorithm>
#include <map>
#include <regex>

using nlohmann::json;

namespace ferry {

bool is_fallback_tag(const std::string& tag)
{
  static const std::regex re("^(sha256-[0-9a-f]{64}|sha512-[0-9a-f]{128})$");
  return std::regex_match(tag, re);
}

BundleContents classify(const LayoutReader& bundle)
{
  BundleContents out;
  const std::string where = bundle.path().string() + ": index.json";
  std::size_t i = 0;
  for (const auto& e : bundle.index_entries()) {
    const std::string entry = where + " manifests[" + std::to_string(i++) + "] " + e.digest.str();
    if (!media_type::is_manifest(e.media_type))
      throw Error(Errc::invalid_manifest,
                  entry + " has media type \"" + e.media_type + "\", not a manifest or an index (an image layout lists only those)");
    if (auto error = bundle.manifest_error(e.digest)) throw Error(Errc::invalid_manifest, entry + ": " + *error);
    auto bytes = bundle.metadata().get(e.digest);
    if (!bytes) {
      out.unreadable.push_back(e);
      continue;
    }
    Manifest m = Manifest::parse(*bytes, e.media_type, e.digest.str());
    std::string ref_name = e.annotation(std::string(k_annotation_ref_name));
    if (ref_name == k_trust_ref_name || e.artifact_type == media_type::k_ferry_trust) {
      if (!is_trust_artifact(m))
        throw Error(Errc::invalid_manifest, entry + " is named as the trust artifact but is not one");
      if (out.trust && out.trust->digest != e.digest)
        throw Error(Errc::invalid_manifest, entry + " is a second trust artifact (the first is " + out.trust->digest.str() + ")");
      out.trust = e;
      continue;
    }
    if (ref_name == k_record_ref_name || e.artifact_type == k_artifact_type_record) {
      if (!media_type::is_image_manifest(m.media_type) || m.artifact_type != k_artifact_type_record || m.subject)
        throw Error(Errc::invalid_manifest, entry + " is named as the bundle's record but is not one");
      if (out.record && out.record->digest != e.digest)
        throw Error(Errc::invalid_manifest, entry + " is a second record (the first is " + out.record->digest.str() + ")");
      out.record = e;
      continue;
    }
    if (is_fallback_tag(ref_name) && m.is_index()) {
      out.fallback_lists.push_back(e);
      continue;
    }
    if (m.subject) {
      out.referrer_entries.push_back(e);
      continue;
    }
    // A cosign attachment travels with its subject; one whose subject the bundle does not
    // hold is a root like any tagged image (it is pushed under its tag).
    if (auto tag = entry_cosign_tag(e); tag && media_type::is_image_manifest(m.media_type) && bundle.metadata().get(tag->subject)) {
      out.attachments.emplace_back(std::move(*tag), e);
      continue;
    }
    BundleRoot root;
    root.desc = e;
    std::string image_name = e.annotation(std::string(k_annotation_image_name));
    if (!image_name.empty()) {
      try {
        root.source = Reference::parse(image_name);
      } catch (const Error&) {
        // A name ferry cannot parse is treated as unknown: the root goes to TARGET itself.
      }
    }
    root.tag = ref_name;
    if (!root.tag.empty() && (root.tag.find('/') != std::string::npos || root.tag.find(':') != std::string::npos)) {
      // Some tools store a full reference in ref.name.
      try {
        Reference r = Reference::parse(root.tag);
        if (!root.source) root.source = r;
        root.tag = r.tag;
      } catch (const Error&) {
        throw Error(Errc::invalid_manifest, entry + ": ref.name \"" + root.tag + "\" is neither a tag nor a reference");
      }
    }
    if (!root.tag.empty() && !Reference::is_valid_tag(root.tag))
      throw Error(Errc::invalid_manifest, entry + ": ref.name \"" + root.tag + "\" is neither a tag nor a reference");
    if (root.tag.empty() && root.source && !root.source->tag.empty()) root.tag = root.source->tag;
    out.roots.push_back(std::move(root));
  }
  return out;
}

BundleContents classify_complete(const LayoutReader& bundle)
{
  BundleContents out = classify(bundle);
  if (!out.unreadable.empty()) {
    const Digest& d = out.unreadable.front().digest;
    throw Error(Errc::not_found, bundle.path().string() + ": manifest " + d.str() +
                                     (bundle.blob(d) ? " does not match its digest" : " is missing"));
  }
  return out;
}

std::vector<std::string> root_ref_names(const std::vector<BundleRoot>& roots)
{
  std::map<std::string, std::size_t> tags, full;
  auto full_name = [](const BundleRoot& r) { return r.source ? r.source->name() + ":" + r.tag : r.tag; };
  for (const auto& r : roots)
    if (!r.tag.empty()) {
      ++tags[r.tag];
      ++full[full_name(r)];
    }
  std::vector<std::string> out;
  for (const auto& r : roots) {
    if (r.tag.empty()) out.emplace_back();
    else if (tags[r.tag] == 1) out.push_back(r.tag);
    else if (full[full_name(r)] == 1 && r.source) out.push_back(full_name(r));
    else out.push_back((r.source ? full_name(r) : r.tag) + "@" + r.desc.digest.str());
  }
  return out;
}

std::vector<std::string> ref_name_collisions(const std::vector<Descriptor>& index_entries)
{
  std::map<std::string, std::vector<Digest>> names;
  std::vector<std::string> order;
  for (const auto& e : index_entries) {
    std::string name = e.annotation(std::string(k_annotation_ref_name));
    if (name.empty()) continue;
    auto& digests = names[name];
    if (digests.empty()) order.push_back(name);
    if (std::find(digests.begin(), digests.end(), e.digest) == digests.end()) digests.push_back(e.digest);
  }
  // Bounded (design §8): at most 100 lines, 4 digests and 256 bytes of a name in each.
  constexpr std::size_t k_max_lines = 100, k_max_digests = 4, k_max_name = 256;
  std::vector<std::string> out;
  std::size_t more = 0;
  for (const auto& name : order) {
    const auto& digests = names[name];
    if (digests.size() < 2) continue;
    if (out.size() == k_max_lines) {
      ++more;
      continue;
    }
    std::string list;
    for (std::size_t i = 0; i < digests.size() && i < k_max_digests; ++i) list += (i ? ", " : "") + digests[i].str();
    if (digests.size() > k_max_digests) list += " and " + std::to_string(digests.size() - k_max_digests) + " more";
    std::string shown = name.size() > k_max_name ? name.substr(0, k_max_name) + "..." : name;
    out.push_back("index.json: ref.name \"" + shown + "\" names " + std::to_string(digests.size()) +
                  " different manifests (" + list +
                  "): skopeo, umoci and podman take one of them by that name; select the image by digest");
  }
  if (more)
    out.push_back("index.json: " + counted(more, "more ref.name") +
                  " each naming several different manifests");
  return out;
}

std::string build_index_json(const std::vector<BundleRoot>& roots, const Graph& graph, const std::optional<Descriptor>& trust,
                             const std::optional<Descriptor>& record)
{
  json manifests = json::array();
  std::set<Digest> listed;
  auto names = root_ref_names(roots);
  for (std::size_t i = 0; i < roots.size(); ++i) {
    const BundleRoot& r = roots[i];
    json e = r.desc.to_json_basic();
    if (r.desc.platform) e["platform"] = r.desc.to_json()["platform"];
    json ann = json::object();
    if (r.source) ann[std::string(k_annotation_image_name)] = r.source->str();
    if (!names[i].empty()) ann[std::string(k_annotation_ref_name)] = names[i];
    if (!ann.empty()) e["annotations"] = ann;
    manifests.push_back(e);
    listed.insert(r.desc.digest);
  }
  for (const auto& d : graph.order) {
    if (!graph.referrer_nodes.count(d) || listed.count(d)) continue;
    const Descriptor& node = graph.nodes.at(d);
    json e = node.to_json_basic();
    auto bytes = graph.manifests.get(d);
    Manifest m = Manifest::parse(*bytes, node.media_type, d.str());
    if (auto at = m.effective_artifact_type(); !at.empty()) e["artifactType"] = at;
    manifests.push_back(e);
    listed.insert(d);
  }
  for (const auto& [subject, list] : graph.attachments)
    for (const auto& a : list) {
      if (!listed.insert(a.desc.digest).second) continue;
      json e = graph.nodes.at(a.desc.digest).to_json_basic();
      e["annotations"] = {{std::string(k_annotation_ref_name), subject.cosign_tag(a.suffix)}};
      manifests.push_back(e);
    }
  if (trust) {
    json e = trust->to_json_basic();
    e["artifactType"] = media_type::k_ferry_trust;
    e["annotations"] = {{std::string(k_annotation_ref_name), std::string(k_trust_ref_name)}};
    manifests.push_back(e);
  }
  if (record) {
    json e = record->to_json_basic();
    e["artifactType"] = k_artifact_type_record;
    e["annotations"] = {{std::string(k_annotation_ref_name), std::string(k_record_ref_name)}};
    manifests.push_back(e);
  }
  json index = {{"schemaVersion", 2}, {"mediaType", media_type::k_oci_index}, {"manifests", manifests}};
  return index.dump();
}

std::uint64_t content_size(const Graph& graph, const Digest& root)
{
  std::uint64_t total = 0;
  std::set<Digest> seen;
  std::vector<Digest> stack{root};
  while (!stack.empty()) {
    Digest d = stack.back();
    stack.pop_back();
    auto it = graph.nodes.find(d);
    if (it == graph.nodes.end() || !seen.insert(d).second) continue;
    total += it->second.size;
    if (auto bytes = graph.manifests.get(d))
      for (const auto& child : successors(it->second, *bytes)) stack.push_back(child.digest);
  }
  return total;
}

} // namespace ferry

#include <ferry/inventory.hpp>

#include <ferry/bundle.hpp>
#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/util/file.hpp>
#include <ferry/util/json.hpp>
#include <ferry/util/parallel.hpp>
#include <ferry/util/text.hpp>

#include <mutex>
#include <nlohmann/json.hpp>

using nlohmann::json;

namespace ferry {

namespace {

// What one repository's graph holds: manifests by digest, other blobs with their sizes.
void add_graph(Inventory::Repository& repo, const Graph& graph)
{
  for (const auto& [d, desc] : graph.nodes) {
    if (media_type::is_manifest(desc.media_type)) repo.manifests.insert(d);
    else repo.blobs[d] = desc.size;
  }
}

Digest parse_digest(const json& j, const std::string& where)
{
  if (!j.is_string()) throw Error(Errc::invalid_manifest, where + ": a digest is not a string");
  try {
    return Digest::parse(j.get<std::string>());
  } catch (const Error&) {
    throw Error(Errc::invalid_manifest, where + ": \"" + j.get<std::string>().substr(0, 80) + "\" is not a digest");
  }
}

} // namespace

std::string Inventory::to_json() const
{
  json repos = json::object();
  for (const auto& [name, r] : repositories) {
    json tags = json::object();
    for (const auto& [t, d] : r.tags) tags[t] = d.str();
    json manifests = json::array();
    for (const auto& d : r.manifests) manifests.push_back(d.str());
    json blobs = json::object();
    for (const auto& [d, size] : r.blobs) blobs[d.str()] = size;
    repos[name] = {{"tags", tags}, {"manifests", manifests}, {"blobs", blobs}};
  }
  json j = {{"mediaType", k_media_type_inventory}, {"kind", kind}, {"source", source}, {"repositories", repos}};
  return j.dump();
}

Inventory Inventory::parse(const std::string& bytes, const std::string& where)
{
  if (bytes.size() > k_max_inventory_size) throw Error(Errc::invalid_manifest, where + ": larger than 256 MiB");
  if (json_depth(bytes) > 8) throw Error(Errc::invalid_manifest, where + ": nested deeper than an inventory is");
  json j;
  try {
    j = json::parse(bytes);
  } catch (const json::exception&) {
    throw Error(Errc::invalid_manifest, where + ": not JSON");
  }
  only_keys(j, {"mediaType", "kind", "source", "repositories"}, where);
  if (!j.contains("mediaType") || j["mediaType"] != k_media_type_inventory)
    throw Error(Errc::invalid_manifest, where + ": not a ferry inventory (mediaType is not " + std::string(k_media_type_inventory) + ")");
  Inventory inv;
  if (!j.contains("kind") || !j["kind"].is_string() || (j["kind"] != "registry" && j["kind"] != "bundle"))
    throw Error(Errc::invalid_manifest, where + ": kind is neither \"registry\" nor \"bundle\"");
  inv.kind = j["kind"].get<std::string>();
  if (!j.contains("source") || !j["source"].is_string() || j["source"].get<std::string>().size() > 4096)
    throw Error(Errc::invalid_manifest, where + ": source is missing or not a short string");
  inv.source = j["source"].get<std::string>();
  if (!j.contains("repositories") || !j["repositories"].is_object())
    throw Error(Errc::invalid_manifest, where + ": repositories is missing or not an object");
  if (j["repositories"].size() > k_max_inventory_repositories)
    throw Error(Errc::invalid_manifest, where + ": more than " + std::to_string(k_max_inventory_repositories) + " repositories");
  for (const auto& [name, r] : j["repositories"].items()) {
    const std::string at = where + " repository \"" + name.substr(0, 200) + "\"";
    if (!name.empty() && !Reference::is_valid_repository(name)) throw Error(Errc::invalid_manifest, at + ": not a repository name");
    only_keys(r, {"tags", "manifests", "blobs"}, at);
    Repository repo;
    if (r.contains("tags")) {
      if (!r["tags"].is_object()) throw Error(Errc::invalid_manifest, at + ": tags is not an object");
      for (const auto& [t, d] : r["tags"].items()) {
        if (!Reference::is_valid_tag(t)) throw Error(Errc::invalid_manifest, at + ": \"" + t.substr(0, 200) + "\" is not a tag");
        repo.tags[t] = parse_digest(d, at + " tag " + t);
      }
    }
    if (r.contains("manifests")) {
      if (!r["manifests"].is_array()) throw Error(Errc::invalid_manifest, at + ": manifests is not an array");
      for (const auto& d : r["manifests"]) repo.manifests.insert(parse_digest(d, at + " manifests"));
    }
    if (r.contains("blobs")) {
      if (!r["blobs"].is_object()) throw Error(Errc::invalid_manifest, at + ": blobs is not an object");
      for (const auto& [d, size] : r["blobs"].items()) {
        if (!size.is_number_unsigned()) throw Error(Errc::invalid_manifest, at + ": the size of " + d.substr(0, 80) + " is not a count");
        repo.blobs[parse_digest(json(d), at + " blobs")] = size.get<std::uint64_t>();
      }
    }
    inv.repositories.emplace(name, std::move(repo));
  }
  return inv;
}

Inventory Inventory::load(const std::filesystem::path& path)
{
  return parse(read_user_file(path, k_max_inventory_size, "inventory", Errc::invalid_manifest), path.string());
}

std::map<Digest, Inventory::Held> Inventory::blobs() const
{
  std::map<Digest, Held> out;
  for (const auto& [name, repo] : repositories)
    for (const auto& [d, size] : repo.blobs) {
      auto& h = out[d];
      h.size = size;
      h.repositories.push_back(name);  // repositories are visited in sorted order
    }
  return out;
}

std::size_t Inventory::manifest_count() const
{
  std::set<Digest> all;
  for (const auto& [name, repo] : repositories) all.insert(repo.manifests.begin(), repo.manifests.end());
  return all.size();
}

std::size_t Inventory::tag_count() const
{
  std::size_t n = 0;
  for (const auto& [name, repo] : repositories) n += repo.tags.size();
  return n;
}

Inventory inventory_registry(const InventoryOptions& options, const RepositoryOpener& open, const Logger& log)
{
  Target target = Target::parse(options.target);
  Inventory inv;
  inv.kind = "registry";
  inv.source = target.registry + (target.ns.empty() ? "" : "/" + target.ns);
  auto probe = open(target.registry, target.ns.empty() ? "library" : target.ns);
  std::vector<std::string> names;
  if (auto catalog = probe->list_catalog(k_max_inventory_repositories)) {
    for (const auto& name : *catalog)
      if (target.ns.empty() || name == target.ns || name.rfind(target.ns + "/", 0) == 0) names.push_back(name);
    log(inv.source + ": " + counted(names.size(), "repository") + " in the catalog");
  } else if (!target.ns.empty()) {
    log(target.registry + " does not list its repositories; taking " + target.ns + " as one repository");
    names.push_back(target.ns);
  } else {
    throw Error(Errc::unsupported, target.registry + " does not list its repositories (_catalog): give REGISTRY/REPOSITORY");
  }
  std::mutex mutex;
  parallel_for_each(names, options.concurrency, [&](const std::string& name) {
    try {
      auto repo = open(target.registry, name);
      auto tags = repo->list_tags();
      if (!tags) {
        log(repo->display() + ": no tag list (the repository does not exist or cannot be listed); counted as empty");
        return;
      }
      Inventory::Repository r;
      Graph graph;
      for (const auto& tag : *tags) {
        auto desc = repo->resolve_optional(tag);
        if (!desc) continue;  // deleted since it was listed
        r.tags[tag] = desc->digest;
        graph.add(*repo, *desc, GraphOptions{});
      }
      add_graph(r, graph);
      log(repo->display() + ": " + counted(r.tags.size(), "tag") + ", " + counted(r.manifests.size(), "manifest") + ", " +
          counted(r.blobs.size(), "blob"));
      std::lock_guard lock(mutex);
      inv.repositories.emplace(name, std::move(r));
    } catch (...) {
      rethrow_with_context("inventory of " + target.registry + "/" + name);
    }
  });
  return inv;
}

Inventory inventory_bundle(LayoutReader& bundle)
{
  BundleContents contents = classify_complete(bundle);
  Inventory inv;
  inv.kind = "bundle";
  inv.source = bundle.path().filename().string();
  std::map<std::string, Graph> graphs;
  for (const auto& root : contents.roots) {
    std::string name = root.source ? root.source->repository : std::string();
    auto& r = inv.repositories[name];
    if (!root.tag.empty()) r.tags[root.tag] = root.desc.digest;
    graphs[name].add(bundle, root.desc, GraphOptions{});
  }
  for (auto& [name, graph] : graphs) {
    auto& r = inv.repositories[name];
    // Every blob the graph names, carried or (in a delta) left out: after a push of the
    // bundle onto its base, the far side holds them all.
    add_graph(r, graph);
    for (const auto& [subject, list] : graph.attachments)
      for (const auto& a : list) r.tags[subject.cosign_tag(a.suffix)] = a.desc.digest;
  }
  return inv;
}

} // namespace ferry

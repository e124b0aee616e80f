#include <ferry/descriptor.hpp>

#include <ferry/error.hpp>

#include <sstream>

namespace ferry {

using nlohmann::json;

std::string Platform::str() const
{
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Platform Platform::parse(const std::string& text)
{
  Platform p;
  std::vector<std::string> parts;
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, '/');) parts.push_back(part);
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
      (parts.size() == 3 && parts[2].empty()))
    throw Error(Errc::invalid_argument, "invalid platform \"" + text + "\": want os/arch[/variant]");
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  return p;
}

bool Platform::matches(const Platform& other) const
{
  return os == other.os && architecture == other.architecture && (variant.empty() || variant == other.variant);
}

namespace {

std::string get_string(const json& j, const char* key, const std::string& where, bool required)
{
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) throw Error(Errc::invalid_manifest, where + ": missing \"" + key + "\"");
    return {};
  }
  if (!it->is_string()) throw Error(Errc::invalid_manifest, where + ": \"" + key + "\" is not a string");
  return it->get<std::string>();
}

} // namespace

Descriptor Descriptor::from_json(const json& j, const std::string& where)
{
  if (!j.is_object()) throw Error(Errc::invalid_manifest, where + ": descriptor is not an object");
  Descriptor d;
  d.media_type = get_string(j, "mediaType", where, true);
  std::string digest = get_string(j, "digest", where, true);
  try {
    d.digest = Digest::parse(digest);
  } catch (const Error& e) {
    throw Error(Errc::invalid_manifest, where + ": " + e.what());
  }
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<std::int64_t>() < 0)
    throw Error(Errc::invalid_manifest, where + ": descriptor " + digest + " has no valid \"size\"");
  d.size = size->get<std::uint64_t>();
  d.artifact_type = get_string(j, "artifactType", where, false);
  if (auto a = j.find("annotations"); a != j.end() && !a->is_null()) {
    if (!a->is_object()) throw Error(Errc::invalid_manifest, where + ": \"annotations\" is not an object");
    for (const auto& [k, v] : a->items()) {
      if (!v.is_string()) throw Error(Errc::invalid_manifest, where + ": annotation \"" + k + "\" is not a string");
      d.annotations[k] = v.get<std::string>();
    }
  }
  if (auto p = j.find("platform"); p != j.end() && !p->is_null()) {
    if (!p->is_object()) throw Error(Errc::invalid_manifest, where + ": \"platform\" is not an object");
    Platform pl;
    pl.os = get_string(*p, "os", where + " platform", false);
    pl.architecture = get_string(*p, "architecture", where + " platform", false);
    pl.variant = get_string(*p, "variant", where + " platform", false);
    pl.os_version = get_string(*p, "os.version", where + " platform", false);
    d.platform = pl;
  }
  json extra = json::object();
  for (const auto& [k, v] : j.items())
    if (k != "mediaType" && k != "digest" && k != "size" && k != "artifactType" && k != "annotations") extra[k] = v;
  if (!extra.empty()) d.extra = std::move(extra);
  return d;
}

json Descriptor::to_json() const
{
  json j = extra ? *extra : json::object();
  j["mediaType"] = media_type;
  j["digest"] = digest.str();
  j["size"] = size;
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  if (!annotations.empty()) j["annotations"] = annotations;
  if (platform && !j.contains("platform")) {
    json p = {{"os", platform->os}, {"architecture", platform->architecture}};
    if (!platform->variant.empty()) p["variant"] = platform->variant;
    if (!platform->os_version.empty()) p["os.version"] = platform->os_version;
    j["platform"] = p;
  }
  return j;
}

json Descriptor::to_json_basic() const
{
  return json{{"mediaType", media_type}, {"digest", digest.str()}, {"size", size}};
}

std::string Descriptor::annotation(const std::string& key) const
{
  auto it = annotations.find(key);
  return it == annotations.end() ? std::string() : it->second;
}

} // namespace ferry

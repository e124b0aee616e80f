#include <ferry/manifest.hpp>

#include <algorithm>

#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/util/json.hpp>

namespace ferry {

using nlohmann::json;

bool Manifest::is_index() const { return media_type::is_index(media_type); }

std::string Manifest::effective_artifact_type() const
{
  if (!artifact_type.empty()) return artifact_type;
  if (config) return config->media_type;
  return {};
}

namespace {

// JSON nesting deeper than this is rejected before parsing (design §8: JSON bombs).
constexpr std::size_t k_max_depth = 64;

void check_depth(std::string_view bytes, const std::string& where)
{
  if (json_depth(bytes) > k_max_depth) throw Error(Errc::invalid_manifest, where + ": JSON nested deeper than 64 levels");
}

std::vector<Descriptor> descriptor_list(const json& j, const char* key, const std::string& where)
{
  std::vector<Descriptor> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) throw Error(Errc::invalid_manifest, where + ": \"" + key + "\" is not an array");
  std::size_t i = 0;
  for (const auto& d : *it) out.push_back(Descriptor::from_json(d, where + " " + key + "[" + std::to_string(i++) + "]"));
  return out;
}

} // namespace

Manifest Manifest::parse(std::string_view bytes, const std::string& media_type, const std::string& where)
{
  if (bytes.size() > k_max_manifest_size)
    throw Error(Errc::invalid_manifest, where + ": manifest larger than 4 MiB");
  check_depth(bytes, where);
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded()) throw Error(Errc::invalid_manifest, where + ": not valid JSON");
  if (!j.is_object()) throw Error(Errc::invalid_manifest, where + ": not a JSON object");
  if (auto it = j.find("schemaVersion"); it != j.end() && !(it->is_number_integer() && *it == 2))
    throw Error(Errc::invalid_manifest, where + ": unsupported manifest schemaVersion " + it->dump() +
                                            " (only Docker schema 2 and OCI manifests are supported)");
  Manifest m;
  m.media_type = media_type;
  if (auto it = j.find("mediaType"); it != j.end()) {
    if (!it->is_string()) throw Error(Errc::invalid_manifest, where + ": \"mediaType\" is not a string");
    std::string declared = it->get<std::string>();
    if (m.media_type.empty()) m.media_type = declared;
    else if (declared != m.media_type)
      throw Error(Errc::invalid_manifest,
                  where + ": declares mediaType " + declared + " but was described as " + m.media_type);
  }
  if (m.media_type.empty()) {
    // image-spec: mediaType SHOULD be present; infer from the shape as oras-go does.
    m.media_type = j.contains("manifests") ? std::string(media_type::k_oci_index) : std::string(media_type::k_oci_manifest);
  }
  if (!media_type::is_manifest(m.media_type))
    throw Error(Errc::invalid_manifest, where + ": unsupported manifest media type " + m.media_type);
  if (auto it = j.find("artifactType"); it != j.end()) {
    if (!it->is_string()) throw Error(Errc::invalid_manifest, where + ": \"artifactType\" is not a string");
    m.artifact_type = it->get<std::string>();
  }
  // The bytes must be what the media type says (containerd's validateMediaType): an index
  // has `manifests` and no `config` or `layers`; an image manifest has `config` and no
  // `manifests`. Otherwise one reader could see an index where another sees an image.
  if (media_type::is_index(m.media_type)) {
    if (j.contains("config") || j.contains("layers"))
      throw Error(Errc::invalid_manifest, where + ": described as an index (" + m.media_type +
                                              ") but has \"config\" or \"layers\", as an image manifest does");
    if (!j.contains("manifests"))
      throw Error(Errc::invalid_manifest, where + ": an index (" + m.media_type + ") without \"manifests\"");
    m.manifests = descriptor_list(j, "manifests", where);
  } else {
    if (j.contains("manifests"))
      throw Error(Errc::invalid_manifest, where + ": described as an image manifest (" + m.media_type +
                                              ") but has \"manifests\", as an index does");
    auto c = j.find("config");
    if (c == j.end()) throw Error(Errc::invalid_manifest, where + ": image manifest without \"config\"");
    m.config = Descriptor::from_json(*c, where + " config");
    m.layers = descriptor_list(j, "layers", where);
  }
  if (auto s = j.find("subject"); s != j.end() && !s->is_null()) m.subject = Descriptor::from_json(*s, where + " subject");
  if (auto a = j.find("annotations"); a != j.end() && a->is_object())
    for (const auto& [k, v] : a->items())
      if (v.is_string()) m.annotations[k] = v.get<std::string>();
  return m;
}

bool is_signature_manifest(const Manifest& m)
{
  if (!media_type::is_image_manifest(m.media_type) || !m.subject || !m.config) return false;
  if (m.artifact_type == media_type::k_notary_signature) return m.config->media_type == media_type::k_oci_empty;
  return m.artifact_type.empty() && m.config->media_type == media_type::k_notary_signature;
}

bool is_cosign_signature_manifest(const Manifest& m)
{
  if (!media_type::is_image_manifest(m.media_type) || !m.config) return false;
  if (m.subject) {
    std::string type = m.effective_artifact_type();
    return type.rfind(media_type::k_sigstore_bundle_prefix, 0) == 0 || type == media_type::k_cosign_artifact_sig;
  }
  return !m.layers.empty() && std::all_of(m.layers.begin(), m.layers.end(), [](const Descriptor& l) {
    return l.media_type == media_type::k_cosign_simple_signing || l.media_type == media_type::k_dsse_envelope;
  });
}

bool is_trust_artifact(const Manifest& m)
{
  return media_type::is_image_manifest(m.media_type) && m.artifact_type == media_type::k_ferry_trust && !m.subject;
}

std::vector<Descriptor> successors(const Descriptor& node, std::string_view bytes)
{
  if (!media_type::is_manifest(node.media_type)) return {};
  Manifest m = Manifest::parse(bytes, node.media_type, node.digest.str());
  if (m.is_index()) return m.manifests;
  std::vector<Descriptor> out;
  out.push_back(*m.config);
  out.insert(out.end(), m.layers.begin(), m.layers.end());
  return out;
}

Descriptor referrer_descriptor(const Descriptor& manifest_desc, const Manifest& manifest)
{
  Descriptor d;
  d.media_type = manifest_desc.media_type;
  d.digest = manifest_desc.digest;
  d.size = manifest_desc.size;
  d.artifact_type = manifest.effective_artifact_type();
  d.annotations = manifest.annotations;
  return d;
}

} // namespace ferry

#include <ferry/record.hpp>

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/util/json.hpp>

#include <algorithm>
#include <nlohmann/json.hpp>

using nlohmann::json;

namespace ferry {

namespace {

// A record holds a digest per left-out blob: 20,000 blobs are about 2 MiB of JSON.
constexpr std::size_t k_max_record_part = k_max_kept_blob;
constexpr std::size_t k_max_record_depth = 16;

json parse_json(const std::string& bytes, const std::string& where)
{
  if (bytes.size() > k_max_record_part) throw Error(Errc::invalid_manifest, where + ": larger than 32 MiB");
  if (json_depth(bytes) > k_max_record_depth) throw Error(Errc::invalid_manifest, where + ": nested too deeply");
  try {
    return json::parse(bytes);
  } catch (const json::exception&) {
    throw Error(Errc::invalid_manifest, where + ": not JSON");
  }
}

const json& member(const json& j, const char* key, json::value_t type, const std::string& where)
{
  auto it = j.find(key);
  if (it == j.end()) throw Error(Errc::invalid_manifest, where + ": \"" + key + "\" is missing");
  bool ok = it->type() == type || (type == json::value_t::number_unsigned && it->is_number_unsigned());
  if (!ok) throw Error(Errc::invalid_manifest, where + ": \"" + key + "\" has the wrong type");
  return *it;
}

Digest parse_digest(const std::string& text, const std::string& where)
{
  try {
    return Digest::parse(text);
  } catch (const Error&) {
    throw Error(Errc::invalid_manifest, where + ": \"" + text.substr(0, 80) + "\" is not a digest");
  }
}

} // namespace

const LeftOutBlob* DeltaRecord::find(const Digest& digest) const
{
  auto it = std::lower_bound(left_out.begin(), left_out.end(), digest,
                             [](const LeftOutBlob& b, const Digest& d) { return b.digest < d; });
  return it != left_out.end() && it->digest == digest ? &*it : nullptr;
}

std::uint64_t DeltaRecord::left_out_bytes() const
{
  std::uint64_t total = 0;
  for (const auto& b : left_out) total += b.size;
  return total;
}

std::string delta_record_json(const DeltaRecord& delta)
{
  json left = json::array();
  for (const auto& b : delta.left_out)
    left.push_back({{"digest", b.digest.str()}, {"size", b.size}, {"repositories", b.repositories}});
  json j = {{"baseKind", delta.base_kind}, {"base", delta.base.str()}, {"baseSource", delta.base_source}, {"leftOut", left}};
  return j.dump();
}

DeltaRecord parse_delta_record(const std::string& bytes, const std::string& where)
{
  json j = parse_json(bytes, where);
  if (!j.is_object()) throw Error(Errc::invalid_manifest, where + ": not a JSON object");
  only_keys(j, {"baseKind", "base", "baseSource", "leftOut"}, where);
  DeltaRecord d;
  d.base_kind = member(j, "baseKind", json::value_t::string, where).get<std::string>();
  if (d.base_kind != "registry" && d.base_kind != "bundle")
    throw Error(Errc::invalid_manifest, where + ": baseKind \"" + d.base_kind.substr(0, 40) + "\" is neither registry nor bundle");
  d.base = parse_digest(member(j, "base", json::value_t::string, where).get<std::string>(), where + " base");
  d.base_source = member(j, "baseSource", json::value_t::string, where).get<std::string>();
  if (d.base_source.size() > 4096) throw Error(Errc::invalid_manifest, where + ": baseSource is longer than 4096 bytes");
  const json& left = member(j, "leftOut", json::value_t::array, where);
  d.left_out.reserve(left.size());
  for (std::size_t i = 0; i < left.size(); ++i) {
    const std::string at = where + " leftOut[" + std::to_string(i) + "]";
    const json& e = left[i];
    if (!e.is_object()) throw Error(Errc::invalid_manifest, at + ": not an object");
    only_keys(e, {"digest", "size", "repositories"}, at);
    LeftOutBlob b;
    b.digest = parse_digest(member(e, "digest", json::value_t::string, at).get<std::string>(), at);
    b.size = member(e, "size", json::value_t::number_unsigned, at).get<std::uint64_t>();
    for (const auto& r : member(e, "repositories", json::value_t::array, at)) {
      if (!r.is_string() || r.get<std::string>().empty() || r.get<std::string>().size() > 255)
        throw Error(Errc::invalid_manifest, at + ": a repository is not a name");
      b.repositories.push_back(r.get<std::string>());
    }
    if (!d.left_out.empty() && !(d.left_out.back().digest < b.digest))
      throw Error(Errc::invalid_manifest, at + ": " + b.digest.str() + " is out of order or repeated");
    d.left_out.push_back(std::move(b));
  }
  return d;
}

RecordArtifact build_record_artifact(const BundleRecord& record)
{
  std::vector<TrustFile> parts;
  if (record.imageset) parts.push_back({"imageset.json", std::string(k_media_type_imageset_record), *record.imageset});
  if (record.delta) parts.push_back({"delta.json", std::string(k_media_type_delta_record), delta_record_json(*record.delta)});
  return build_file_artifact(k_artifact_type_record, parts);
}

BundleRecord read_record(LayoutReader& bundle, const Descriptor& manifest)
{
  const std::string where = bundle.path().string() + ": record " + manifest.digest.str();
  auto bytes = bundle.metadata().get(manifest.digest);
  if (!bytes) throw Error(Errc::invalid_manifest, where + " is missing");
  Manifest m = Manifest::parse(*bytes, manifest.media_type, where);
  if (!media_type::is_image_manifest(m.media_type) || m.artifact_type != k_artifact_type_record || m.subject)
    throw Error(Errc::invalid_manifest, where + " is not a record artifact");
  BundleRecord r;
  for (const auto& l : m.layers) {
    const std::string part = where + " layer " + l.digest.str();
    if (l.size > k_max_record_part) throw Error(Errc::invalid_manifest, part + ": larger than 32 MiB");
    if (l.media_type == k_media_type_imageset_record) {
      if (r.imageset) throw Error(Errc::invalid_manifest, part + ": a second image-set record");
      std::string text = fetch_bytes(bundle, l, k_max_record_part);
      json j = parse_json(text, part);
      if (!j.is_object()) throw Error(Errc::invalid_manifest, part + ": not a JSON object");
      r.imageset = std::move(text);
    } else if (l.media_type == k_media_type_delta_record) {
      if (r.delta) throw Error(Errc::invalid_manifest, part + ": a second delta record");
      r.delta = parse_delta_record(fetch_bytes(bundle, l, k_max_record_part), part);
    } else {
      throw Error(Errc::invalid_manifest, part + ": unknown media type \"" + l.media_type.substr(0, 100) + "\"");
    }
  }
  return r;
}

} // namespace ferry

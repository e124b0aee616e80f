#pragma once
// Builders for small content graphs used across the unit tests.
#include <ferry/descriptor.hpp>
#include <ferry/media_type.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/store/memory_store.hpp>
#include <ferry/verify/verifier.hpp>

#include <nlohmann/json.hpp>

#include <archive.h>
#include <archive_entry.h>

#include <filesystem>
#include <fstream>

#include <string>
#include <vector>

namespace fixtures {

/// Opens the bundle at `path` as verify does (one scan, every blob hashed) and verifies it.
inline ferry::verify::VerifyReport verify_path(const std::filesystem::path& path, const ferry::verify::VerifyOptions& options)
{
  ferry::LayoutReader::Options read;
  read.depth = ferry::ReadDepth::verify;
  auto bundle = ferry::LayoutReader::open(path, ferry::format_from_path(path), read);
  return ferry::verify::verify_bundle(*bundle, options);
}

/// A tar's entry names in order (libarchive directly, independent of ferry's reader).
inline std::vector<std::string> tar_entry_names(const std::filesystem::path& p)
{
  std::vector<std::string> out;
  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  if (archive_read_open_filename(a, p.c_str(), 65536) == ARCHIVE_OK) {
    archive_entry* e;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) out.push_back(archive_entry_pathname(e));
  }
  archive_read_free(a);
  return out;
}

/// Writes `bytes` to `dir / name` and returns that path.
inline std::filesystem::path write_into(const std::filesystem::path& dir, const std::string& name, const std::string& bytes)
{
  std::filesystem::path p = dir / name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

using ferry::Descriptor;
using ferry::Digest;
using nlohmann::json;

inline Descriptor desc_of(std::string_view media_type, const std::string& bytes)
{
  Descriptor d;
  d.media_type = media_type;
  d.digest = Digest::of(bytes);
  d.size = bytes.size();
  return d;
}

inline Descriptor add_blob(ferry::MemoryStore& s, std::string_view media_type, const std::string& bytes)
{
  auto d = desc_of(media_type, bytes);
  s.put(d, bytes);
  return d;
}

/// An image manifest with a config and the given layer contents; optional subject and
/// artifact type make it a referrer.
inline Descriptor add_image(ferry::MemoryStore& s, const std::vector<std::string>& layers,
                            const std::string& config = R"({"architecture":"amd64","os":"linux"})",
                            std::optional<Descriptor> subject = std::nullopt, const std::string& artifact_type = {},
                            std::map<std::string, std::string> annotations = {})
{
  json m = {{"schemaVersion", 2}, {"mediaType", ferry::media_type::k_oci_manifest}};
  if (!artifact_type.empty()) m["artifactType"] = artifact_type;
  auto cfg_type = artifact_type.empty() ? ferry::media_type::k_oci_config : ferry::media_type::k_oci_empty;
  std::string cfg_bytes = artifact_type.empty() ? config : "{}";
  m["config"] = add_blob(s, cfg_type, cfg_bytes).to_json_basic();
  m["layers"] = json::array();
  for (const auto& l : layers)
    m["layers"].push_back(add_blob(s, artifact_type.empty() ? "application/vnd.oci.image.layer.v1.tar" : "application/octet-stream", l)
                              .to_json_basic());
  if (subject) m["subject"] = subject->to_json_basic();
  if (!annotations.empty()) m["annotations"] = annotations;
  return add_blob(s, ferry::media_type::k_oci_manifest, m.dump());
}

inline Descriptor add_index(ferry::MemoryStore& s, const std::vector<std::pair<Descriptor, std::string>>& children)
{
  json m = {{"schemaVersion", 2}, {"mediaType", ferry::media_type::k_oci_index}, {"manifests", json::array()}};
  for (const auto& [d, platform] : children) {
    json j = d.to_json_basic();
    auto slash = platform.find('/');
    j["platform"] = {{"os", platform.substr(0, slash)}, {"architecture", platform.substr(slash + 1)}};
    m["manifests"].push_back(j);
  }
  return add_blob(s, ferry::media_type::k_oci_index, m.dump());
}

} // namespace fixtures

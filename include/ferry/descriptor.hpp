#pragma once
/// OCI content descriptor (image-spec v1.1 descriptor.md).
#include <ferry/digest.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace ferry {

struct Platform {
  std::string os;
  std::string architecture;
  std::string variant;
  std::string os_version;

  /// "linux/arm64/v8" style.
  std::string str() const;
  /// Parses "os/arch[/variant]"; throws Errc::invalid_argument.
  static Platform parse(const std::string& text);
  /// True when this (a filter) matches `other`: os and architecture equal, and the
  /// variant equal when the filter names one.
  bool matches(const Platform& other) const;
};

struct Descriptor {
  std::string media_type;
  Digest digest;
  std::uint64_t size = 0;
  std::string artifact_type;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
  /// Fields ferry does not model (urls, data, ...), kept so that a descriptor written back
  /// into an index is what was read.
  std::optional<nlohmann::json> extra;

  /// Parses a descriptor object; throws Errc::invalid_manifest naming `where`.
  static Descriptor from_json(const nlohmann::json& j, const std::string& where = "descriptor");
  nlohmann::json to_json() const;
  /// `mediaType`, `digest`, `size` only.
  nlohmann::json to_json_basic() const;

  std::string annotation(const std::string& key) const;
};

} // namespace ferry

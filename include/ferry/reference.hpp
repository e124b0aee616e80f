#pragma once
/// Image references (distribution/reference grammar and docker normalisation).
#include <ferry/digest.hpp>

#include <optional>
#include <string>

namespace ferry {

struct Reference {
  std::string registry;    ///< canonical host[:port], e.g. "docker.io", "127.0.0.1:5000"
  std::string repository;  ///< e.g. "library/alpine"
  std::string tag;         ///< empty when none was given
  std::optional<Digest> digest;

  /// Parses `[registry/]repo[:tag][@digest]` with distribution's grammar and its
  /// normalisation: no registry → `docker.io`, a single-component docker.io repository →
  /// `library/<name>`. Throws Errc::invalid_reference naming the input.
  /// Reference: distribution/reference grammar (reference.go), normalize.go.
  static Reference parse(const std::string& text);
  /// Parses a repository name alone (`[registry/]repo`, no tag or digest).
  static bool is_valid_repository(const std::string& repo);
  /// True when `tag` matches distribution's tag grammar `[\w][\w.-]{0,127}`.
  static bool is_valid_tag(const std::string& tag);
  /// The tag when given, else the digest string, else "latest".
  std::string ref_or_default() const;
  /// registry/repository
  std::string name() const { return registry + "/" + repository; }
  /// registry/repository[:tag][@digest]
  std::string str() const;
  /// Host used for HTTP: docker.io → registry-1.docker.io.
  std::string endpoint_host() const;
};

/// Splits a push target `host[:port][/namespace]`; throws Errc::invalid_reference.
struct Target {
  std::string registry;
  std::string ns;  ///< may be empty
  static Target parse(const std::string& text);
};

} // namespace ferry

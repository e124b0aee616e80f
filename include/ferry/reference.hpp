#pragma once
/// Image references (distribution/reference grammar and docker normalisation).
#include <ferry/digest.hpp>

#include <optional>
#include <string>
#include <string_view>

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

  /// The canonical spelling of a fully qualified repository name, the key on which trust-policy
  /// `registryScopes` are matched (design §8), so that one repository has one scope however the
  /// bundle, the policy or `--scope` spell it:
  ///  - the host is lowercased (DNS names are case-insensitive; an IPv6 literal is lowercased
  ///    inside its brackets);
  ///  - a numeric port loses its leading zeros, and the default ports `:443` and `:80` are dropped;
  ///  - `index.docker.io` and `registry-1.docker.io` become `docker.io`;
  ///  - on docker.io a single-component repository becomes `library/<name>`.
  /// The first component is always the registry, as in notation's fully qualified scopes
  /// (`local/app` stays `local/app`, it is not read as `docker.io/local/app`); the repository path
  /// is kept as written, since the grammar allows only lowercase there. The function validates
  /// nothing: callers pass names a grammar already accepted (Reference::parse, Target::parse,
  /// notation's registryScopes validation). What the grammar rejects (an uppercase path, a port
  /// that is not a number) is left as it is, so normalising never turns an invalid name into a
  /// valid one. Idempotent. "*" is returned as it is.
  /// Reference: distribution/reference normalize.go (docker.io, library/);
  /// ../shared/notation/SPEC.md §5.2 (registryScopes); RFC 4343 (DNS case); RFC 3986 §6.2.3 (ports).
  static std::string normalise_scope(std::string_view registry_slash_repository);
  /// normalise_scope(name()): the scope this reference's repository is matched on.
  std::string scope() const;
};

/// Splits a push target `host[:port][/namespace]`; throws Errc::invalid_reference.
struct Target {
  std::string registry;
  std::string ns;  ///< may be empty
  static Target parse(const std::string& text);
};

} // namespace ferry

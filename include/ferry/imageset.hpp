#pragma once
/// Image sets (issue 16): the references `save` and `copy` take from `-f/--images-file` — a
/// plain list (one reference per line, `#` comments) or the YAML file `skopeo sync --src yaml`
/// reads, with its keys as they are — expanded into references through the tags list API.
#include <ferry/digest.hpp>
#include <ferry/ops.hpp>
#include <ferry/reference.hpp>

#include <filesystem>
#include <optional>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

/// One source of an image set: a repository and how its tags are chosen.
struct ImageSetEntry {
  enum class Rule {
    reference,  ///< a plain list line: one reference as written
    tags,       ///< YAML `images:` with a list of tags (and digests)
    all_tags,   ///< YAML `images:` with an empty list: every tag
    tag_regex,  ///< YAML `images-by-tag-regex:`
    semver,     ///< YAML `images-by-semver:`
  };
  Rule rule = Rule::reference;
  /// host[:port] as Reference::parse gives it for `KEY/REPO` (the YAML's top-level key may
  /// also hold a namespace, `host/ns`, as skopeo allows: it is then part of `repository`).
  std::string registry;
  std::string repository;  ///< as Reference::parse gives it (docker.io: library/ prefixed)
  std::vector<std::string> tags;  ///< Rule::tags: tags and `sha256:` digests as given
  std::string pattern;            ///< tag_regex: the regex; semver: the constraint
  std::size_t line = 0;           ///< 1-based line in the file, for messages
  std::optional<Reference> reference;  ///< Rule::reference
};

/// What the YAML says about one registry besides its images (skopeo's keys).
struct ImageSetRegistry {
  std::string registry;  ///< the top-level key as written
  std::string host;      ///< its host[:port] (Reference's canonical spelling)
  std::size_t line = 0;
  std::optional<bool> tls_verify;  ///< `tls-verify`
  std::string username, password;  ///< `credentials:` {username, password}
  std::string cert_dir;            ///< `cert-dir`
};

struct ImageSet {
  std::string file;  ///< the path as given, for messages and the record
  Digest digest;     ///< of the file's bytes
  bool yaml = false; ///< skopeo sync YAML (else a plain list)
  std::vector<ImageSetEntry> entries;
  std::vector<ImageSetRegistry> registries;

  /// Parses `bytes`: skopeo sync YAML when the content is a YAML mapping (told apart from a
  /// plain list by its content, not its name), else the plain list. Throws
  /// Errc::invalid_argument "FILE:LINE: ..." for an unknown key, a regex that does not
  /// compile, a semver constraint that does not parse, a reference or tag that is not valid.
  static ImageSet parse(const std::string& bytes, const std::string& file);
  /// Reads and parses `file` (Errc::not_found naming it when it cannot be read).
  static ImageSet load(const std::filesystem::path& file);
};

/// A version as Masterminds/semver v3's NewVersion reads a tag (what skopeo's
/// images-by-semver uses): an optional `v`, MAJOR[.MINOR[.PATCH]] (missing parts 0), an
/// optional -PRERELEASE and +BUILD. Build metadata is ignored in comparisons.
struct SemverVersion {
  std::uint64_t major = 0, minor = 0, patch = 0;
  std::string prerelease;
  /// nullopt when `text` is not such a version (a tag that is skipped).
  static std::optional<SemverVersion> parse(std::string_view text);
  /// -1, 0, 1 with semver 2.0.0 §11 precedence.
  int compare(const SemverVersion& other) const;
};

/// A Masterminds/semver v3 constraint: `=`, `!=`, `>`, `<`, `>=`, `<=` (also `=>`, `=<`), `~`
/// (`~>`), `^`, x/X/* wildcards and missing parts, hyphen ranges `A - B`, AND by comma or
/// space, OR by `||`. A pre-release version satisfies a term only when the term names a
/// pre-release itself.
struct SemverConstraint {
  struct Term {
    std::string op;
    SemverVersion version;
    bool dirty = false, minor_dirty = false, patch_dirty = false;
  };
  std::vector<std::vector<Term>> any_of;  ///< OR of ANDs

  /// Throws Errc::invalid_argument "improper constraint: TEXT" when it does not parse.
  static SemverConstraint parse(const std::string& text);
  bool check(const SemverVersion& version) const;
  /// The tag parses as a version and satisfies the constraint.
  bool matches(std::string_view tag) const;
};

/// The references an image set expands to.
struct ImageSetExpansion {
  struct Item {
    std::size_t entry = 0;                ///< index into ImageSet::entries
    std::vector<Reference> references;    ///< sorted, unique
    /// all_tags, tag_regex, semver: how many tags the repository listed.
    std::size_t listed = 0;
  };
  const ImageSet* set = nullptr;  ///< the set expanded: it must outlive the expansion
  std::vector<Item> items;

  /// Every reference, in entry order, each once.
  std::vector<Reference> references() const;
  /// The record a bundle keeps of it (record.hpp BundleRecord::imageset): the file's name and
  /// digest, and every entry with its rule, pattern and the references it expanded to.
  std::string record_json() const;
};

/// Expands every entry: `tags` and `reference` as written; `all_tags`, `tag_regex` and
/// `semver` through the repository's tags list (Repository::list_tags: paginated with `n` and
/// `Link`), sorted. A repository that does not list its tags, or has more than
/// k_max_listed_tags, is an error naming it. An entry that matches no tag is logged (as
/// skopeo does), not an error.
ImageSetExpansion expand(const ImageSet& set, const RepositoryOpener& open, const Logger& log);

} // namespace ferry

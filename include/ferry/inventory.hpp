#pragma once
/// What the far side already has (issue 16): `ferry inventory REGISTRY/PREFIX` or
/// `ferry inventory BUNDLE` lists every repository's tags, manifests and blobs by digest, so a
/// later `save --have` (or `--since BUNDLE`) carries only the blobs that are missing.
#include <ferry/digest.hpp>
#include <ferry/ops.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ferry {

inline constexpr std::string_view k_media_type_inventory = "application/vnd.ferry.inventory.v1+json";
/// Bounds on an inventory read from a file (design §8): a file, repositories, entries.
inline constexpr std::size_t k_max_inventory_size = 256 << 20;
inline constexpr std::size_t k_max_inventory_repositories = 100'000;

struct Inventory {
  /// "registry" (taken of `host[:port][/prefix]`) or "bundle" (of a bundle file or directory).
  std::string kind;
  /// `host[:port][/prefix]`, or the bundle's file name.
  std::string source;
  struct Repository {
    std::map<std::string, Digest> tags;
    std::set<Digest> manifests;
    std::map<Digest, std::uint64_t> blobs;  ///< config and layer blobs with their sizes
  };
  /// By repository: its full path on the registry ("registry"), or the source repository of
  /// the bundle's roots ("bundle"). A delta bundle's left-out blobs count as held.
  std::map<std::string, Repository> repositories;

  /// Canonical JSON (keys sorted, no spaces): what `-o` writes and what digest() is of.
  std::string to_json() const;
  /// The inventory's identity, recorded as a delta bundle's base.
  Digest digest() const { return Digest::of(to_json()); }
  /// Parses an inventory file; throws Errc::invalid_manifest prefixed with `where` for
  /// anything but what to_json writes (unknown keys, bad digests, beyond the bounds).
  static Inventory parse(const std::string& bytes, const std::string& where);
  static Inventory load(const std::filesystem::path& path);

  /// Every blob held, with its size and the repositories holding it (sorted).
  struct Held {
    std::uint64_t size = 0;
    std::vector<std::string> repositories;
  };
  std::map<Digest, Held> blobs() const;
  std::size_t manifest_count() const;
  std::size_t tag_count() const;
};

struct InventoryOptions {
  /// `host[:port][/prefix]`: every repository at or below the prefix (through `_catalog`; a
  /// registry that does not list its repositories is asked for the prefix as one repository).
  std::string target;
  unsigned concurrency = 4;
};

/// Inventories a registry: every repository under the prefix, every tag, and everything each
/// tagged manifest reaches (index children, config, layers, referrers and cosign tags).
Inventory inventory_registry(const InventoryOptions& options, const RepositoryOpener& open, const Logger& log);
/// Inventories an opened bundle (ReadDepth::structure is enough): its roots' graphs under
/// their source repositories, and a delta bundle's left-out blobs.
Inventory inventory_bundle(LayoutReader& bundle);

} // namespace ferry

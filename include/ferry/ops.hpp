#pragma once
/// The work behind ferry's commands: save, push, inspect. Results are plain data; the CLI
/// formats them (design §4 CLI).
#include <ferry/bundle.hpp>
#include <ferry/graph.hpp>
#include <ferry/remote/repository.hpp>
#include <ferry/store/layout.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// Opens the remote repository `repository` on `registry` (host[:port]).
using RepositoryOpener =
    std::function<std::shared_ptr<remote::Repository>(const std::string& registry, const std::string& repository)>;
/// Receives human progress lines (for stderr).
using Logger = std::function<void(const std::string&)>;

struct SaveOptions {
  std::vector<std::string> references;
  std::filesystem::path output;
  std::optional<BundleFormat> format;
  std::vector<Platform> platforms;
  GraphOptions graph;
  unsigned concurrency = 4;
};

struct SaveResult {
  std::filesystem::path output;
  BundleFormat format = BundleFormat::dir;
  std::vector<BundleRoot> roots;
  std::size_t manifests = 0;
  std::size_t referrers = 0;
  std::size_t blobs = 0;
  std::uint64_t bytes = 0;
};

/// Copies every reference with its whole graph (and referrers) into a new bundle,
/// atomically. References are all parsed before anything is fetched.
SaveResult save(const SaveOptions& options, const RepositoryOpener& open, const Logger& log);

struct PushOptions {
  std::filesystem::path bundle;
  std::optional<BundleFormat> format;
  std::string target;
  /// SRC_REPO=DST_REPO renames, applied before the target namespace is prefixed.
  std::map<std::string, std::string> map;
  unsigned concurrency = 4;
};

struct PushResult {
  struct Root {
    std::string destination;  ///< registry/repo:tag or @digest
    Descriptor desc;
  };
  std::vector<Root> roots;
  std::size_t blobs_pushed = 0;
  std::size_t blobs_skipped = 0;
  std::size_t blobs_mounted = 0;
  std::uint64_t bytes_pushed = 0;
  std::size_t manifests_pushed = 0;
  std::size_t manifests_skipped = 0;
  std::size_t tags_written = 0;
  std::size_t tags_unchanged = 0;
  std::size_t referrers = 0;
  std::size_t fallback_indexes_written = 0;
  /// Per destination repository: whether it serves the referrers API.
  std::map<std::string, bool> referrers_api;
};

/// Pushes a bundle into `target` (host[:port][/namespace]): blobs, then manifests children
/// first, then tags, then referrer links (fallback indexes merged where the registry has no
/// referrers API). Idempotent: what the registry has is not sent again.
PushResult push(const PushOptions& options, const RepositoryOpener& open, const Logger& log);

/// A node of the referrer tree shown by inspect.
struct InspectNode {
  Descriptor desc;
  std::string artifact_type;
  std::uint64_t size = 0;  ///< content size (manifest and what is under it)
  std::vector<InspectNode> manifests;  ///< index children
  std::vector<InspectNode> referrers;
};

struct InspectResult {
  std::filesystem::path bundle;
  BundleFormat format = BundleFormat::dir;
  struct Root {
    std::string reference;  ///< source reference, or the tag when unknown
    std::string tag;
    InspectNode node;
  };
  std::vector<Root> roots;
  std::optional<Descriptor> trust;
  std::size_t manifests = 0;
  std::size_t blobs = 0;
  std::uint64_t bytes = 0;
};

/// Reads a bundle's graph (for tar formats only as far as the manifests at its head).
InspectResult inspect(const std::filesystem::path& bundle, std::optional<BundleFormat> format);

} // namespace ferry

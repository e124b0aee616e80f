#pragma once
/// Offline integrity of a bundle (issue 3 §Integrity): every blob hashed against its name
/// and every descriptor that points at it, the graph complete, JSON valid — in one
/// streaming pass with memory bounded by the metadata, never by blob sizes.
#include <ferry/manifest.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/store/memory_store.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry::verify {

struct IntegrityProblem {
  std::string digest;  ///< the blob or manifest concerned, when there is one
  std::string message;
};

/// What one pass over a bundle learned: the metadata the signature verifier needs, and
/// every integrity problem found.
struct BundleScan {
  std::filesystem::path path;
  BundleFormat format = BundleFormat::dir;
  std::vector<Descriptor> index_entries;
  /// Every manifest reachable from index.json, verified against its digest.
  MemoryStore manifests;
  /// Notary signature envelopes (the one layer of each signature manifest), verified.
  std::map<Digest, std::string> envelopes;
  std::size_t blobs = 0;
  std::uint64_t bytes = 0;
  /// The digest of index.json's bytes: with every blob verified against its name and the
  /// graph complete, it identifies the whole content, whatever the bundle's format.
  std::optional<Digest> index_digest;
  std::vector<IntegrityProblem> problems;
  bool ok() const { return problems.empty(); }
};

/// True for a Notary signature manifest in either form (SPEC §1.1): artifactType
/// notary + empty config, or no artifactType + config.mediaType notary.
bool is_signature_manifest(const Manifest& m);

/// Scans the bundle. Throws ferry::Error only when it cannot be read at all (missing,
/// unreadable, unsafe tar entries); content problems are collected in `problems`.
std::unique_ptr<BundleScan> scan_bundle(const std::filesystem::path& path, BundleFormat format);

} // namespace ferry::verify

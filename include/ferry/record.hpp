#pragma once
/// What a bundle records about how it was made (issue 16): the image set its references were
/// expanded from and, for a delta bundle, the base it was made against and every blob left
/// out. One artifact in the bundle, listed in index.json as `ferry.record` beside the trust
/// artifact: never a root, never pushed, shown by inspect, read by verify and push.
#include <ferry/descriptor.hpp>
#include <ferry/digest.hpp>
#include <ferry/trust_material.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

class LayoutReader;

inline constexpr std::string_view k_record_ref_name = "ferry.record";
inline constexpr std::string_view k_artifact_type_record = "application/vnd.ferry.record.v1+json";
/// The record's layers (at most one of each).
inline constexpr std::string_view k_media_type_imageset_record = "application/vnd.ferry.imageset.v1+json";
inline constexpr std::string_view k_media_type_delta_record = "application/vnd.ferry.delta.v1+json";

/// A blob a delta bundle does not carry because its base has it.
struct LeftOutBlob {
  Digest digest;
  std::uint64_t size = 0;
  /// Repositories of the base that hold it, sorted: full paths on the inventoried registry
  /// (base_kind "registry"), or the source repositories of the base bundle's
  /// roots (base_kind "bundle", mapped as push maps them). Push mounts from one of them when
  /// the destination repository lacks the blob.
  std::vector<std::string> repositories;
};

/// A delta bundle's base and what it leaves out (ferry save --have / --since).
struct DeltaRecord {
  /// What the base inventory was taken of (Inventory::kind): "registry" or "bundle".
  std::string base_kind;
  /// The digest of the base's inventory (Inventory::digest: of its canonical JSON).
  Digest base;
  /// What the inventory was taken of (`registry/prefix`, or the bundle's file name), for messages.
  std::string base_source;
  /// Sorted by digest, unique.
  std::vector<LeftOutBlob> left_out;

  const LeftOutBlob* find(const Digest& digest) const;
  std::uint64_t left_out_bytes() const;
};

struct BundleRecord {
  /// The image-set expansion (ImageSetExpansion::record_json), JSON text kept as given.
  std::optional<std::string> imageset;
  std::optional<DeltaRecord> delta;
  bool empty() const { return !imageset && !delta; }
};

/// The record as an artifact (build_file_artifact): artifactType k_artifact_type_record, the
/// empty config and one layer per part (imageset.json, delta.json).
using RecordArtifact = FileArtifact;
RecordArtifact build_record_artifact(const BundleRecord& record);

/// Reads the record artifact `manifest` of an opened bundle (BundleContents::record). Throws
/// Errc::invalid_manifest naming the record for anything but what build_record_artifact
/// writes: unknown layer media types, a part twice, JSON that does not parse or holds
/// unknown keys, digests that do not parse, left-out blobs unsorted or repeated.
BundleRecord read_record(LayoutReader& bundle, const Descriptor& manifest);

/// The delta record's JSON (one layer), and back; parse throws Errc::invalid_manifest
/// prefixed with `where`.
std::string delta_record_json(const DeltaRecord& delta);
DeltaRecord parse_delta_record(const std::string& bytes, const std::string& where);

} // namespace ferry

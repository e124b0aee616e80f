#pragma once
/// Manifests and indexes: raw bytes plus a parsed view (design §4: never re-serialised).
#include <ferry/descriptor.hpp>

#include <string>
#include <vector>

namespace ferry {

/// Largest manifest ferry reads (design §8).
inline constexpr std::size_t k_max_manifest_size = 4 << 20;

struct Manifest {
  std::string media_type;  ///< from the bytes' `mediaType`, or the descriptor when absent
  std::string artifact_type;
  std::optional<Descriptor> config;
  std::vector<Descriptor> layers;
  std::vector<Descriptor> manifests;  ///< index children
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  bool is_index() const;
  /// Parses manifest or index bytes. `media_type` is the type the bytes were served or
  /// described as; a `mediaType` field in the bytes must agree with it. Throws
  /// Errc::invalid_manifest naming `where`.
  static Manifest parse(std::string_view bytes, const std::string& media_type, const std::string& where);
  /// The artifact type as the referrers API reports it: `artifactType`, else config.mediaType.
  std::string effective_artifact_type() const;
};

/// True for a Notary Project signature manifest in either form (../shared/notation/SPEC.md
/// §1.1): artifactType notary with the empty config, or no artifactType and config.mediaType
/// notary; always with a subject.
bool is_signature_manifest(const Manifest& m);

/// True for a cosign / Sigstore signature manifest (issue 15): a Sigstore bundle referrer
/// (artifactType application/vnd.dev.sigstore.bundle*, or the older
/// application/vnd.dev.cosign.artifact.sig.v1+json), or a cosign `.sig` / `.att` manifest
/// (an image manifest whose layers are simple-signing payloads or DSSE envelopes). Its
/// layers are what the cosign verifier reads.
bool is_cosign_signature_manifest(const Manifest& m);

/// True for the trust artifact a bundle carries (design §3).
bool is_trust_artifact(const Manifest& m);

/// Children of a node in the content graph (oras-go content.Successors): an index's
/// manifests; a manifest's config and layers. `subject` is a predecessor link, not a child.
/// Non-manifest blobs have none.
std::vector<Descriptor> successors(const Descriptor& node, std::string_view bytes);

/// Builds the descriptor of a referrer as listed by the referrers API (distribution-spec
/// v1.1 §Listing Referrers): mediaType, digest, size, artifactType, annotations.
Descriptor referrer_descriptor(const Descriptor& manifest_desc, const Manifest& manifest);

} // namespace ferry

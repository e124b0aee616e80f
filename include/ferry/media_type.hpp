#pragma once
/// Media types ferry knows (image-spec v1.1 media-types.md, docker manifest v2 schema 2).
#include <string_view>

namespace ferry::media_type {

inline constexpr std::string_view k_oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view k_oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view k_oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view k_oci_empty = "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view k_docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view k_docker_list = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view k_notary_signature = "application/vnd.cncf.notary.signature";
/// cosign / Sigstore (issue 15): a Sigstore bundle (v0.3 as an OCI artifact type; v0.1/v0.2
/// as `application/vnd.dev.sigstore.bundle+json;version=0.x`), cosign's older referrer
/// artifact type, and the layer types of cosign's `.sig` and `.att` manifests.
inline constexpr std::string_view k_sigstore_bundle_prefix = "application/vnd.dev.sigstore.bundle";
inline constexpr std::string_view k_cosign_artifact_sig = "application/vnd.dev.cosign.artifact.sig.v1+json";
inline constexpr std::string_view k_cosign_simple_signing = "application/vnd.dev.cosign.simplesigning.v1+json";
inline constexpr std::string_view k_dsse_envelope = "application/vnd.dsse.envelope.v1+json";
inline constexpr std::string_view k_ferry_trust = "application/vnd.ferry.trust.v1+json";

/// Accept header value for manifest requests: every manifest type above.
inline constexpr std::string_view k_manifest_accept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// An image manifest (OCI or docker v2 schema 2).
inline bool is_image_manifest(std::string_view mt) { return mt == k_oci_manifest || mt == k_docker_manifest; }
/// An index (OCI index or docker manifest list).
inline bool is_index(std::string_view mt) { return mt == k_oci_index || mt == k_docker_list; }
/// Any manifest kind whose bytes ferry parses for successors.
inline bool is_manifest(std::string_view mt) { return is_image_manifest(mt) || is_index(mt); }

} // namespace ferry::media_type

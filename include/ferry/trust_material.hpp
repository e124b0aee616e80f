#pragma once
/// Trust material that travels in a bundle (design §3): the Notation trust policy, trust
/// store certificates and CRLs, carried as one OCI artifact whose manifest digest is the
/// bundle's trust pin.
#include <ferry/descriptor.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/verify/cosign.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

inline constexpr std::string_view k_media_type_crl = "application/pkix-crl";
inline constexpr std::string_view k_media_type_cert = "application/pkix-cert";
inline constexpr std::string_view k_media_type_policy = "application/vnd.cncf.notary.trustpolicy.v1+json";

/// cosign / Sigstore trust material (issue 15): the trusted root, cosign public keys and the
/// identity policy, carried as `sigstore/trusted_root.json`, `cosign/keys/<file>` and
/// `cosign/policy.json`.
inline constexpr std::string_view k_media_type_trusted_root = "application/vnd.dev.sigstore.trustedroot+json;version=0.1";
inline constexpr std::string_view k_media_type_cosign_key = "application/x-pem-file";
inline constexpr std::string_view k_media_type_cosign_policy = "application/vnd.ferry.cosign-policy.v1+json";
inline constexpr std::string_view k_title_trusted_root = "sigstore/trusted_root.json";
inline constexpr std::string_view k_title_cosign_policy = "cosign/policy.json";
inline constexpr std::string_view k_title_cosign_keys = "cosign/keys/";

/// What cosign's verification flags say besides the trust material itself: the identity
/// (--certificate-identity[-regexp], --certificate-oidc-issuer[-regexp]) and the log and
/// timestamp choices (--insecure-ignore-tlog, --insecure-ignore-sct, --use-signed-timestamps).
/// Carried as `cosign/policy.json`, so the pin covers them too.
struct CosignIdentityPolicy : verify::cosign::PolicyFlags {
  std::string to_json() const;
  /// Throws Errc::invalid_manifest naming `where` (unknown keys, wrong types, a regexp that
  /// does not compile).
  static CosignIdentityPolicy parse(std::string_view json, const std::string& where);
};

/// One file of the trust material, with its path in Notation's configuration layout
/// (`trustpolicy.json`, `truststore/x509/ca/<store>/<file>`, `crl/<name>.crl`).
struct TrustFile {
  std::string title;
  std::string media_type;
  std::string bytes;
};

/// Reads and validates trust material from local paths: the policy must parse, every
/// store under `truststore/x509/<type>/<name>/` must load, every CRL must parse. A CRL
/// path may be a file or a directory. Throws ferry::Error naming the file.
std::vector<TrustFile> collect_trust_material(const std::optional<std::filesystem::path>& policy,
                                              const std::optional<std::filesystem::path>& trust_store,
                                              const std::vector<std::filesystem::path>& crls);

/// cosign trust material from local paths, each validated (the trusted root parses, every
/// key is a public key): `sigstore/trusted_root.json`, `cosign/keys/<file name>` per key, and
/// `cosign/policy.json` when `policy` says anything. Throws ferry::Error naming the file.
std::vector<TrustFile> collect_cosign_material(const std::optional<std::filesystem::path>& trusted_root,
                                               const std::vector<std::filesystem::path>& keys,
                                               const CosignIdentityPolicy& policy);

/// Files as an OCI 1.1 artifact: an image manifest with `artifact_type`, the empty config and
/// one layer per file (its media type, titled with its path), in the order given. The trust
/// material and the bundle's record (record.hpp) are both such artifacts.
struct FileArtifact {
  Descriptor manifest;  ///< for the trust material, its digest is the trust pin
  std::string manifest_bytes;
  std::vector<std::pair<Descriptor, std::string>> blobs;  ///< config and layers with their bytes, each once
};
FileArtifact build_file_artifact(std::string_view artifact_type, const std::vector<TrustFile>& files);

/// The trust artifact: artifactType application/vnd.ferry.trust.v1+json.
using TrustArtifact = FileArtifact;
TrustArtifact build_trust_artifact(const std::vector<TrustFile>& files);

/// Checks a title from a bundle before it becomes a path: relative, no `..`, only
/// `[A-Za-z0-9._-]` components, and under trustpolicy*.json, truststore/, crl/,
/// sigstore/trusted_root.json, cosign/policy.json or cosign/keys/.
bool is_safe_trust_title(const std::string& title);

/// Writes trust files below `dir` (titles checked with is_safe_trust_title).
void materialise_trust_files(const std::vector<TrustFile>& files, const std::filesystem::path& dir);

/// The files a trust artifact manifest lists: each layer's title (checked with
/// is_safe_trust_title) and descriptor. The one reading of a trust artifact (design §3), for
/// inspect and for carried_trust_files. Throws Errc::invalid_manifest naming the manifest
/// for a layer without a safe title, or two layers with one title.
std::vector<std::pair<std::string, Descriptor>> trust_artifact_files(const Descriptor& manifest, const std::string& bytes);

/// The trust material carried in `bundle` (opened at ReadDepth::verify, so its files were
/// read and checked in its one scan) if the bundle's trust artifact has the digest `pin`
/// (design §3: the pin travels out of band; a bundle never vouches for itself). Throws
/// Errc::verification_failed when the bundle carries no trust material or another one.
std::vector<TrustFile> carried_trust_files(const LayoutReader& bundle, const Digest& pin);

} // namespace ferry

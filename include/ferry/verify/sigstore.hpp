#pragma once
/// Sigstore's trust primitives, offline (issue 15): the trusted root (protobuf-specs
/// TrustedRoot JSON), transparency log entries (Rekor v1: signed entry timestamp, RFC 6962
/// inclusion proof, signed checkpoint, the entry body), certificate transparency (embedded
/// SCTs, RFC 6962 §3.2) and RFC 3161 timestamps against the trusted root's authorities.
/// Everything with OpenSSL 3 and nlohmann/json. Decisions follow cosign v3 / sigstore-go
/// where sigstore-js is looser (see cosign.hpp).
///
/// Conventions: parse functions throw ferry::Error(Errc::invalid_manifest) naming `where`
/// on malformed input (garbage base64, wrong types, out-of-range numbers); verify functions
/// return "" when the check passes, else a one-line reason. Nothing here reads a clock.
#include <ferry/verify/openssl.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::verify::sigstore {

/// A `validFor` window (TimeRange): start inclusive; no end means open.
struct ValidFor {
  std::optional<TimePoint> start;
  std::optional<TimePoint> end;
  bool contains(TimePoint t) const;
};

/// A transparency log or CT log instance of the trusted root.
struct LogInstance {
  std::string base_url;
  std::string key_id;  ///< logId.keyId, decoded (raw bytes; SHA-256 of the SPKI for Rekor v1)
  std::shared_ptr<EVP_PKEY> key;
  ValidFor valid_for;
};

/// A certificate authority (Fulcio) or timestamp authority of the trusted root.
struct Authority {
  std::string uri;
  std::string name;  ///< subject.commonName (or organization, or uri) for messages
  /// certChain.certificates in the file's order: leaf or intermediates first, root last.
  std::vector<std::shared_ptr<X509>> chain;
  ValidFor valid_for;
};

/// application/vnd.dev.sigstore.trustedroot+json;version=0.1 (and v0.2's same fields).
struct TrustedRoot {
  std::vector<LogInstance> tlogs;
  std::vector<LogInstance> ctlogs;
  std::vector<Authority> certificate_authorities;
  std::vector<Authority> timestamp_authorities;

  /// The log with this key id (raw bytes), or null.
  const LogInstance* tlog(std::string_view key_id) const;
  const LogInstance* ctlog(std::string_view key_id) const;

  /// Throws Errc::invalid_manifest naming `source` and the field (unknown mediaType, a key
  /// or certificate that does not parse, a bad time).
  static TrustedRoot parse(std::string_view json, const std::string& source);
};

/// A public key from PEM ("PUBLIC KEY") or DER SPKI bytes (cosign.pub). Throws naming `source`.
std::shared_ptr<EVP_PKEY> parse_public_key(std::string_view bytes, const std::string& source);
/// SPKI DER of a key (for hints and comparisons).
std::string spki_der(EVP_PKEY* key);
/// Verifies an ECDSA (ASN.1 DER signature), RSA PKCS#1 v1.5 or Ed25519 signature over
/// `data` with SHA-256 (or the hash the key's size calls for, as sigstore-go does: P-384 →
/// SHA-384, P-521 → SHA-512). False on any failure.
bool verify_signature(EVP_PKEY* key, std::string_view data, std::string_view signature);

/// RFC 8785 canonical JSON of `value` (the strings, integers, arrays and objects Rekor uses).
std::string canonical_json(const nlohmann::json& value);

/// The inclusion proof of a tlog entry (Sigstore bundle `inclusionProof`).
struct InclusionProof {
  std::int64_t log_index = 0;  ///< index in the tree (not the global log index)
  std::string root_hash;       ///< raw bytes
  std::int64_t tree_size = 0;
  std::vector<std::string> hashes;  ///< raw bytes, leaf to root
  std::string checkpoint;           ///< the signed note (`checkpoint.envelope`)
};

/// One transparency log entry (Sigstore bundle `tlogEntries[]`, or built from a legacy
/// cosign `dev.sigstore.cosign/bundle` annotation: no proof there).
struct TlogEntry {
  std::int64_t log_index = 0;  ///< global index, as in the signed entry timestamp
  std::string log_id;          ///< raw bytes of logId.keyId
  std::string kind;            ///< kindVersion.kind: hashedrekord, dsse, intoto
  std::string kind_version;
  std::int64_t integrated_time = 0;
  std::string signed_entry_timestamp;  ///< raw signature bytes; empty when there is no promise
  std::optional<InclusionProof> inclusion_proof;
  std::string canonicalized_body;  ///< the body bytes (decoded)

  /// Parses one `tlogEntries[]` element (int64s as JSON strings or numbers, bytes base64).
  static TlogEntry from_json(const nlohmann::json& j, const std::string& where);
};

/// Signed entry timestamp (inclusion promise): the log named by log_id is in the trusted
/// root, its validFor holds integrated_time, and the SET verifies over
/// canonical_json({body, integratedTime, logID (hex), logIndex}).
std::string verify_set(const TlogEntry& entry, const TrustedRoot& root);

/// RFC 6962 inclusion proof and signed checkpoint: the leaf hash of the canonicalized body at
/// inclusion_proof.log_index recomputes root_hash through `hashes` (bounded: at most 64
/// hashes, index < tree size); the checkpoint note is signed by the entry's log key (key
/// hint = first 4 bytes of its key id), and its size and root equal the proof's (cosign:
/// a root that differs from the checkpoint's fails).
std::string verify_inclusion(const TlogEntry& entry, const TrustedRoot& root);

/// RFC 6962 §2.1: leaf hash and the root an audit path gives (nullopt with `error` set when
/// the path's length does not fit index and size).
std::string rfc6962_leaf_hash(std::string_view leaf);
std::optional<std::string> rfc6962_root_from_proof(std::uint64_t index, std::uint64_t size, const std::string& leaf_hash,
                                                   const std::vector<std::string>& hashes, std::string* error);

/// What a Rekor entry body says about the signature it logs.
struct RekorBody {
  std::string kind;     ///< hashedrekord, dsse, intoto
  std::string version;  ///< apiVersion
  /// The signatures it logs (raw bytes) and their verifiers (PEM of a certificate or public
  /// key, decoded from the body's base64).
  std::vector<std::pair<std::string, std::string>> signatures;
  std::optional<std::string> data_sha256;      ///< hashedrekord: spec.data.hash.value (hex)
  std::optional<std::string> payload_sha256;   ///< dsse / intoto: payloadHash.value (hex)
  std::optional<std::string> envelope_sha256;  ///< dsse: envelopeHash.value (hex)
  static RekorBody parse(std::string_view canonical_body, const std::string& where);
};

/// Embedded SCTs (X.509 extension 1.3.6.1.4.1.11129.2.4.2) of a Fulcio leaf, against the
/// trusted root's CT logs: "" when at least one SCT is from a CT log of the root, within its
/// validFor, and verifies over the precertificate (the leaf's TBS without the SCT extension,
/// with issuer_key_hash = SHA-256 of `issuer`'s SPKI).
std::string verify_embedded_scts(X509* leaf, X509* issuer, const TrustedRoot& root);

/// An RFC 3161 timestamp verified against the trusted root's timestamp authorities.
struct SignedTimestamp {
  bool ok = false;
  std::string reason;
  TimePoint time{};       ///< genTime
  std::string authority;  ///< Authority::name of the TSA that verified it
};
/// `der` is a TimeStampResp or a bare TimeStampToken (ContentInfo). The token's
/// messageImprint is the hash of `signed_bytes`; its CMS signature verifies with a TSA of the
/// root (the chain given there, leaf first; certificates in the token are not needed), at
/// genTime within that authority's validFor and its certificates' validity.
SignedTimestamp verify_rfc3161(std::string_view der, std::string_view signed_bytes, const TrustedRoot& root);

} // namespace ferry::verify::sigstore

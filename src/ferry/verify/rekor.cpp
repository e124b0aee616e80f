// Rekor v1 transparency log entries: the signed entry timestamp, the RFC 6962 inclusion
// proof with its signed checkpoint (a C2SP signed note), and the entry bodies (issue 15).
// Decisions follow sigstore-go's tlog package and cosign's VerifyBundle.
#include <ferry/verify/sigstore.hpp>

#include "sigstore_util.hpp"

#include <ferry/util/base64.hpp>

#include <chrono>

namespace ferry::verify::sigstore {

using nlohmann::json;
using namespace detail;

namespace {

constexpr std::size_t k_max_proof_hashes = 64;
constexpr std::size_t k_max_checkpoint = 64 * 1024;
constexpr std::size_t k_max_note_signatures = 100;

std::string node_hash(const std::string& left, const std::string& right)
{
  std::string buf;
  buf.reserve(1 + left.size() + right.size());
  buf += '\x01';
  buf += left;
  buf += right;
  return sha256(buf);
}

} // namespace

TlogEntry TlogEntry::from_json(const json& j, const std::string& where)
{
  if (!j.is_object()) malformed(where, "not a JSON object");
  TlogEntry e;
  e.log_index = get_int64(j, "logIndex", where, true);
  if (e.log_index < 0) malformed(where, "negative logIndex");
  const json* id = get_object(j, "logId", where, true);
  e.log_id = get_b64(*id, "keyId", where + ".logId", true);
  if (e.log_id.empty()) malformed(where, "empty logId.keyId");
  const json* kv = get_object(j, "kindVersion", where, true);
  e.kind = *get_string(*kv, "kind", where + ".kindVersion", true);
  e.kind_version = *get_string(*kv, "version", where + ".kindVersion", true);
  e.integrated_time = get_int64(j, "integratedTime", where, false, 0);
  if (e.integrated_time < 0) malformed(where, "negative integratedTime");
  if (const json* promise = get_object(j, "inclusionPromise", where, false)) {
    e.signed_entry_timestamp = get_b64(*promise, "signedEntryTimestamp", where + ".inclusionPromise", true);
    if (e.signed_entry_timestamp.empty()) malformed(where, "empty inclusionPromise.signedEntryTimestamp");
  }
  if (const json* proof = get_object(j, "inclusionProof", where, false)) {
    std::string w = where + ".inclusionProof";
    InclusionProof p;
    p.log_index = get_int64(*proof, "logIndex", w, false, 0);
    p.tree_size = get_int64(*proof, "treeSize", w, true);
    if (p.log_index < 0 || p.tree_size < 0) malformed(w, "negative logIndex or treeSize");
    p.root_hash = get_b64(*proof, "rootHash", w, true);
    const json* hashes = get_array(*proof, "hashes", w, false);
    if (hashes) {
      if (hashes->size() > k_max_proof_hashes) malformed(w, "more than 64 hashes");
      for (const json& h : *hashes) {
        if (!h.is_string()) malformed(w, "hashes[] entry is not a string");
        p.hashes.push_back(b64(h.get_ref<const std::string&>(), w + ".hashes[]"));
      }
    }
    const json* cp = get_object(*proof, "checkpoint", w, true);
    p.checkpoint = *get_string(*cp, "envelope", w + ".checkpoint", true);
    if (p.checkpoint.size() > k_max_checkpoint) malformed(w, "checkpoint larger than 64 KiB");
    e.inclusion_proof = std::move(p);
  }
  e.canonicalized_body = get_b64(j, "canonicalizedBody", where, true);
  if (e.canonicalized_body.empty()) malformed(where, "empty canonicalizedBody");
  return e;
}

std::string verify_set(const TlogEntry& entry, const TrustedRoot& root)
{
  if (entry.signed_entry_timestamp.empty()) return "no inclusion promise (signed entry timestamp)";
  const LogInstance* log = root.tlog(entry.log_id);
  if (!log) return "transparency log " + hex(entry.log_id) + " is not in the trusted root";
  if (!log->valid_for.contains(TimePoint(std::chrono::seconds(entry.integrated_time))))
    return "transparency log " + hex(entry.log_id) + " key is not valid at the integrated time " +
           format_rfc3339(TimePoint(std::chrono::seconds(entry.integrated_time)));
  json payload = {{"body", base64_encode(entry.canonicalized_body)},
                  {"integratedTime", entry.integrated_time},
                  {"logID", hex(entry.log_id)},
                  {"logIndex", entry.log_index}};
  if (!verify_signature(log->key.get(), canonical_json(payload), entry.signed_entry_timestamp))
    return "signed entry timestamp does not verify with the key of transparency log " + hex(entry.log_id);
  return "";
}

std::string rfc6962_leaf_hash(std::string_view leaf)
{
  std::string buf;
  buf.reserve(1 + leaf.size());
  buf += '\x00';
  buf += leaf;
  return sha256(buf);
}

std::optional<std::string> rfc6962_root_from_proof(std::uint64_t index, std::uint64_t size, const std::string& leaf_hash,
                                                   const std::vector<std::string>& hashes, std::string* error)
{
  auto fail = [&](std::string why) -> std::optional<std::string> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  if (size == 0) return fail("inclusion proof for an empty tree");
  if (index >= size) return fail("inclusion proof index " + std::to_string(index) + " is not below the tree size " + std::to_string(size));
  if (hashes.size() > k_max_proof_hashes) return fail("inclusion proof has more than 64 hashes");
  // RFC 9162 §2.1.3.2.
  std::uint64_t fn = index;
  std::uint64_t sn = size - 1;
  std::string r = leaf_hash;
  for (const std::string& p : hashes) {
    if (p.size() != 32) return fail("inclusion proof hash is not 32 bytes");
    if (sn == 0) return fail("inclusion proof has more hashes than the tree size allows");
    if ((fn & 1) || fn == sn) {
      r = node_hash(p, r);
      if (!(fn & 1))
        while (fn != 0 && !(fn & 1)) {
          fn >>= 1;
          sn >>= 1;
        }
    } else {
      r = node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return fail("inclusion proof has fewer hashes than the tree size needs");
  return r;
}

namespace {

struct Checkpoint {
  std::string origin;
  std::uint64_t size = 0;
  std::string root;
};

/// Verifies the signed note with `log` and parses its body; returns "" or the reason.
std::string verify_checkpoint(const std::string& envelope, const LogInstance& log, Checkpoint& out)
{
  if (envelope.size() > k_max_checkpoint) return "checkpoint larger than 64 KiB";
  std::size_t sep = envelope.find("\n\n");
  if (sep == std::string::npos) return "checkpoint has no signature block";
  std::string text = envelope.substr(0, sep + 1);
  // Body: origin, size, base64 root hash, optional extension lines.
  std::vector<std::string> lines;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t nl = text.find('\n', pos);
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
    if (lines.size() > 1000) return "checkpoint has too many lines";
  }
  if (lines.size() < 3 || lines[0].empty()) return "checkpoint body lacks origin, size and root hash";
  out.origin = lines[0];
  const std::string& size = lines[1];
  if (size.empty() || size.size() > 20 || (size.size() > 1 && size[0] == '0')) return "checkpoint tree size is not a decimal number";
  std::uint64_t n = 0;
  for (char c : size) {
    if (c < '0' || c > '9') return "checkpoint tree size is not a decimal number";
    std::uint64_t next = n * 10 + static_cast<std::uint64_t>(c - '0');
    if (next / 10 != n) return "checkpoint tree size out of range";
    n = next;
  }
  out.size = n;
  try {
    out.root = base64_decode(lines[2]);
  } catch (const Error&) {
    return "checkpoint root hash is not base64";
  }
  if (out.root.size() != 32) return "checkpoint root hash is not 32 bytes";

  // Signature lines: "— <name> <base64(key hint(4) || signature)>\n".
  std::string hint1 = log.key_id.substr(0, 4);
  std::string hint2 = sha256(spki_der(log.key.get())).substr(0, 4);
  const std::string dash = "\xe2\x80\x94 ";
  std::size_t pos = sep + 2;
  std::size_t count = 0;
  bool any_line = false;
  while (pos < envelope.size()) {
    if (++count > k_max_note_signatures) return "checkpoint has too many signature lines";
    std::size_t nl = envelope.find('\n', pos);
    if (nl == std::string::npos) return "checkpoint signature line is not terminated";
    std::string_view line(envelope.data() + pos, nl - pos);
    pos = nl + 1;
    if (!line.starts_with(dash)) return "checkpoint signature line does not start with an em dash";
    line.remove_prefix(dash.size());
    std::size_t space = line.rfind(' ');
    if (space == std::string_view::npos || space == 0) return "checkpoint signature line lacks a key name";
    std::string sig;
    try {
      sig = base64_decode(line.substr(space + 1));
    } catch (const Error&) {
      return "checkpoint signature is not base64";
    }
    if (sig.size() < 5) return "checkpoint signature is too short";
    any_line = true;
    std::string hint = sig.substr(0, 4);
    if (hint != hint1 && hint != hint2) continue;
    if (verify_signature(log.key.get(), text, std::string_view(sig).substr(4))) return "";
    return "invalid checkpoint signature";
  }
  if (!any_line) return "checkpoint has no signature";
  return "checkpoint is not signed by the transparency log " + hex(log.key_id);
}

} // namespace

std::string verify_inclusion(const TlogEntry& entry, const TrustedRoot& root)
{
  if (!entry.inclusion_proof) return "no inclusion proof";
  const InclusionProof& p = *entry.inclusion_proof;
  const LogInstance* log = root.tlog(entry.log_id);
  if (!log) return "transparency log " + hex(entry.log_id) + " is not in the trusted root";
  if (p.hashes.size() > k_max_proof_hashes) return "inclusion proof has more than 64 hashes";
  if (p.tree_size <= 0) return "inclusion proof tree size is not positive";
  if (p.log_index < 0 || p.log_index >= p.tree_size) return "inclusion proof index is not below the tree size";
  if (p.root_hash.size() != 32) return "inclusion proof root hash is not 32 bytes";
  Checkpoint cp;
  if (std::string bad = verify_checkpoint(p.checkpoint, *log, cp); !bad.empty()) return bad;
  if (cp.size != static_cast<std::uint64_t>(p.tree_size))
    return "checkpoint tree size " + std::to_string(cp.size) + " differs from the inclusion proof's " + std::to_string(p.tree_size);
  if (cp.root != p.root_hash) return "inclusion proof root hash differs from the signed checkpoint's";
  std::string error;
  auto computed = rfc6962_root_from_proof(static_cast<std::uint64_t>(p.log_index), static_cast<std::uint64_t>(p.tree_size),
                                          rfc6962_leaf_hash(entry.canonicalized_body), p.hashes, &error);
  if (!computed) return error;
  if (*computed != p.root_hash) return "calculated root hash does not match the inclusion proof's root hash";
  return "";
}

namespace {

std::optional<std::string> hash_value(const json& obj, const char* key, const std::string& where)
{
  const json* h = get_object(obj, key, where, false);
  if (!h) return std::nullopt;
  const std::string* alg = get_string(*h, "algorithm", where + "." + key, true);
  const std::string* value = get_string(*h, "value", where + "." + key, true);
  if (*alg != "sha256") return std::nullopt;
  if (value->size() != 64 || value->find_first_not_of("0123456789abcdef") != std::string::npos)
    malformed(where + "." + key, "value is not lower-case hex SHA-256");
  return *value;
}

} // namespace

RekorBody RekorBody::parse(std::string_view canonical_body, const std::string& where)
{
  json j = parse_json(canonical_body, where);
  if (!j.is_object()) malformed(where, "not a JSON object");
  RekorBody b;
  b.kind = *get_string(j, "kind", where, true);
  b.version = *get_string(j, "apiVersion", where, true);
  const json* spec = get_object(j, "spec", where, true);
  std::string w = where + ".spec";
  if (b.kind == "hashedrekord" && b.version == "0.0.1") {
    if (const json* data = get_object(*spec, "data", w, false)) b.data_sha256 = hash_value(*data, "hash", w + ".data");
    const json* sig = get_object(*spec, "signature", w, true);
    std::string content = get_b64(*sig, "content", w + ".signature", true);
    const json* pk = get_object(*sig, "publicKey", w + ".signature", true);
    std::string verifier = get_b64(*pk, "content", w + ".signature.publicKey", true);
    b.signatures.emplace_back(std::move(content), std::move(verifier));
  } else if (b.kind == "dsse" && b.version == "0.0.1") {
    b.envelope_sha256 = hash_value(*spec, "envelopeHash", w);
    b.payload_sha256 = hash_value(*spec, "payloadHash", w);
    const json* sigs = get_array(*spec, "signatures", w, true);
    for (const json& s : *sigs) {
      std::string sig = get_b64(s, "signature", w + ".signatures[]", true);
      std::string verifier = get_b64(s, "verifier", w + ".signatures[]", true);
      b.signatures.emplace_back(std::move(sig), std::move(verifier));
    }
  } else if (b.kind == "intoto" && b.version == "0.0.2") {
    const json* content = get_object(*spec, "content", w, true);
    std::string wc = w + ".content";
    b.envelope_sha256 = hash_value(*content, "hash", wc);
    b.payload_sha256 = hash_value(*content, "payloadHash", wc);
    const json* env = get_object(*content, "envelope", wc, true);
    const json* sigs = get_array(*env, "signatures", wc + ".envelope", true);
    for (const json& s : *sigs) {
      std::string ws = wc + ".envelope.signatures[]";
      // Rekor stores the DSSE `sig` (already base64) as strfmt.Base64: base64 of base64.
      std::string sig = b64(get_b64(s, "sig", ws, true), ws + ".sig (inner)");
      std::string verifier = get_b64(s, "publicKey", ws, true);
      b.signatures.emplace_back(std::move(sig), std::move(verifier));
    }
  } else {
    throw Error(Errc::unsupported, where + ": unsupported Rekor entry kind " + b.kind.substr(0, 40) + " " + b.version.substr(0, 20));
  }
  if (b.signatures.empty()) malformed(where, "no signatures");
  return b;
}

} // namespace ferry::verify::sigstore

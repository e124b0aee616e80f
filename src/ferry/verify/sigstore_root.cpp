// The trusted root (protobuf-specs TrustedRoot JSON), public keys, signatures and RFC 8785
// canonical JSON for Sigstore (issue 15). Decisions follow sigstore-go's root package.
#include <ferry/verify/sigstore.hpp>

#include "sigstore_util.hpp"

#include <ferry/util/base64.hpp>
#include <ferry/util/json.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <charconv>

namespace ferry::verify::sigstore {

using nlohmann::json;

namespace detail {

void malformed(const std::string& where, const std::string& why)
{
  throw Error(Errc::invalid_manifest, where + ": " + why);
}

nlohmann::json parse_json(std::string_view text, const std::string& where)
{
  if (text.size() > k_max_json_bytes) malformed(where, "larger than 16 MiB");
  // Nesting bound before nlohmann sees it (strings skipped).
  if (json_depth(text) > static_cast<std::size_t>(k_max_json_depth)) malformed(where, "JSON nested deeper than 64 levels");
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) malformed(where, "not valid JSON");
  return j;
}

std::string b64(std::string_view text, const std::string& where)
{
  try {
    return base64_decode(text);
  } catch (const Error&) {
    malformed(where, "invalid base64");
  }
}

const std::string* get_string(const json& obj, const char* key, const std::string& where, bool required)
{
  if (!obj.is_object()) malformed(where, "not a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) malformed(where, std::string("missing ") + key);
    return nullptr;
  }
  if (!it->is_string()) malformed(where, std::string(key) + " is not a string");
  return it->get_ptr<const std::string*>();
}

std::string get_b64(const json& obj, const char* key, const std::string& where, bool required)
{
  const std::string* s = get_string(obj, key, where, required);
  return s ? b64(*s, where + "." + key) : std::string();
}

std::int64_t get_int64(const json& obj, const char* key, const std::string& where, bool required, std::int64_t fallback)
{
  if (!obj.is_object()) malformed(where, "not a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) malformed(where, std::string("missing ") + key);
    return fallback;
  }
  if (it->is_number_integer()) {
    if (it->is_number_unsigned()) {
      auto u = it->get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(INT64_MAX)) malformed(where, std::string(key) + " out of range");
      return static_cast<std::int64_t>(u);
    }
    return it->get<std::int64_t>();
  }
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || s[0] == '+')
      malformed(where, std::string(key) + " is not a decimal int64");
    return v;
  }
  malformed(where, std::string(key) + " is not an integer");
}

const json* get_object(const json& obj, const char* key, const std::string& where, bool required)
{
  if (!obj.is_object()) malformed(where, "not a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) malformed(where, std::string("missing ") + key);
    return nullptr;
  }
  if (!it->is_object()) malformed(where, std::string(key) + " is not an object");
  return &*it;
}

const json* get_array(const json& obj, const char* key, const std::string& where, bool required)
{
  if (!obj.is_object()) malformed(where, "not a JSON object");
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) malformed(where, std::string("missing ") + key);
    return nullptr;
  }
  if (!it->is_array()) malformed(where, std::string(key) + " is not an array");
  if (it->size() > k_max_list) malformed(where, std::string(key) + " has more than 1000 entries");
  return &*it;
}

std::string sha256(std::string_view data)
{
  unsigned char out[32];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr) != 1)
    throw Error(Errc::internal, "EVP_Digest failed: " + openssl_error());
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string hex(std::string_view bytes)
{
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

} // namespace detail

using namespace detail;

bool ValidFor::contains(TimePoint t) const
{
  if (start && t < *start) return false;
  if (end && t > *end) return false;
  return true;
}

namespace {

ValidFor parse_valid_for(const json* vf, const std::string& where)
{
  ValidFor out;
  if (!vf) return out;
  auto time = [&](const char* key) -> std::optional<TimePoint> {
    const std::string* s = get_string(*vf, key, where, false);
    if (!s) return std::nullopt;
    try {
      return parse_rfc3339(*s, where + "." + key);
    } catch (const Error& e) {
      throw Error(Errc::invalid_manifest, e.what());
    }
  };
  out.start = time("start");
  out.end = time("end");
  if (out.start && out.end && *out.end < *out.start) malformed(where, "end before start");
  return out;
}

LogInstance parse_log(const json& j, const std::string& where)
{
  if (!j.is_object()) malformed(where, "not a JSON object");
  LogInstance log;
  if (const std::string* url = get_string(j, "baseUrl", where, false)) log.base_url = *url;
  const json* pk = get_object(j, "publicKey", where, true);
  std::string raw = get_b64(*pk, "rawBytes", where + ".publicKey", true);
  log.key = parse_public_key(raw, where + ".publicKey.rawBytes");
  log.valid_for = parse_valid_for(get_object(*pk, "validFor", where + ".publicKey", false), where + ".publicKey.validFor");
  const json* id = get_object(j, "logId", where, true);
  log.key_id = get_b64(*id, "keyId", where + ".logId", true);
  if (log.key_id.empty()) malformed(where, "empty logId.keyId");
  return log;
}

Authority parse_authority(const json& j, const std::string& where)
{
  if (!j.is_object()) malformed(where, "not a JSON object");
  Authority a;
  if (const std::string* uri = get_string(j, "uri", where, false)) a.uri = *uri;
  if (const json* subject = get_object(j, "subject", where, false)) {
    const std::string* cn = get_string(*subject, "commonName", where + ".subject", false);
    const std::string* org = get_string(*subject, "organization", where + ".subject", false);
    if (cn && !cn->empty()) a.name = *cn;
    else if (org && !org->empty()) a.name = *org;
  }
  if (a.name.empty()) a.name = a.uri;
  const json* chain = get_object(j, "certChain", where, true);
  const json* certs = get_array(*chain, "certificates", where + ".certChain", true);
  if (certs->empty()) malformed(where, "certChain.certificates is empty");
  std::size_t i = 0;
  for (const json& c : *certs) {
    std::string w = where + ".certChain.certificates[" + std::to_string(i++) + "]";
    std::string der = get_b64(c, "rawBytes", w, true);
    try {
      X509Ptr cert = parse_der_certificate(der);
      a.chain.emplace_back(cert.release(), X509_free);
    } catch (const Error& e) {
      malformed(w, std::string("certificate does not parse: ") + e.what());
    }
  }
  a.valid_for = parse_valid_for(get_object(j, "validFor", where, false), where + ".validFor");
  return a;
}

const LogInstance* find_log(const std::vector<LogInstance>& logs, std::string_view key_id)
{
  for (const auto& l : logs)
    if (l.key_id == key_id) return &l;
  return nullptr;
}

} // namespace

const LogInstance* TrustedRoot::tlog(std::string_view key_id) const { return find_log(tlogs, key_id); }
const LogInstance* TrustedRoot::ctlog(std::string_view key_id) const { return find_log(ctlogs, key_id); }

TrustedRoot TrustedRoot::parse(std::string_view text, const std::string& source)
{
  json j = parse_json(text, source);
  if (!j.is_object()) malformed(source, "not a JSON object");
  const std::string* mt = get_string(j, "mediaType", source, true);
  if (*mt != "application/vnd.dev.sigstore.trustedroot+json;version=0.1" &&
      *mt != "application/vnd.dev.sigstore.trustedroot.v0.2+json" &&
      *mt != "application/vnd.dev.sigstore.trustedroot+json;version=0.2")
    malformed(source, "unsupported mediaType \"" + mt->substr(0, 100) + "\"");
  TrustedRoot root;
  auto each = [&](const char* key, auto&& fn) {
    const json* list = get_array(j, key, source, false);
    if (!list) return;
    std::size_t i = 0;
    for (const json& e : *list) fn(e, source + ": " + key + "[" + std::to_string(i++) + "]");
  };
  each("tlogs", [&](const json& e, const std::string& w) { root.tlogs.push_back(parse_log(e, w)); });
  each("ctlogs", [&](const json& e, const std::string& w) { root.ctlogs.push_back(parse_log(e, w)); });
  each("certificateAuthorities",
       [&](const json& e, const std::string& w) { root.certificate_authorities.push_back(parse_authority(e, w)); });
  each("timestampAuthorities",
       [&](const json& e, const std::string& w) { root.timestamp_authorities.push_back(parse_authority(e, w)); });
  return root;
}

std::shared_ptr<EVP_PKEY> parse_public_key(std::string_view bytes, const std::string& source)
{
  if (bytes.empty()) malformed(source, "empty public key");
  if (bytes.size() > 64 * 1024) malformed(source, "public key larger than 64 KiB");
  EVP_PKEY* key = nullptr;
  std::string_view trimmed = bytes;
  while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\n' || trimmed.front() == '\r' || trimmed.front() == '\t'))
    trimmed.remove_prefix(1);
  if (trimmed.starts_with("-----BEGIN")) {
    BioPtr bio(BIO_new_mem_buf(trimmed.data(), static_cast<int>(trimmed.size())));
    if (bio) key = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(bytes.data());
    key = d2i_PUBKEY(nullptr, &p, static_cast<long>(bytes.size()));
    if (key && p != reinterpret_cast<const unsigned char*>(bytes.data()) + bytes.size()) {
      EVP_PKEY_free(key);
      key = nullptr;
    }
  }
  if (!key) {
    std::string detail = openssl_error();
    malformed(source, "not a PEM or DER public key" + (detail.empty() ? std::string() : " (" + detail + ")"));
  }
  ERR_clear_error();
  return std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
}

std::string spki_der(EVP_PKEY* key)
{
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) throw Error(Errc::internal, "i2d_PUBKEY failed: " + openssl_error());
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

bool verify_signature(EVP_PKEY* key, std::string_view data, std::string_view signature)
{
  if (!key || signature.empty()) return false;
  const EVP_MD* md = nullptr;
  switch (EVP_PKEY_base_id(key)) {
  case EVP_PKEY_EC: {
    int bits = EVP_PKEY_get_bits(key);
    md = bits <= 256 ? EVP_sha256() : bits <= 384 ? EVP_sha384() : EVP_sha512();
    break;
  }
  case EVP_PKEY_RSA: md = EVP_sha256(); break;
  case EVP_PKEY_ED25519: md = nullptr; break;
  default: return false;
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) == 1;
  if (ok && EVP_PKEY_base_id(key) == EVP_PKEY_RSA) ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
  ok = ok && EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                              reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  ERR_clear_error();
  return ok;
}

namespace {

/// UTF-16 code units of a UTF-8 string (RFC 8785 §3.2.3 sorts keys by them).
std::u16string utf16(const std::string& s)
{
  std::u16string out;
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    char32_t cp = 0;
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (std::size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    i += n;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += static_cast<char16_t>(0xd800 + (cp >> 10));
      out += static_cast<char16_t>(0xdc00 + (cp & 0x3ff));
    } else {
      out += static_cast<char16_t>(cp);
    }
  }
  return out;
}

void write_canonical(const json& v, std::string& out)
{
  switch (v.type()) {
  case json::value_t::object: {
    std::vector<std::pair<std::u16string, const json::object_t::value_type*>> keys;
    for (const auto& kv : v.get_ref<const json::object_t&>()) keys.emplace_back(utf16(kv.first), &kv);
    std::sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    out += '{';
    bool first = true;
    for (const auto& [k, kv] : keys) {
      if (!first) out += ',';
      first = false;
      out += json(kv->first).dump(-1, ' ', false, json::error_handler_t::strict);
      out += ':';
      write_canonical(kv->second, out);
    }
    out += '}';
    break;
  }
  case json::value_t::array: {
    out += '[';
    bool first = true;
    for (const auto& e : v) {
      if (!first) out += ',';
      first = false;
      write_canonical(e, out);
    }
    out += ']';
    break;
  }
  case json::value_t::number_float: {
    double d = v.get<double>();
    if (d != d || d > 9007199254740991.0 || d < -9007199254740991.0 || static_cast<double>(static_cast<std::int64_t>(d)) != d)
      throw Error(Errc::unsupported, "canonical JSON: only integral numbers are supported");
    out += std::to_string(static_cast<std::int64_t>(d));
    break;
  }
  default:
    // strings (minimal escapes, \u00xx lower-case, UTF-8 kept), integers, booleans, null:
    // nlohmann's compact dump is RFC 8785's form for these.
    out += v.dump(-1, ' ', false, json::error_handler_t::strict);
  }
}

} // namespace

std::string canonical_json(const nlohmann::json& value)
{
  std::string out;
  try {
    write_canonical(value, out);
  } catch (const json::exception& e) {
    throw Error(Errc::invalid_argument, std::string("canonical JSON: ") + e.what());
  }
  return out;
}

} // namespace ferry::verify::sigstore

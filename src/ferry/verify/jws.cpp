// JWS envelopes (application/jose+json), flattened JSON serialization.
// Reference: ../shared/notation/SPEC.md §2; notation-core-go signature/jws/{envelope,jws,jwt,types}.go;
// golang-jwt v4 parser.go / rsa_pss.go / ecdsa.go (the JWT verification notation-core-go delegates to).
// The order of checks (and so which reason a doubly-broken envelope reports) follows
// notation-core-go: parse → leaf → JWT signature → protected headers → crit → shared checks.
#include <ferry/verify/envelope.hpp>

#include <ferry/error.hpp>
#include <ferry/verify/x509.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <sstream>

namespace ferry::verify {

namespace {

using nlohmann::json;


/// Headers notation-core-go models in jwsProtectedHeader; everything else is an extended
/// attribute (types.go headerKeys).
constexpr std::array<std::string_view, 7> k_header_keys = {"alg", "cty", "crit", k_expiry, k_signing_time,
                                                           k_signing_scheme, k_authentic_signing_time};

bool is_header_key(std::string_view k)
{
  return std::find(k_header_keys.begin(), k_header_keys.end(), k) != k_header_keys.end();
}

[[noreturn]] void integrity(const std::string& why) { throw IntegrityError("signature is invalid. Error: " + why); }

int b64_value(char c, bool url)
{
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (url ? c == '-' : c == '+') return 62;
  if (url ? c == '_' : c == '/') return 63;
  return -1;
}

/// Go encoding/base64 decoding: RawURLEncoding (no padding; JWS segments, golang-jwt
/// DecodeSegment) or StdEncoding (padding required; []byte fields of encoding/json).
/// Newlines are skipped as Go does. Throws std::invalid_argument with Go's
/// "illegal base64 data at input byte N".
std::string go_base64_decode(std::string_view s, bool url_raw)
{
  std::string out;
  out.reserve(s.size() * 3 / 4);
  std::uint32_t acc = 0;
  int n = 0;
  std::size_t last = 0;
  auto illegal = [](std::size_t at) {
    return std::invalid_argument("illegal base64 data at input byte " + std::to_string(at));
  };
  std::size_t i = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\r' || c == '\n') continue;
    if (c == '=') {
      if (url_raw || n < 2) throw illegal(i);
      // Padding: "xx==" or "xxx=", then only newlines up to the end.
      std::size_t need = n == 2 ? 2 : 1;
      std::size_t got = 0, j = i;
      for (; j < s.size() && got < need; ++j) {
        if (s[j] == '\r' || s[j] == '\n') continue;
        if (s[j] != '=') throw illegal(j);
        ++got;
      }
      if (got < need) throw illegal(s.size());
      for (; j < s.size(); ++j)
        if (s[j] != '\r' && s[j] != '\n') throw illegal(j);
      break;
    }
    int v = b64_value(c, url_raw);
    if (v < 0) throw illegal(i);
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    last = i;
    if (++n == 4) {
      out.push_back(static_cast<char>((acc >> 16) & 0xff));
      out.push_back(static_cast<char>((acc >> 8) & 0xff));
      out.push_back(static_cast<char>(acc & 0xff));
      acc = 0;
      n = 0;
    }
  }
  bool padded = i < s.size();
  if (n == 1) throw illegal(last);
  if (n != 0 && !url_raw && !padded) throw illegal(s.size());
  if (n == 2) out.push_back(static_cast<char>((acc >> 4) & 0xff));
  if (n == 3) {
    out.push_back(static_cast<char>((acc >> 10) & 0xff));
    out.push_back(static_cast<char>((acc >> 2) & 0xff));
  }
  return out;
}

/// Go encoding/json matches struct fields case-insensitively (exact match preferred).
const json* find_field(const json& obj, std::string_view key)
{
  if (!obj.is_object()) return nullptr;
  if (auto it = obj.find(std::string(key)); it != obj.end()) return &*it;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& k = it.key();
    if (k.size() == key.size() &&
        std::equal(k.begin(), k.end(), key.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
      return &*it;
  }
  return nullptr;
}

/// A JSON string field ("" when absent or null); throws `error_prefix + reason` otherwise.
std::string string_field(const json& obj, std::string_view key, const std::string& error_prefix)
{
  const json* v = find_field(obj, key);
  if (!v || v->is_null()) return {};
  if (!v->is_string())
    throw IntegrityError(error_prefix + "json: cannot unmarshal " + v->type_name() + " into field \"" + std::string(key) +
                         "\" of type string");
  return v->get<std::string>();
}

/// Parses JSON the way Go's json.Decoder.Decode does for golang-jwt claims: one value,
/// trailing data ignored.
json parse_first_value(const std::string& text)
{
  std::istringstream in(text);
  json j;
  in >> j;
  return j;
}

struct Envelope {
  std::string payload;    ///< base64url as in the envelope
  std::string protected_; ///< base64url as in the envelope
  std::string signature;  ///< base64url as in the envelope
  std::vector<std::string> x5c;  ///< DER
  std::string timestamp;
  std::string signing_agent;
};

Envelope parse_envelope(std::string_view text)
{
  const std::string prefix = "malformed JWS envelope: ";
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw IntegrityError(prefix + e.what());
  }
  if (!j.is_object()) throw IntegrityError(prefix + "json: cannot unmarshal " + std::string(j.type_name()) + " into the envelope");
  Envelope env;
  env.payload = string_field(j, "payload", prefix);
  env.protected_ = string_field(j, "protected", prefix);
  env.signature = string_field(j, "signature", prefix);
  const json* header = find_field(j, "header");
  if (header && !header->is_null()) {
    if (!header->is_object()) throw IntegrityError(prefix + "\"header\" is not an object");
    auto bytes_field = [&](const json& v, const char* what) -> std::string {
      if (v.is_null()) return {};
      if (!v.is_string()) throw IntegrityError(prefix + what + " is not a base64 string");
      try {
        return go_base64_decode(v.get_ref<const std::string&>(), false);
      } catch (const std::invalid_argument& e) {
        throw IntegrityError(prefix + what + ": " + e.what());
      }
    };
    if (const json* x5c = find_field(*header, "x5c"); x5c && !x5c->is_null()) {
      if (!x5c->is_array()) throw IntegrityError(prefix + "\"x5c\" is not an array");
      for (const auto& c : *x5c) env.x5c.push_back(bytes_field(c, "x5c"));
    }
    if (const json* ts = find_field(*header, "io.cncf.notary.timestampSignature"))
      env.timestamp = bytes_field(*ts, "io.cncf.notary.timestampSignature");
    env.signing_agent = string_field(*header, "io.cncf.notary.signingAgent", prefix);
  }
  return env;
}

/// golang-jwt v4 Parser.Parse with WithValidMethods(PS*/ES*), WithJSONNumber,
/// WithoutClaimsValidation, verifying with the leaf key. Returns "" or the reason.
std::string verify_jwt(const Envelope& env, EVP_PKEY* key)
{
  std::string compact = env.protected_ + "." + env.payload + "." + env.signature;
  if (std::count(compact.begin(), compact.end(), '.') != 2) return "token contains an invalid number of segments";
  json header;
  try {
    header = json::parse(go_base64_decode(env.protected_, true));
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const json::exception& e) {
    return e.what();
  }
  if (!header.is_object()) return "json: cannot unmarshal " + std::string(header.type_name()) + " into the JWT header";
  try {
    json claims = parse_first_value(go_base64_decode(env.payload, true));
    if (!claims.is_object() && !claims.is_null()) return "json: cannot unmarshal " + std::string(claims.type_name()) + " into the JWT claims";
  } catch (const std::invalid_argument& e) {
    return e.what();
  } catch (const json::exception& e) {
    return e.what();
  }
  auto alg_it = header.find("alg");
  if (alg_it == header.end() || !alg_it->is_string()) return "signing method (alg) is unspecified.";
  const std::string alg = alg_it->get<std::string>();
  static const std::array<std::string_view, 14> registered = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                                              "RS512", "PS256", "PS384", "PS512", "ES256",
                                                              "ES384", "ES512", "EdDSA", "none"};
  static const std::array<std::string_view, 6> valid = {"PS256", "PS384", "PS512", "ES256", "ES384", "ES512"};
  if (std::find(registered.begin(), registered.end(), alg) == registered.end()) return "signing method (alg) is unavailable.";
  if (std::find(valid.begin(), valid.end(), alg) == valid.end()) return "signing method " + alg + " is invalid";
  std::string sig;
  try {
    sig = go_base64_decode(env.signature, true);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return detail::verify_signature(key, alg, env.protected_ + "." + env.payload, sig, true);
}

/// jwsProtectedHeader as notation-core-go decodes it.
struct Protected {
  std::string alg;
  std::string cty;
  std::vector<std::string> crit;
  std::optional<TimePoint> expiry;
  std::string signing_scheme;
  std::optional<TimePoint> signing_time;
  std::optional<TimePoint> authentic_signing_time;
  json extended = json::object();  ///< every other key
};

Protected parse_protected(const std::string& encoded)
{
  const std::string prefix = "jws envelope protected header can't be decoded: ";
  json j;
  try {
    j = json::parse(go_base64_decode(encoded, true));
  } catch (const std::invalid_argument& e) {
    throw IntegrityError(prefix + e.what());
  } catch (const json::exception& e) {
    throw IntegrityError(prefix + e.what());
  }
  if (!j.is_object()) throw IntegrityError(prefix + "json: cannot unmarshal " + std::string(j.type_name()) + " into the header");
  Protected p;
  auto str = [&](std::string_view key) -> std::string {
    auto it = j.find(std::string(key));
    if (it == j.end() || it->is_null()) return {};
    if (!it->is_string())
      throw IntegrityError(prefix + "json: cannot unmarshal " + it->type_name() + " into field \"" + std::string(key) + "\" of type string");
    return it->get<std::string>();
  };
  auto time = [&](std::string_view key) -> std::optional<TimePoint> {
    auto it = j.find(std::string(key));
    if (it == j.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) throw IntegrityError(prefix + "\"" + std::string(key) + "\" is not an RFC 3339 time string");
    try {
      return parse_rfc3339(it->get_ref<const std::string&>(), std::string(key));
    } catch (const Error& e) {
      throw IntegrityError(prefix + e.what());
    }
  };
  p.alg = str("alg");
  p.cty = str("cty");
  if (auto it = j.find("crit"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) throw IntegrityError(prefix + "json: cannot unmarshal " + std::string(it->type_name()) + " into field \"crit\" of type []string");
    for (const auto& v : *it) {
      if (!v.is_string()) throw IntegrityError(prefix + "json: cannot unmarshal " + std::string(v.type_name()) + " into field \"crit\" of type string");
      p.crit.push_back(v.get<std::string>());
    }
  }
  p.expiry = time(k_expiry);
  p.signing_scheme = str(k_signing_scheme);
  p.signing_time = time(k_signing_time);
  p.authentic_signing_time = time(k_authentic_signing_time);
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!is_header_key(it.key())) p.extended[it.key()] = it.value();
  return p;
}

/// validateProtectedHeaders + validateCriticalHeaders (jws.go).
void validate_protected(const Protected& p)
{
  if (p.signing_scheme == "notary.x509") {
    if (p.authentic_signing_time)
      throw IntegrityError("\"" + std::string(k_authentic_signing_time) + "\" header must not be present for notary.x509 signing scheme");
  } else if (p.signing_scheme == "notary.x509.signingAuthority") {
    if (p.signing_time)
      throw IntegrityError("\"" + std::string(k_signing_time) + "\" header must not be present for notary.x509.signingAuthority signing scheme");
    if (!p.authentic_signing_time)
      throw IntegrityError("\"" + std::string(k_authentic_signing_time) + "\" header must be present for notary.x509.signingAuthority signing scheme");
  } else {
    throw IntegrityError("unsupported SigningScheme: `" + p.signing_scheme + "`");
  }
  if (p.crit.empty()) throw IntegrityError("missing \"crit\" header");
  std::vector<std::string> must = {std::string(k_signing_scheme)};
  if (p.expiry) must.emplace_back(k_expiry);
  if (p.signing_scheme == "notary.x509.signingAuthority") must.emplace_back(k_authentic_signing_time);
  for (const auto& c : p.crit) {
    if (auto it = std::find(must.begin(), must.end(), c); it != must.end()) {
      must.erase(it);
    } else if (!p.extended.contains(c)) {
      throw IntegrityError("\"" + c + "\" header is marked critical but not present");
    }
  }
  if (!must.empty()) {
    std::string keys;
    for (const auto& k : must) keys += (keys.empty() ? "" : " ") + k;
    throw IntegrityError("these required headers are not marked as critical: [" + keys + "]");
  }
}

} // namespace

SignerInfo verify_jws(std::string_view text)
{
  Envelope env;
  try {
    env = parse_envelope(text);
  } catch (const IntegrityError& e) {
    throw IntegrityError(e.what(), IntegrityError::Stage::parse);
  }
  if (env.x5c.empty()) throw IntegrityError("certificate chain is not set");
  X509Ptr leaf;
  try {
    leaf = parse_der_certificate(env.x5c[0]);
  } catch (const Error&) {
    throw IntegrityError("malformed leaf certificate");
  }
  EVP_PKEY* key = X509_get0_pubkey(leaf.get());
  if (std::string e = verify_jwt(env, key); !e.empty()) integrity(e);

  Protected p = parse_protected(env.protected_);
  SignerInfo info;
  info.envelope_media_type = std::string(k_media_type_jws);
  info.payload = go_base64_decode(env.payload, true);  // verified decodable by verify_jwt
  validate_protected(p);
  info.alg = p.alg;
  info.scheme = p.signing_scheme == "notary.x509" ? SigningScheme::x509 : SigningScheme::x509_signing_authority;
  if (info.scheme == SigningScheme::x509) info.signing_time = p.signing_time;
  else info.authentic_signing_time = p.authentic_signing_time;
  info.expiry = p.expiry;
  for (auto it = p.extended.begin(); it != p.extended.end(); ++it) {
    const std::string& k = it.key();
    bool critical = std::find(p.crit.begin(), p.crit.end(), k) != p.crit.end();
    if (k == k_verification_plugin) {
      if (it->is_string()) info.verification_plugin = it->get<std::string>();
    } else if (k == k_verification_plugin_min_version) {
      if (it->is_string()) info.verification_plugin_min_version = it->get<std::string>();
    } else if (critical) {
      info.unknown_critical.push_back(k);
    }
  }
  info.signature = go_base64_decode(env.signature, true);
  if (info.signature.empty()) throw IntegrityError("signature missing in JWS envelope");
  for (const auto& der : env.x5c) {
    try {
      info.chain.push_back(parse_der_certificate(der));
    } catch (const Error& e) {
      throw IntegrityError(std::string("x509: ") + e.what());
    }
  }
  info.timestamp_token = std::move(env.timestamp);
  info.signing_agent = std::move(env.signing_agent);
  detail::validate_signer_info(info, p.cty);
  return info;
}

} // namespace ferry::verify

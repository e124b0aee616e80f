// COSE_Sign1_Tagged envelopes (application/cose).
// Reference: ../shared/notation/SPEC.md §3; notation-core-go signature/cose/envelope.go;
// go-cose sign1.go (UnmarshalCBOR, Verify, toBeSigned) and headers.go (header validation).
// Order of checks follows notation-core-go: decode → x5chain leaf → key alg → go-cose
// Verify (payload, alg match, signature) → content type → protected headers → chain → shared.
#include <ferry/verify/envelope.hpp>

#include <ferry/error.hpp>
#include <ferry/verify/cbor.hpp>
#include <ferry/verify/x509.hpp>

#include <algorithm>
#include <cmath>
#include <variant>

namespace ferry::verify {

namespace {

using cbor::Item;
using cbor::Type;


constexpr std::int64_t k_label_alg = 1;
constexpr std::int64_t k_label_crit = 2;
constexpr std::int64_t k_label_content_type = 3;
constexpr std::int64_t k_label_kid = 4;
constexpr std::int64_t k_label_iv = 5;
constexpr std::int64_t k_label_partial_iv = 6;
constexpr std::int64_t k_label_x5chain = 33;

/// A header label: int or text (RFC 9052 §1.4).
using Label = std::variant<std::int64_t, std::string>;

std::optional<Label> label_of(const Item& k)
{
  if (k.type == Type::text) return Label(k.content);
  if (auto v = k.as_int()) return Label(*v);
  return std::nullopt;
}

std::string label_text(const Label& l)
{
  if (const auto* s = std::get_if<std::string>(&l)) return *s;
  return std::to_string(std::get<std::int64_t>(l));
}

const Item* find_label(const Item& map, const Label& l)
{
  if (const auto* s = std::get_if<std::string>(&l)) return map.find(std::string_view(*s));
  return map.find(std::get<std::int64_t>(l));
}

std::string alg_name(std::int64_t alg)
{
  switch (alg) {
  case -37: return "PS256";
  case -38: return "PS384";
  case -39: return "PS512";
  case -7: return "ES256";
  case -35: return "ES384";
  case -36: return "ES512";
  default: return "";
  }
}

std::string go_cose_alg_string(std::int64_t alg)
{
  std::string n = alg_name(alg);
  return n.empty() ? "unknown algorithm value " + std::to_string(alg) : n;
}

/// go-cose validateHeaderParameters (the generic parameters notation's envelopes can carry).
void validate_header_map(const Item& map, bool is_protected)
{
  const std::string where = is_protected ? "protected header: " : "unprotected header: ";
  for (const auto& [k, v] : map.entries) {
    auto label = label_of(k);
    if (!label) throw IntegrityError("cbor: " + where + "header label: require int / tstr type");
    const auto* n = std::get_if<std::int64_t>(&*label);
    if (!n) continue;
    switch (*n) {
    case k_label_alg:
      if (!v.is_int() && v.type != Type::text) throw IntegrityError("cbor: " + where + "header parameter: alg: require int / tstr type");
      break;
    case k_label_crit: {
      if (!is_protected) throw IntegrityError("cbor: " + where + "header parameter: crit: not allowed");
      if (v.type != Type::array) throw IntegrityError("cbor: " + where + "header parameter: crit: invalid crit header");
      if (v.items.empty()) throw IntegrityError("cbor: " + where + "header parameter: crit: empty crit header");
      for (const auto& c : v.items) {
        auto cl = label_of(c);
        if (!cl) throw IntegrityError("cbor: " + where + "header parameter: crit: require int / tstr type");
        if (!find_label(map, *cl))
          throw IntegrityError("cbor: " + where + "header parameter: crit: missing critical header: " + label_text(*cl));
      }
      break;
    }
    case k_label_content_type:
      if (v.type == Type::text) {
        const std::string& t = v.content;
        if (t.empty()) throw IntegrityError("cbor: " + where + "header parameter: content type: require non-empty string");
        if (t.front() == ' ' || t.back() == ' ')
          throw IntegrityError("cbor: " + where + "header parameter: content type: require no leading/trailing whitespace");
        if (std::count(t.begin(), t.end(), '/') != 1)
          throw IntegrityError("cbor: " + where + "header parameter: content type: require text of form type/subtype");
      } else if (v.type != Type::unsigned_int) {
        throw IntegrityError("cbor: " + where + "header parameter: content type: require tstr / uint type");
      }
      break;
    case k_label_kid:
      if (v.type != Type::bytes) throw IntegrityError("cbor: " + where + "header parameter: kid: require bstr type");
      break;
    case k_label_iv:
    case k_label_partial_iv:
      if (v.type != Type::bytes) throw IntegrityError("cbor: " + where + "header parameter: IV: require bstr type");
      if (map.find(*n == k_label_iv ? k_label_partial_iv : k_label_iv))
        throw IntegrityError("cbor: " + where + "header parameter: IV and PartialIV: parameters must not both be present");
      break;
    default: break;
    }
  }
}

struct Message {
  std::string protected_bytes;  ///< the protected bstr's content, as received
  Item protected_map;           ///< decoded (empty map when the bstr is empty)
  Item unprotected;
  std::optional<std::string> payload;
  std::string signature;
};

/// go-cose Sign1Message.UnmarshalCBOR.
Message decode_message(std::string_view data)
{
  if (data.size() < 2 || static_cast<unsigned char>(data[0]) != 0xd2 || static_cast<unsigned char>(data[1]) != 0x84)
    throw IntegrityError("cbor: invalid COSE_Sign1_Tagged object");
  Item arr;
  try {
    arr = cbor::decode(data.substr(1));
  } catch (const Error& e) {
    throw IntegrityError(e.what());
  }
  // Tags are forbidden in the message structure (decModeWithTagsForbidden); the
  // protected bstr's content is decoded separately.
  for (const auto& i : arr.items)
    if (cbor::contains_tag(i)) throw IntegrityError("cbor: CBOR tag isn't allowed");
  const Item& prot = arr.items[0];
  const Item& unprot = arr.items[1];
  const Item& payload = arr.items[2];
  const Item& sig = arr.items[3];
  if (prot.type != Type::bytes) throw IntegrityError("cbor: invalid protected header: cbor: require bstr type");
  if (sig.type != Type::bytes) throw IntegrityError("cbor: require bstr type");
  if (payload.type != Type::bytes && !payload.is_null()) throw IntegrityError("cbor: require bstr type");
  if (sig.content.empty()) throw IntegrityError("empty signature");

  Message m;
  m.protected_bytes = prot.content;
  m.signature = sig.content;
  if (payload.type == Type::bytes) m.payload = payload.content;
  if (prot.content.empty()) {
    m.protected_map.type = Type::map;
  } else {
    if ((static_cast<unsigned char>(prot.content[0]) >> 5) != 5)
      throw IntegrityError("cbor: invalid protected header: cbor: protected header: require map type");
    try {
      m.protected_map = cbor::decode(m.protected_bytes);
    } catch (const Error& e) {
      throw IntegrityError(std::string("cbor: invalid protected header: ") + e.what());
    }
    validate_header_map(m.protected_map, true);
  }
  if (unprot.type != Type::map) throw IntegrityError("cbor: invalid unprotected header: cbor: unprotected header: require map type");
  m.unprotected = unprot;
  validate_header_map(m.unprotected, false);
  return m;
}

/// Sig_structure for COSE_Sign1 (RFC 9052 §4.4): ["Signature1", protected, h'', payload],
/// with the protected bstr's content exactly as received (go-cose keeps RawProtected).
std::string to_be_signed(const Message& m)
{
  return cbor::encode_array({cbor::encode_text("Signature1"), cbor::encode_bytes(m.protected_bytes),
                             cbor::encode_bytes(""), cbor::encode_bytes(*m.payload)});
}

/// notation-core-go parseTime: only a tag-1 (epoch) date/time is accepted.
TimePoint parse_time(const Item& protected_map, std::string_view label)
{
  const Item* v = protected_map.find(label);
  if (!v) throw std::runtime_error("protected header \"" + std::string(label) + "\" is missing");
  if (v->type != Type::tag || (v->arg != 0 && v->arg != 1)) throw std::runtime_error("invalid timeValue type");
  if (v->arg != 1) throw std::runtime_error("only Tag `1` Datetime CBOR object is supported");
  const Item& t = v->items[0];
  if (auto i = t.as_int()) return TimePoint(std::chrono::seconds(*i));
  if (t.type == Type::floating && std::isfinite(t.float_value) && std::fabs(t.float_value) < 1e17)
    return TimePoint(std::chrono::seconds(static_cast<std::int64_t>(std::floor(t.float_value))));
  throw std::runtime_error("invalid timeValue type");
}

} // namespace

SignerInfo verify_cose(std::string_view data)
{
  Message m;
  try {
    m = decode_message(data);
  } catch (const IntegrityError& e) {
    throw IntegrityError(e.what(), IntegrityError::Stage::parse);
  }

  // notation-core-go envelope.Verify: the leaf of the unprotected x5chain. A bare bstr
  // (allowed by RFC 9360) is not an array and fails here, as in notation.
  const Item* x5chain = m.unprotected.find(k_label_x5chain);
  if (!x5chain || x5chain->type != Type::array || x5chain->items.empty())
    throw IntegrityError("certificate chain is not present");
  if (x5chain->items[0].type != Type::bytes) throw IntegrityError("COSE envelope malformed leaf certificate");
  X509Ptr leaf;
  try {
    leaf = parse_der_certificate(x5chain->items[0].content);
  } catch (const Error&) {
    throw IntegrityError("malformed leaf certificate");
  }
  std::string err;
  auto spec = key_spec(leaf.get(), &err);
  if (!spec) throw IntegrityError(err);

  // go-cose Sign1Message.Verify.
  auto integrity = [](const std::string& why) { return IntegrityError("signature is invalid. Error: " + why); };
  if (!m.payload) throw integrity("missing payload");
  const Item* alg_item = m.protected_map.find(k_label_alg);
  if (!alg_item) throw integrity("algorithm not found");
  if (alg_item->type == Type::text) throw integrity("Algorithm(\"" + alg_item->content + "\")");
  auto alg_value = alg_item->as_int();
  if (!alg_value) throw integrity("invalid algorithm");
  if (alg_name(*alg_value) != spec->alg)
    throw integrity("algorithm mismatch: verifier " + spec->alg + ": header " + go_cose_alg_string(*alg_value));
  if (std::string e = detail::verify_signature(X509_get0_pubkey(leaf.get()), spec->alg, to_be_signed(m), m.signature, false);
      !e.empty())
    throw integrity("verification error");

  // payload(): content type.
  const Item* cty = m.protected_map.find(k_label_content_type);
  if (!cty) throw IntegrityError("missing content type");
  if (cty->type != Type::text) throw IntegrityError("content type should be of 'tstr' type");

  SignerInfo info;
  info.envelope_media_type = std::string(k_media_type_cose);
  info.payload = *m.payload;
  info.signature = m.signature;

  // signerInfo() → parseProtectedHeaders → validateCritHeaders.
  const Item& prot = m.protected_map;
  std::vector<Label> crit;
  if (const Item* c = prot.find(k_label_crit))
    for (const auto& l : c->items) crit.push_back(*label_of(l));
  const Item* scheme_item = prot.find(k_signing_scheme);
  if (!scheme_item || scheme_item->type != Type::text) throw IntegrityError("invalid signingScheme");
  const std::string& scheme = scheme_item->content;
  std::vector<Label> must = {Label(std::string(k_signing_scheme))};
  if (scheme == "notary.x509.signingAuthority") must.emplace_back(std::string(k_authentic_signing_time));
  if (prot.find(k_expiry)) must.emplace_back(std::string(k_expiry));
  for (const auto& l : crit) must.erase(std::remove(must.begin(), must.end(), l), must.end());
  if (!must.empty()) {
    std::string keys;
    for (const auto& k : must) keys += (keys.empty() ? "" : " ") + label_text(k);
    throw IntegrityError("these required headers are not marked as critical: [" + keys + "]");
  }
  const std::string alg = alg_name(*alg_value);
  if (alg.empty()) throw IntegrityError("signature algorithm not supported: " + std::to_string(*alg_value));
  info.alg = alg;
  if (scheme == "notary.x509") info.scheme = SigningScheme::x509;
  else if (scheme == "notary.x509.signingAuthority") info.scheme = SigningScheme::x509_signing_authority;
  else throw IntegrityError("unsupported signingScheme: " + scheme);
  try {
    TimePoint t = parse_time(prot, info.scheme == SigningScheme::x509 ? k_signing_time : k_authentic_signing_time);
    if (info.scheme == SigningScheme::x509) info.signing_time = t;
    else info.authentic_signing_time = t;
  } catch (const std::runtime_error& e) {
    throw IntegrityError(std::string("invalid signingTime: ") + e.what());
  }
  if (prot.find(k_expiry)) {
    try {
      info.expiry = parse_time(prot, k_expiry);
    } catch (const std::runtime_error& e) {
      throw IntegrityError(std::string("invalid expiry: ") + e.what());
    }
  }
  // Extended attributes: every protected label that is not a system header.
  static const std::vector<Label> system = {
      Label(k_label_alg),       Label(k_label_crit), Label(k_label_content_type),
      Label(std::string(k_expiry)), Label(std::string(k_signing_scheme)), Label(std::string(k_signing_time)),
      Label(std::string(k_authentic_signing_time))};
  for (const auto& [k, v] : prot.entries) {
    Label l = *label_of(k);
    if (std::find(system.begin(), system.end(), l) != system.end()) continue;
    bool critical = std::find(crit.begin(), crit.end(), l) != crit.end();
    if (l == Label(std::string(k_verification_plugin))) {
      if (v.type == Type::text) info.verification_plugin = v.content;
    } else if (l == Label(std::string(k_verification_plugin_min_version))) {
      if (v.type == Type::text) info.verification_plugin_min_version = v.content;
    } else if (critical) {
      info.unknown_critical.push_back(label_text(l));
    }
  }

  // Unprotected headers.
  for (const auto& c : x5chain->items) {
    if (c.type != Type::bytes) throw IntegrityError("certificate chain is not present");
    try {
      info.chain.push_back(parse_der_certificate(c.content));
    } catch (const Error& e) {
      throw IntegrityError(std::string("x509: ") + e.what());
    }
  }
  if (const Item* a = m.unprotected.find(k_signing_agent); a && a->type == Type::text) info.signing_agent = a->content;
  if (const Item* t = m.unprotected.find(k_timestamp_signature); t && t->type == Type::bytes)
    info.timestamp_token = t->content;

  detail::validate_signer_info(info, cty->content);
  return info;
}

} // namespace ferry::verify

// Notary Project signature envelopes and manifests, made the way notation makes them.
// Reference: ../shared/notation/SPEC.md §1 (manifest), §2 (JWS), §3 (COSE), §4 (algorithms).
#include <ferry/sign.hpp>

#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/util/base64.hpp>
#include <ferry/util/reader.hpp>
#include <ferry/verify/cbor.hpp>
#include <ferry/verify/envelope.hpp>
#include <ferry/verify/x509.hpp>

#include <nlohmann/json.hpp>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cmath>

namespace ferry::sign {

namespace {

using verify::openssl_error;
namespace cbor = verify::cbor;
using verify::k_expiry;
using verify::k_signing_agent;
using verify::k_signing_scheme;
using verify::k_signing_time;
using verify::k_timestamp_signature;

struct EcdsaSigFree {
  void operator()(ECDSA_SIG* p) const { ECDSA_SIG_free(p); }
};
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, EcdsaSigFree>;

constexpr std::string_view k_payload_type = "application/vnd.cncf.notary.payload.v1+json";

std::string base64url(std::string_view data)
{
  std::string s = base64_encode(data);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    else if (c == '/') c = '_';
  }
  return s;
}

// Go's encoding/json escapes <, > and & inside strings (HTMLEscape); notation's JSON
// carries them so. Outside strings these characters cannot occur in JSON.
std::string go_json(const std::string& dumped)
{
  std::string out;
  out.reserve(dumped.size());
  for (char c : dumped) {
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else out += c;
  }
  return out;
}

const EVP_MD* md_for(std::string_view alg)
{
  auto bits = alg.substr(2);
  if (bits == "256") return EVP_sha256();
  if (bits == "384") return EVP_sha384();
  if (bits == "512") return EVP_sha512();
  throw Error(Errc::invalid_argument, "unsupported signature algorithm " + std::string(alg));
}

std::int64_t cose_alg(std::string_view alg)
{
  if (alg == "PS256") return -37;
  if (alg == "PS384") return -38;
  if (alg == "PS512") return -39;
  if (alg == "ES256") return -7;
  if (alg == "ES384") return -35;
  if (alg == "ES512") return -36;
  throw Error(Errc::invalid_argument, "unsupported signature algorithm " + std::string(alg));
}

std::int64_t epoch(verify::TimePoint t) { return t.time_since_epoch().count(); }

int no_passphrase(char*, int, int, void*) { return -1; }

} // namespace

EnvelopeFormat parse_envelope_format(std::string_view text)
{
  if (text == "jws") return EnvelopeFormat::jws;
  if (text == "cose") return EnvelopeFormat::cose;
  throw Error(Errc::invalid_argument, "unknown envelope format \"" + std::string(text) + "\" (expected jws or cose)");
}

std::string_view envelope_media_type(EnvelopeFormat format)
{
  return format == EnvelopeFormat::jws ? verify::k_media_type_jws : verify::k_media_type_cose;
}

SigningIdentity load_identity(std::string_view key_pem, std::string_view chain_pem, const std::string& key_source,
                              const std::string& chain_source)
{
  SigningIdentity id;
  {
    verify::BioPtr bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
    if (!bio) throw Error(Errc::internal, key_source + ": " + openssl_error());
    id.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
    if (!id.key)
      throw Error(Errc::invalid_manifest,
                  key_source + ": not a PEM private key (encrypted keys are not supported): " + openssl_error());
  }
  try {
    id.chain = verify::parse_certificates(chain_pem, chain_source);
  } catch (const Error& e) {
    throw Error(Errc::invalid_manifest, e.what());
  }
  if (id.chain.empty()) throw Error(Errc::invalid_manifest, chain_source + ": no certificate found");
  X509* leaf = id.chain.front().get();
  if (EVP_PKEY_eq(X509_get0_pubkey(leaf), id.key.get()) != 1) {
    ERR_clear_error();
    throw Error(Errc::invalid_manifest, key_source + ": the private key does not match the leaf certificate (" +
                                            verify::subject_for_display(leaf) + ") of " + chain_source);
  }
  std::string why;
  auto spec = verify::key_spec(leaf, &why);
  if (!spec) throw Error(Errc::unsupported, key_source + ": " + why);
  id.alg = spec->alg;
  id.hash_bits = spec->hash_bits;
  // notation-core-go validates the chain when it signs (base envelope validateSignRequest).
  if (std::string bad = verify::validate_code_signing_chain(id.chain); !bad.empty())
    throw Error(Errc::invalid_manifest, chain_source + ": certificate chain is not valid for Notary Project signing: " + bad +
                                            " (the file must hold the whole chain, leaf first, ending with the root)");
  return id;
}

SigningIdentity load_identity_files(const std::filesystem::path& key_file, const std::filesystem::path& chain_file)
{
  auto read = [](const std::filesystem::path& p) {
    try {
      FileReader r(p);
      return read_all(r, 4 << 20, p.string());
    } catch (...) {
      rethrow_with_context(p.string());
    }
  };
  std::string key = read(key_file);
  std::string chain = read(chain_file);
  SigningIdentity id = load_identity(key, chain, key_file.string(), chain_file.string());
  OPENSSL_cleanse(key.data(), key.size());
  return id;
}

std::string sign_raw(EVP_PKEY* key, std::string_view alg, std::string_view data)
{
  const EVP_MD* md = md_for(alg);
  int base = EVP_PKEY_get_base_id(key);
  bool rsa = alg.substr(0, 2) == "PS";
  if ((rsa && base != EVP_PKEY_RSA) || (!rsa && base != EVP_PKEY_EC))
    throw Error(Errc::invalid_argument, "signature algorithm " + std::string(alg) + " does not fit the key");
  verify::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key) != 1)
    throw Error(Errc::internal, "sign: " + openssl_error());
  if (rsa) {
    // RSASSA-PSS, MGF1 with the same hash, salt length = hash length (SPEC §2, §3; RFC 8230).
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1)
      throw Error(Errc::internal, "sign: " + openssl_error());
  }
  auto in = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &n, in, data.size()) != 1) throw Error(Errc::internal, "sign: " + openssl_error());
  std::string sig(n, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, in, data.size()) != 1)
    throw Error(Errc::internal, "sign: " + openssl_error());
  sig.resize(n);
  if (rsa) return sig;
  // DER ECDSA-Sig-Value → fixed-width r||s (JWS RFC 7518 §3.4, COSE RFC 9053 §2.1).
  auto p = reinterpret_cast<const unsigned char*>(sig.data());
  EcdsaSigPtr es(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size())));
  if (!es) throw Error(Errc::internal, "sign: " + openssl_error());
  int width = (EVP_PKEY_get_bits(key) + 7) / 8;
  std::string raw(static_cast<std::size_t>(2 * width), '\0');
  auto out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(ECDSA_SIG_get0_r(es.get()), out, width) != width ||
      BN_bn2binpad(ECDSA_SIG_get0_s(es.get()), out + width, width) != width)
    throw Error(Errc::internal, "sign: ECDSA signature encoding");
  return raw;
}

std::string payload_json(const Descriptor& target, EnvelopeFormat format)
{
  if (format == EnvelopeFormat::jws) {
    // golang-jwt re-marshals the claims from a map: keys sorted.
    nlohmann::json t = {{"digest", target.digest.str()}, {"mediaType", target.media_type}, {"size", target.size}};
    return go_json(nlohmann::json{{"targetArtifact", t}}.dump());
  }
  nlohmann::ordered_json t;
  t["mediaType"] = target.media_type;
  t["digest"] = target.digest.str();
  t["size"] = target.size;
  nlohmann::ordered_json p;
  p["targetArtifact"] = t;
  return go_json(p.dump());
}

Envelope make_jws(const SigningIdentity& id, const EnvelopeRequest& request)
{
  // Protected header: a Go map in notation-core-go → keys sorted (nlohmann's default).
  nlohmann::json prot = {{"alg", id.alg},
                         {"cty", k_payload_type},
                         {std::string(k_signing_scheme), "notary.x509"},
                         {std::string(k_signing_time), verify::format_rfc3339(request.signing_time)}};
  nlohmann::json crit = {k_signing_scheme};
  if (request.expiry) {
    prot[std::string(k_expiry)] = verify::format_rfc3339(*request.expiry);
    crit.push_back(k_expiry);
  }
  prot["crit"] = crit;
  std::string prot_b64 = base64url(go_json(prot.dump()));
  std::string payload_b64 = base64url(payload_json(request.target, EnvelopeFormat::jws));
  std::string sig = sign_raw(id.key.get(), id.alg, prot_b64 + "." + payload_b64);

  // Unprotected header in notation-core-go's struct order (jws/types.go unprotectedHeader).
  nlohmann::ordered_json header;
  if (request.timestamper) header[std::string(k_timestamp_signature)] = base64_encode(request.timestamper(sig));
  nlohmann::ordered_json x5c = nlohmann::ordered_json::array();
  for (const auto& c : id.chain) x5c.push_back(base64_encode(verify::der_bytes(c.get())));
  header["x5c"] = x5c;
  if (!request.signing_agent.empty()) header[std::string(k_signing_agent)] = request.signing_agent;

  nlohmann::ordered_json env;
  env["payload"] = payload_b64;
  env["protected"] = prot_b64;
  env["header"] = header;
  env["signature"] = base64url(sig);
  return {std::string(verify::k_media_type_jws), go_json(env.dump())};
}

namespace {

// go-cose encodes headers with fxamacker/cbor's Core Deterministic (length-first) key order:
// shorter encoded keys first, then bytewise (RFC 7049 §3.9 canonical CBOR).
std::string canonical_map(std::vector<std::pair<std::string, std::string>> entries)
{
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    if (a.first.size() != b.first.size()) return a.first.size() < b.first.size();
    return a.first < b.first;
  });
  return cbor::encode_map(entries);
}

} // namespace

Envelope make_cose(const SigningIdentity& id, const EnvelopeRequest& request)
{
  std::vector<std::string> crit = {cbor::encode_text(k_signing_scheme)};
  std::vector<std::pair<std::string, std::string>> prot = {
      {cbor::encode_int(1), cbor::encode_int(cose_alg(id.alg))},
      {cbor::encode_int(3), cbor::encode_text(k_payload_type)},
      {cbor::encode_text(k_signing_scheme), cbor::encode_text("notary.x509")},
      {cbor::encode_text(k_signing_time), cbor::encode_tag(1, cbor::encode_int(epoch(request.signing_time)))},
  };
  if (request.expiry) {
    prot.emplace_back(cbor::encode_text(k_expiry), cbor::encode_tag(1, cbor::encode_int(epoch(*request.expiry))));
    crit.push_back(cbor::encode_text(k_expiry));
  }
  prot.emplace_back(cbor::encode_int(2), cbor::encode_array(crit));
  std::string protected_bytes = canonical_map(std::move(prot));
  std::string payload = payload_json(request.target, EnvelopeFormat::cose);
  std::string tbs = cbor::encode_array(
      {cbor::encode_text("Signature1"), cbor::encode_bytes(protected_bytes), cbor::encode_bytes(""), cbor::encode_bytes(payload)});
  std::string sig = sign_raw(id.key.get(), id.alg, tbs);

  std::vector<std::string> x5chain;
  for (const auto& c : id.chain) x5chain.push_back(cbor::encode_bytes(verify::der_bytes(c.get())));
  std::vector<std::pair<std::string, std::string>> unprot = {{cbor::encode_int(33), cbor::encode_array(x5chain)}};
  if (!request.signing_agent.empty())
    unprot.emplace_back(cbor::encode_text(k_signing_agent), cbor::encode_text(request.signing_agent));
  if (request.timestamper)
    unprot.emplace_back(cbor::encode_text(k_timestamp_signature), cbor::encode_bytes(request.timestamper(sig)));

  std::string msg = cbor::encode_array(
      {cbor::encode_bytes(protected_bytes), canonical_map(std::move(unprot)), cbor::encode_bytes(payload), cbor::encode_bytes(sig)});
  return {std::string(verify::k_media_type_cose), cbor::encode_tag(18, msg)};
}

Envelope make_envelope(EnvelopeFormat format, const SigningIdentity& id, const EnvelopeRequest& request)
{
  return format == EnvelopeFormat::jws ? make_jws(id, request) : make_cose(id, request);
}

SignatureManifest make_signature_manifest(const Descriptor& subject, const Envelope& envelope, const verify::Chain& chain,
                                          verify::TimePoint signing_time)
{
  SignatureManifest out;
  out.envelope.media_type = envelope.media_type;
  out.envelope.digest = Digest::of(envelope.bytes);
  out.envelope.size = envelope.bytes.size();

  nlohmann::json thumbprints = nlohmann::json::array();
  for (const auto& c : chain) thumbprints.push_back(verify::sha256_thumbprint(c.get()));
  // Annotations: a Go map → sorted keys.
  std::map<std::string, std::string> annotations = {
      {std::string(k_thumbprint_annotation), thumbprints.dump()},
      {std::string(k_created_annotation), verify::format_rfc3339(signing_time)},
  };

  // ocispec.Manifest field order; the config is ocispec.DescriptorEmptyJSON (with data).
  auto basic = [](const Descriptor& d) {
    nlohmann::ordered_json j;
    j["mediaType"] = d.media_type;
    j["digest"] = d.digest.str();
    j["size"] = d.size;
    return j;
  };
  nlohmann::ordered_json config;
  config["mediaType"] = media_type::k_oci_empty;
  config["digest"] = k_empty_json_digest;
  config["size"] = k_empty_json.size();
  config["data"] = base64_encode(k_empty_json);
  nlohmann::ordered_json m;
  m["schemaVersion"] = 2;
  m["mediaType"] = media_type::k_oci_manifest;
  m["artifactType"] = media_type::k_notary_signature;
  m["config"] = config;
  m["layers"] = nlohmann::ordered_json::array({basic(out.envelope)});
  m["subject"] = basic(subject);
  nlohmann::ordered_json ann = nlohmann::ordered_json::object();
  for (const auto& [k, v] : annotations) ann[k] = v;
  m["annotations"] = ann;
  out.bytes = go_json(m.dump());

  out.desc.media_type = media_type::k_oci_manifest;
  out.desc.digest = Digest::of(out.bytes);
  out.desc.size = out.bytes.size();
  out.desc.artifact_type = media_type::k_notary_signature;
  out.desc.annotations = annotations;
  return out;
}

std::chrono::seconds parse_duration(std::string_view text)
{
  // Go time.ParseDuration (a sequence of decimal numbers with units) plus "d" for days.
  auto bad = [&](const std::string& why) {
    return Error(Errc::invalid_argument, "invalid duration \"" + std::string(text) + "\": " + why);
  };
  if (text.empty()) throw bad("empty");
  long double total = 0;
  std::string_view s = text;
  if (s.front() == '+') s.remove_prefix(1);
  if (!s.empty() && s.front() == '-') throw bad("must be positive");
  if (s.empty()) throw bad("no number");
  while (!s.empty()) {
    std::size_t i = 0;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
    std::string number(s.substr(0, i));
    if (number.empty() || number == "." || std::count(number.begin(), number.end(), '.') > 1) throw bad("expected a number");
    s.remove_prefix(i);
    std::size_t j = 0;
    while (j < s.size() && !((s[j] >= '0' && s[j] <= '9') || s[j] == '.')) ++j;
    std::string unit(s.substr(0, j));
    s.remove_prefix(j);
    long double scale = 0;
    if (unit == "ns") scale = 1e-9L;
    else if (unit == "us" || unit == "\xc2\xb5s" || unit == "\xce\xbcs") scale = 1e-6L;
    else if (unit == "ms") scale = 1e-3L;
    else if (unit == "s") scale = 1;
    else if (unit == "m") scale = 60;
    else if (unit == "h") scale = 3600;
    else if (unit == "d") scale = 86400;
    else if (unit.empty()) throw bad("missing unit (use s, m, h or d)");
    else throw bad("unknown unit \"" + unit + "\"");
    total += std::stold(number) * scale;
    if (total > 1e12L) throw bad("too large");
  }
  auto secs = static_cast<std::int64_t>(std::floor(total));
  if (secs < 1) throw bad("must be at least one second");
  return std::chrono::seconds(secs);
}

} // namespace ferry::sign

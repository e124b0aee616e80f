// cosign / Sigstore verification of one image (include/ferry/verify/cosign.hpp): the
// sigstore-vectors corpus when FERRY_SIGSTORE_VECTORS names it, and every check with keys,
// certificates, bundles and layers made at test time (fixed times around test_clock::k_now).
#include <ferry/error.hpp>
#include <ferry/util/base64.hpp>
#include <ferry/verify/cosign.hpp>

#include "test_pki.hpp"

#include <doctest/doctest.h>
#include <openssl/pem.h>

#include <cstdlib>
#include <filesystem>

using namespace ferry;
using namespace ferry::verify;
using namespace ferry::verify::cosign;
using ferry::test_pki::days;
using ferry::test_pki::k_now;
using nlohmann::json;

namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) { return test_pki::read_file(p); }

std::string sha256(std::string_view d)
{
  unsigned char md[32];
  unsigned int n = 0;
  EVP_Digest(d.data(), d.size(), md, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), n);
}

std::string hex(std::string_view raw)
{
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string b64(std::string_view d) { return base64_encode(d); }

/// ECDSA / RSA PKCS#1 v1.5 with SHA-256, DER signature (as cosign signs).
std::string sign(EVP_PKEY* key, std::string_view data)
{
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) == 1);
  size_t n = 0;
  auto in = reinterpret_cast<const unsigned char*>(data.data());
  REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &n, in, data.size()) == 1);
  std::string sig(n, '\0');
  REQUIRE(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, in, data.size()) == 1);
  sig.resize(n);
  return sig;
}

std::string spki(EVP_PKEY* key)
{
  unsigned char* p = nullptr;
  int n = i2d_PUBKEY(key, &p);
  std::string out(reinterpret_cast<char*>(p), static_cast<std::size_t>(n));
  OPENSSL_free(p);
  return out;
}

std::string bio_string(BIO* bio)
{
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string pem_key(EVP_PKEY* key)
{
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key);
  return bio_string(bio.get());
}

std::string pem_cert(X509* cert)
{
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return bio_string(bio.get());
}

std::string flip(std::string s)
{
  s[s.size() / 2] ^= 1;
  return s;
}

void add_raw_ext(X509* cert, const char* oid, std::string_view value, bool critical = false)
{
  ASN1_OBJECT* obj = OBJ_txt2obj(oid, 1);
  ASN1_OCTET_STRING* os = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(os, reinterpret_cast<const unsigned char*>(value.data()), static_cast<int>(value.size()));
  X509_EXTENSION* ext = X509_EXTENSION_create_by_OBJ(nullptr, obj, critical ? 1 : 0, os);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  ASN1_OCTET_STRING_free(os);
  ASN1_OBJECT_free(obj);
}

std::string der_utf8(std::string_view s)
{
  std::string out = "\x0c";
  out += static_cast<char>(s.size());  // short form: the tests' issuers are < 128 bytes
  out += s;
  return out;
}

constexpr const char* k_san = "signer@example.test";
constexpr const char* k_iss = "https://oidc.example.test";

/// A Fulcio-like world: root + intermediate (EC P-256), a Rekor-like log key, two cosign
/// keys, the trusted root, and one image (manifest bytes and descriptor).
struct World {
  TimePoint T = k_now - days(2);  // signing time
  EvpPkeyPtr root_key = test_pki::make_key("ec", 256);
  EvpPkeyPtr int_key = test_pki::make_key("ec", 256);
  EvpPkeyPtr rekor_key = test_pki::make_key("ec", 256);
  EvpPkeyPtr cosign_key = test_pki::make_key("ec", 256);
  EvpPkeyPtr other_key = test_pki::make_key("ec", 256);
  X509Ptr root, inter;
  std::string log_id;
  std::shared_ptr<const sigstore::TrustedRoot> trusted;
  std::string manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})";
  Descriptor image;
  std::int64_t next_index = 100;

  World()
  {
    auto rs = test_pki::ca_spec("CN=test fulcio root,O=test", root_key.get());
    rs.not_before = T - days(365);
    rs.not_after = T + days(3650);
    root = test_pki::make_cert(rs);
    auto is = test_pki::ca_spec("CN=test fulcio intermediate,O=test", int_key.get(), root.get(), root_key.get());
    is.serial = 2;
    is.not_before = rs.not_before;
    is.not_after = rs.not_after;
    is.ekus = {"codeSigning"};
    inter = test_pki::make_cert(is);
    log_id = sha256(spki(rekor_key.get()));
    json tr = {
        {"mediaType", "application/vnd.dev.sigstore.trustedroot+json;version=0.1"},
        {"tlogs",
         {{{"baseUrl", "https://rekor.example.test"},
           {"hashAlgorithm", "SHA2_256"},
           {"publicKey",
            {{"rawBytes", b64(spki(rekor_key.get()))},
             {"keyDetails", "PKIX_ECDSA_P256_SHA_256"},
             {"validFor", {{"start", format_rfc3339(T - days(365))}}}}},
           {"logId", {{"keyId", b64(log_id)}}}}}},
        {"certificateAuthorities",
         {{{"subject", {{"organization", "test"}, {"commonName", "test fulcio"}}},
           {"uri", "https://fulcio.example.test"},
           {"certChain", {{"certificates", {{{"rawBytes", b64(der_bytes(inter.get()))}}, {{"rawBytes", b64(der_bytes(root.get()))}}}}}},
           {"validFor", {{"start", format_rfc3339(T - days(365))}}}}}},
        {"ctlogs", json::array()},
        {"timestampAuthorities", json::array()},
    };
    trusted = std::make_shared<sigstore::TrustedRoot>(sigstore::TrustedRoot::parse(tr.dump(), "test trusted root"));
    image.media_type = "application/vnd.oci.image.manifest.v1+json";
    image.digest = Digest::of(manifest);
    image.size = manifest.size();
  }

  struct Leaf {
    EvpPkeyPtr key;
    X509Ptr cert;
  };
  /// A Fulcio-style leaf valid [T, T + 10 min]: SAN (email or URI), issuer extensions.
  Leaf leaf(const std::string& san = k_san, const std::string& issuer = k_iss, bool v2 = true, bool v1 = true)
  {
    Leaf l;
    l.key = test_pki::make_key("ec", 256);
    auto ls = test_pki::leaf_spec(l.key.get(), inter.get(), int_key.get());
    ls.subject = "O=sigstore.dev";  // Fulcio leaves name nobody in the subject
    ls.serial = 7;
    ls.not_before = T;
    ls.not_after = T + std::chrono::minutes(10);
    l.cert = test_pki::make_cert(ls);
    std::string name = (san.find("://") != std::string::npos ? "URI:" : "email:") + san;
    test_pki::add_ext(l.cert.get(), inter.get(), NID_subject_alt_name, "critical," + name);
    if (v1) add_raw_ext(l.cert.get(), k_oid_issuer_v1.data(), issuer);
    if (v2) add_raw_ext(l.cert.get(), k_oid_issuer_v2.data(), der_utf8(issuer));
    REQUIRE(X509_sign(l.cert.get(), int_key.get(), EVP_sha256()) > 0);
    return l;
  }

  /// A Rekor v1 entry for `body` (Sigstore bundle JSON): SET and/or a one-leaf inclusion proof.
  json entry(const std::string& body, const std::string& kind, TimePoint integrated, bool set = true, bool proof = true,
             EVP_PKEY* log_key = nullptr)
  {
    EVP_PKEY* k = log_key ? log_key : rekor_key.get();
    std::string id = sha256(spki(k));
    std::int64_t index = next_index++;
    std::int64_t t = integrated.time_since_epoch().count();
    json e = {{"logIndex", std::to_string(index)},
              {"logId", {{"keyId", b64(id)}}},
              {"kindVersion", {{"kind", kind}, {"version", "0.0.1"}}},
              {"integratedTime", std::to_string(t)},
              {"canonicalizedBody", b64(body)}};
    if (set) {
      json payload = {{"body", b64(body)}, {"integratedTime", t}, {"logID", hex(id)}, {"logIndex", index}};
      e["inclusionPromise"] = {{"signedEntryTimestamp", b64(sign(k, payload.dump()))}};
    }
    if (proof) {
      std::string root_hash = sha256(std::string(1, '\0') + body);
      std::string note = "rekor.example.test - 42\n1\n" + b64(root_hash) + "\n";
      std::string sig = id.substr(0, 4) + sign(k, note);
      std::string env = note + "\n\xe2\x80\x94 rekor.example.test " + b64(sig) + "\n";
      e["inclusionProof"] = {{"logIndex", "0"},
                             {"rootHash", b64(root_hash)},
                             {"treeSize", "1"},
                             {"hashes", json::array()},
                             {"checkpoint", {{"envelope", env}}}};
    }
    return e;
  }

  static std::string dsse_body(const std::string& env_json, const std::string& payload, const std::string& sig,
                               const std::string& verifier_pem)
  {
    json b = {{"apiVersion", "0.0.1"},
              {"kind", "dsse"},
              {"spec",
               {{"envelopeHash", {{"algorithm", "sha256"}, {"value", hex(sha256(env_json))}}},
                {"payloadHash", {{"algorithm", "sha256"}, {"value", hex(sha256(payload))}}},
                {"signatures", {{{"signature", b64(sig)}, {"verifier", b64(verifier_pem)}}}}}}};
    return b.dump();
  }
  static std::string hashedrekord_body(const std::string& data_hex, const std::string& sig, const std::string& verifier_pem)
  {
    json b = {{"apiVersion", "0.0.1"},
              {"kind", "hashedrekord"},
              {"spec",
               {{"data", {{"hash", {{"algorithm", "sha256"}, {"value", data_hex}}}}},
                {"signature", {{"content", b64(sig)}, {"publicKey", {{"content", b64(verifier_pem)}}}}}}}};
    return b.dump();
  }

  std::string statement(const std::string& digest_hex, const std::string& type = "https://in-toto.io/Statement/v1") const
  {
    return json{{"_type", type},
                {"subject", {{{"name", "registry.example.test/app"}, {"digest", {{"sha256", digest_hex}}}}}},
                {"predicateType", "https://sigstore.dev/cosign/sign/v1"},
                {"predicate", json::object()}}
        .dump();
  }

  struct BundleOpts {
    EVP_PKEY* key = nullptr;  // keyed when set
    X509* leaf = nullptr;
    EVP_PKEY* leaf_key = nullptr;
    std::optional<std::string> payload;
    bool tlog = true, set = true, proof = true;
    std::optional<TimePoint> integrated;
    std::string media_type = std::string(k_bundle_v03);
    bool tamper_payload = false;
  };

  json dsse_bundle(const BundleOpts& o)
  {
    std::string payload = o.payload.value_or(statement(image.digest.hex()));
    EVP_PKEY* signer = o.key ? o.key : o.leaf_key;
    std::string sig = sign(signer, pae(k_intoto, payload));
    json env = {{"payload", b64(payload)}, {"payloadType", k_intoto}, {"signatures", {{{"sig", b64(sig)}}}}};
    json vm;
    if (o.key) vm["publicKey"] = {{"hint", b64(sha256(spki(o.key)))}};
    else vm["certificate"] = {{"rawBytes", b64(der_bytes(o.leaf))}};
    vm["tlogEntries"] = json::array();
    if (o.tlog) {
      std::string verifier = o.key ? pem_key(o.key) : pem_cert(o.leaf);
      vm["tlogEntries"].push_back(entry(dsse_body(env.dump(), payload, sig, verifier), "dsse",
                                        o.integrated.value_or(T + std::chrono::minutes(1)), o.set, o.proof));
    }
    if (o.tamper_payload) env["payload"] = b64(statement(hex(sha256("another image"))));
    return {{"mediaType", o.media_type}, {"verificationMaterial", vm}, {"dsseEnvelope", env}};
  }

  json message_bundle(X509* leaf_cert, EVP_PKEY* leaf_key)
  {
    std::string sig = sign(leaf_key, manifest);
    json vm = {{"certificate", {{"rawBytes", b64(der_bytes(leaf_cert))}}}};
    vm["tlogEntries"] = {entry(hashedrekord_body(image.digest.hex(), sig, pem_cert(leaf_cert)), "hashedrekord",
                               T + std::chrono::minutes(1))};
    return {{"mediaType", std::string(k_bundle_v03)},
            {"verificationMaterial", vm},
            {"messageSignature",
             {{"messageDigest", {{"algorithm", "SHA2_256"}, {"digest", b64(sha256(manifest))}}}, {"signature", b64(sig)}}}};
  }

  Policy keyless(const std::string& identity = k_san, const std::string& issuer = k_iss) const
  {
    Policy p;
    p.trusted_root = trusted;
    p.identity = identity;
    p.issuer = issuer;
    p.ignore_sct = true;  // SCTs are covered by the vectors
    return p;
  }
  Policy keyed(EVP_PKEY* k) const
  {
    Policy p;
    p.trusted_root = trusted;
    EVP_PKEY_up_ref(k);
    p.keys.push_back(NamedKey{"cosign.pub", std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free)});
    return p;
  }

  std::string simple_payload(const std::string& digest, const std::string& type = "cosign container image signature") const
  {
    return json{{"critical",
                 {{"identity", {{"docker-reference", "registry.example.test/app"}}},
                  {"image", {{"docker-manifest-digest", digest}}},
                  {"type", type}}},
                {"optional", nullptr}}
        .dump();
  }

  /// A `.sig` layer: the signature annotation, and the Rekor bundle annotation when `tlog`.
  Descriptor sig_layer(const std::string& payload, EVP_PKEY* signer, const std::string& verifier_pem, bool tlog = true,
                       X509* cert = nullptr)
  {
    Descriptor d;
    d.media_type = std::string(k_simple_signing);
    d.digest = Digest::of(payload);
    d.size = payload.size();
    std::string sig = sign(signer, payload);
    d.annotations[std::string(k_annotation_signature)] = b64(sig);
    if (cert) {
      d.annotations[std::string(k_annotation_certificate)] = pem_cert(cert);
      d.annotations[std::string(k_annotation_chain)] = pem_cert(inter.get()) + pem_cert(root.get());
    }
    if (tlog) {
      std::string body = hashedrekord_body(hex(sha256(payload)), sig, verifier_pem);
      std::int64_t t = (T + std::chrono::minutes(1)).time_since_epoch().count();
      std::int64_t index = next_index++;
      json p = {{"body", b64(body)}, {"integratedTime", t}, {"logID", hex(log_id)}, {"logIndex", index}};
      json a = {{"SignedEntryTimestamp", b64(sign(rekor_key.get(), p.dump()))}, {"Payload", p}};
      d.annotations[std::string(k_annotation_bundle)] = a.dump();
    }
    return d;
  }
};

std::string check_of(const Verdict& v, const std::string& name)
{
  for (const auto& c : v.checks)
    if (c.name == name) return std::string(check_result_name(c.result)) + (c.reason.empty() ? "" : ": " + c.reason);
  return "(absent)";
}

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

} // namespace

TEST_CASE("cosign: the sigstore-vectors corpus gives every expected verdict")
{
  const char* dir_env = std::getenv("FERRY_SIGSTORE_VECTORS");
  if (!dir_env || !*dir_env) {
    MESSAGE("FERRY_SIGSTORE_VECTORS not set; skipping the sigstore-vectors cases");
    return;
  }
  fs::path dir(dir_env);
  json cases = json::parse(slurp(dir / "cases.json"));
  auto root = std::make_shared<sigstore::TrustedRoot>(
      sigstore::TrustedRoot::parse(slurp(dir / "trust" / "trusted_root.json"), "trusted_root.json"));
  Descriptor image;
  image.digest = Digest::parse(cases["subject"]["digest"].get<std::string>());
  image.media_type = cases["subject"]["mediaType"].get<std::string>();
  std::optional<std::string> manifest;
  if (fs::exists(dir / "subject" / "manifest.json")) manifest = slurp(dir / "subject" / "manifest.json");
  // Never the wall clock: two days after the signing time, as when the corpus was made.
  TimePoint now = std::chrono::floor<std::chrono::seconds>(parse_rfc3339(cases["signingTime"].get<std::string>())) + days(2);
  int matching = 0, total = 0;
  for (const auto& c : cases["cases"]) {
    ++total;
    std::string id = c["id"], artifact = c["artifact"], expect = c["expect"];
    const json& pol = c["policy"];
    Policy policy;
    policy.trusted_root = root;
    if (pol.contains("key")) {
      std::string k = pol["key"];
      policy.keys.push_back(NamedKey{k, sigstore::parse_public_key(slurp(dir / k), k)});
    }
    policy.identity = pol.value("identity", "");
    policy.issuer = pol.value("issuer", "");
    policy.ignore_tlog = pol.contains("requireTlog") && pol["requireTlog"] == false;
    policy.use_signed_timestamps = pol.value("signedTimestamps", false);
    fs::path a = dir / "artifacts" / artifact;
    Verdict v;
    if (fs::exists(a / "bundle.sigstore.json")) {
      v = verify_bundle(slurp(a / "bundle.sigstore.json"), image, manifest ? &*manifest : nullptr, policy, now);
    } else {
      std::string payload = slurp(a / "layer0.payload");
      Descriptor layer;
      layer.digest = Digest::of(payload);
      layer.size = payload.size();
      json annotations = json::parse(slurp(a / "layer0.annotations.json"));
      for (auto& [k, val] : annotations.items()) layer.annotations[k] = val.get<std::string>();
      if (starts_with(artifact, "att-")) v = verify_attestation(layer, payload, image, policy, now);
      else v = verify_simple_signing(layer, payload, image, policy, now);
    }
    bool ok = (expect == "pass") == v.verified;
    if (ok) ++matching;
    if (!ok) FAIL_CHECK(id << " expects " << expect << ", got " << (v.verified ? "pass" : "fail, " + v.reason));
    else MESSAGE(id << ": " << (v.verified ? "pass" : "fail, " + v.reason));
  }
  MESSAGE(matching << "/" << total << " cases match");
  CHECK(total >= 39);
}

TEST_CASE("cosign: pae, media types")
{
  CHECK(pae("http://example.com/HelloWorld", "hello world") == "DSSEv1 29 http://example.com/HelloWorld 11 hello world");
  CHECK(pae("", "") == "DSSEv1 0  0 ");
  CHECK(is_bundle_media_type("application/vnd.dev.sigstore.bundle+json;version=0.1"));
  CHECK(is_bundle_media_type("application/vnd.dev.sigstore.bundle+json;version=0.2"));
  CHECK(is_bundle_media_type("application/vnd.dev.sigstore.bundle+json;version=0.3"));
  CHECK(is_bundle_media_type("application/vnd.dev.sigstore.bundle.v0.3+json"));
  CHECK_FALSE(is_bundle_media_type("application/vnd.dev.sigstore.bundle+json;version=0.4"));
  CHECK_FALSE(is_bundle_media_type("application/vnd.dev.sigstore.bundle.v0.3+json "));
  CHECK_FALSE(is_bundle_media_type(""));
}

TEST_CASE("cosign: certificate SAN and OIDC issuer (v2 first, v1 fallback)")
{
  World w;
  auto both = w.leaf();
  CHECK(certificate_san(both.cert.get()) == k_san);
  CHECK(certificate_issuer(both.cert.get()) == k_iss);
  auto v1 = w.leaf("https://ci.example.test/wf.yml@refs/heads/main", "https://v1.example.test", false, true);
  CHECK(certificate_san(v1.cert.get()) == "https://ci.example.test/wf.yml@refs/heads/main");
  CHECK(certificate_issuer(v1.cert.get()) == "https://v1.example.test");
  auto none = w.leaf(k_san, k_iss, false, false);
  CHECK(certificate_issuer(none.cert.get()).empty());
  CHECK(certificate_san(w.root.get()).empty());
  CHECK(certificate_san(nullptr).empty());
}

TEST_CASE("cosign: keyless DSSE bundle, every check")
{
  World w;
  auto l = w.leaf();
  World::BundleOpts o;
  o.leaf = l.cert.get();
  o.leaf_key = l.key.get();
  std::string good = w.dsse_bundle(o).dump();
  TimePoint now = k_now;

  SUBCASE("passes; the signing time is the integrated time")
  {
    Verdict v = verify_bundle(good, w.image, nullptr, w.keyless(), now);
    INFO(v.reason);
    CHECK(v.verified);
    CHECK(v.format == "sigstore-bundle");
    CHECK(v.detail == "DSSE https://sigstore.dev/cosign/sign/v1");
    CHECK(v.signer == "signer@example.test (issuer https://oidc.example.test)");
    REQUIRE(v.signing_time);
    CHECK(*v.signing_time == w.T + std::chrono::minutes(1));
    CHECK(check_of(v, "tlog").rfind("pass", 0) == 0);
    CHECK(check_of(v, "sct") == "skipped: --insecure-ignore-sct");
    CHECK(v.checks.size() == 8);
  }
  SUBCASE("v0.1 / v0.2 media types")
  {
    o.media_type = "application/vnd.dev.sigstore.bundle+json;version=0.2";
    CHECK(verify_bundle(w.dsse_bundle(o).dump(), w.image, nullptr, w.keyless(), now).verified);
    o.media_type = "application/vnd.dev.sigstore.bundle+json;version=0.1";
    CHECK(verify_bundle(w.dsse_bundle(o).dump(), w.image, nullptr, w.keyless(), now).verified);
  }
  SUBCASE("identity: exact, lookalike, regexp")
  {
    CHECK_FALSE(verify_bundle(good, w.image, nullptr, w.keyless("someone@example.test"), now).verified);
    Verdict v = verify_bundle(good, w.image, nullptr, w.keyless("signer@example"), now);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(v.reason, "identity: "));
    auto look = w.leaf("xsigner@example.test.evil.test");
    World::BundleOpts lo = o;
    lo.leaf = look.cert.get();
    lo.leaf_key = look.key.get();
    CHECK_FALSE(verify_bundle(w.dsse_bundle(lo).dump(), w.image, nullptr, w.keyless(), now).verified);
    Policy re = w.keyless("");
    re.identity_regexp = "^signer@example\\.test$";
    CHECK(verify_bundle(good, w.image, nullptr, re, now).verified);
    re.identity_regexp = "@example\\.test";  // unanchored, as Go's MatchString
    CHECK(verify_bundle(good, w.image, nullptr, re, now).verified);
    re.identity_regexp = "^nobody@";
    CHECK_FALSE(verify_bundle(good, w.image, nullptr, re, now).verified);
    re.identity_regexp = "([unclosed";
    Verdict bad = verify_bundle(good, w.image, nullptr, re, now);
    CHECK_FALSE(bad.verified);
    CHECK(bad.reason.find("does not compile") != std::string::npos);
    Policy none = w.keyless("", "");
    CHECK_FALSE(verify_bundle(good, w.image, nullptr, none, now).verified);
  }
  SUBCASE("issuer: exact, regexp, v1 fallback")
  {
    CHECK_FALSE(verify_bundle(good, w.image, nullptr, w.keyless(k_san, "https://evil.example.test"), now).verified);
    Policy re = w.keyless(k_san, "");
    re.issuer_regexp = "^https://oidc\\.";
    CHECK(verify_bundle(good, w.image, nullptr, re, now).verified);
    auto v1 = w.leaf(k_san, k_iss, false, true);
    World::BundleOpts vo = o;
    vo.leaf = v1.cert.get();
    vo.leaf_key = v1.key.get();
    CHECK(verify_bundle(w.dsse_bundle(vo).dump(), w.image, nullptr, w.keyless(), now).verified);
  }
  SUBCASE("wrong subject, tampered payload")
  {
    World::BundleOpts so = o;
    so.payload = w.statement(hex(sha256("another image")));
    Verdict v = verify_bundle(w.dsse_bundle(so).dump(), w.image, nullptr, w.keyless(), now);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(v.reason, "subject: "));
    CHECK(starts_with(check_of(v, "signature"), "pass"));
    World::BundleOpts to = o;
    to.tamper_payload = true;
    v = verify_bundle(w.dsse_bundle(to).dump(), w.image, nullptr, w.keyless(), now);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(check_of(v, "signature"), "fail"));
    World::BundleOpts t0 = o;
    t0.payload = w.statement(w.image.digest.hex(), "https://example.test/NotAStatement");
    CHECK_FALSE(verify_bundle(w.dsse_bundle(t0).dump(), w.image, nullptr, w.keyless(), now).verified);
    t0.payload = w.statement(w.image.digest.hex(), "https://in-toto.io/Statement/v0.1");
    CHECK(verify_bundle(w.dsse_bundle(t0).dump(), w.image, nullptr, w.keyless(), now).verified);
  }
  SUBCASE("tlog: required, SET, proof-only, untrusted log, another signature's entry")
  {
    World::BundleOpts no = o;
    no.tlog = false;
    Verdict v = verify_bundle(w.dsse_bundle(no).dump(), w.image, nullptr, w.keyless(), now);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(v.reason, "tlog: "));
    Policy ignore = w.keyless();
    ignore.ignore_tlog = true;
    // --insecure-ignore-tlog without timestamps: the certificate must be valid now.
    CHECK_FALSE(verify_bundle(w.dsse_bundle(no).dump(), w.image, nullptr, ignore, now).verified);
    v = verify_bundle(w.dsse_bundle(no).dump(), w.image, nullptr, ignore, w.T + std::chrono::minutes(5));
    INFO(v.reason);
    CHECK(v.verified);
    CHECK(check_of(v, "tlog") == "skipped: --insecure-ignore-tlog");
    CHECK_FALSE(v.signing_time);

    World::BundleOpts proof_only = o;
    proof_only.set = false;
    v = verify_bundle(w.dsse_bundle(proof_only).dump(), w.image, nullptr, w.keyless(), now);
    CHECK_FALSE(v.verified);  // no integrated time from a SET: no signing time
    CHECK(starts_with(v.reason, "certificate: "));
    Policy signed_ts = w.keyless();
    signed_ts.use_signed_timestamps = true;
    v = verify_bundle(w.dsse_bundle(proof_only).dump(), w.image, nullptr, signed_ts, now);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(v.reason, "timestamp: "));

    World::BundleOpts late = o;
    late.integrated = w.T + std::chrono::minutes(30);
    v = verify_bundle(w.dsse_bundle(late).dump(), w.image, nullptr, w.keyless(), now);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(v.reason, "tlog: "));

    json b = w.dsse_bundle(o);
    EvpPkeyPtr rogue = test_pki::make_key("ec", 256);
    json other = b;
    other["verificationMaterial"]["tlogEntries"][0] =
        w.entry(ferry::base64_decode(b["verificationMaterial"]["tlogEntries"][0]["canonicalizedBody"].get<std::string>()),
                "dsse", w.T + std::chrono::minutes(1), true, true, rogue.get());
    v = verify_bundle(other.dump(), w.image, nullptr, w.keyless(), now);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(v.reason, "tlog: no entry from a log of the trusted root"));

    // Another signature's (valid) entry.
    auto l2 = w.leaf();
    World::BundleOpts o2 = o;
    o2.leaf = l2.cert.get();
    o2.leaf_key = l2.key.get();
    json b2 = w.dsse_bundle(o2);
    json swapped = b;
    swapped["verificationMaterial"]["tlogEntries"] = b2["verificationMaterial"]["tlogEntries"];
    v = verify_bundle(swapped.dump(), w.image, nullptr, w.keyless(), now);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(v.reason, "tlog: "));

    json bad_set = b;
    auto& promise = bad_set["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]["signedEntryTimestamp"];
    promise = b64(flip(ferry::base64_decode(promise.get<std::string>())));
    CHECK(starts_with(verify_bundle(bad_set.dump(), w.image, nullptr, w.keyless(), now).reason, "tlog: "));

    json bad_root = b;
    auto& rh = bad_root["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["rootHash"];
    rh = b64(flip(ferry::base64_decode(rh.get<std::string>())));
    CHECK(starts_with(verify_bundle(bad_root.dump(), w.image, nullptr, w.keyless(), now).reason, "tlog: "));
  }
  SUBCASE("certificate: an untrusted CA with the same names")
  {
    World other;  // other keys, same subject names
    auto l2 = other.leaf();
    World::BundleOpts o2 = o;
    o2.leaf = l2.cert.get();
    o2.leaf_key = l2.key.get();
    Verdict v = verify_bundle(w.dsse_bundle(o2).dump(), w.image, nullptr, w.keyless(), now);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(v.reason, "certificate: "));
  }
  SUBCASE("sct: required unless --insecure-ignore-sct")
  {
    Policy p = w.keyless();
    p.ignore_sct = false;
    Verdict v = verify_bundle(good, w.image, nullptr, p, now);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(v.reason, "sct: "));
  }
  SUBCASE("a keyless policy and a keyed bundle")
  {
    World::BundleOpts ko;
    ko.key = w.cosign_key.get();
    Verdict v = verify_bundle(w.dsse_bundle(ko).dump(), w.image, nullptr, w.keyless(), now);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(v.reason, "signature: "));
  }
}

TEST_CASE("cosign: keyed DSSE bundle")
{
  World w;
  World::BundleOpts o;
  o.key = w.cosign_key.get();
  std::string b = w.dsse_bundle(o).dump();
  Verdict v = verify_bundle(b, w.image, nullptr, w.keyed(w.cosign_key.get()), k_now);
  INFO(v.reason);
  CHECK(v.verified);
  CHECK(v.signer == "cosign.pub");
  CHECK(check_of(v, "certificate") == "skipped: keyed signature");
  CHECK(check_of(v, "identity") == "skipped: keyed signature");
  v = verify_bundle(b, w.image, nullptr, w.keyed(w.other_key.get()), k_now);
  CHECK_FALSE(v.verified);
  CHECK(starts_with(v.reason, "signature: "));
  // Every key is tried, whatever the hint says.
  Policy two = w.keyed(w.other_key.get());
  two.keys.push_back(w.keyed(w.cosign_key.get()).keys.front());
  CHECK(verify_bundle(b, w.image, nullptr, two, k_now).verified);
  // Keyed without a tlog entry: only with --insecure-ignore-tlog.
  o.tlog = false;
  std::string no = w.dsse_bundle(o).dump();
  CHECK_FALSE(verify_bundle(no, w.image, nullptr, w.keyed(w.cosign_key.get()), k_now).verified);
  Policy ig = w.keyed(w.cosign_key.get());
  ig.ignore_tlog = true;
  CHECK(verify_bundle(no, w.image, nullptr, ig, k_now).verified);
}

TEST_CASE("cosign: messageSignature bundle")
{
  World w;
  auto l = w.leaf();
  std::string b = w.message_bundle(l.cert.get(), l.key.get()).dump();
  Verdict v = verify_bundle(b, w.image, &w.manifest, w.keyless(), k_now);
  INFO(v.reason);
  CHECK(v.verified);
  CHECK(v.detail == "message signature");
  v = verify_bundle(b, w.image, nullptr, w.keyless(), k_now);
  CHECK_FALSE(v.verified);
  CHECK(starts_with(v.reason, "signature: "));
  Descriptor other = w.image;
  other.digest = Digest::of("another manifest");
  std::string other_bytes = "another manifest";
  v = verify_bundle(b, other, &other_bytes, w.keyless(), k_now);
  CHECK_FALSE(v.verified);
  CHECK(starts_with(v.reason, "subject: "));
  json wrong_alg = json::parse(b);
  wrong_alg["messageSignature"]["messageDigest"]["algorithm"] = "SHA2_384";
  CHECK(starts_with(verify_bundle(wrong_alg.dump(), w.image, &w.manifest, w.keyless(), k_now).reason, "subject: "));
}

TEST_CASE("cosign: hostile bundles never throw and fail `format`")
{
  World w;
  auto l = w.leaf();
  World::BundleOpts o;
  o.leaf = l.cert.get();
  o.leaf_key = l.key.get();
  json good = w.dsse_bundle(o);
  auto format_fails = [&](const std::string& bytes, const char* what) {
    Verdict v;
    CHECK_NOTHROW(v = verify_bundle(bytes, w.image, &w.manifest, w.keyless(), k_now));
    INFO(what << ": " << v.reason);
    CHECK_FALSE(v.verified);
    CHECK(starts_with(v.reason, "format: "));
    CHECK(check_of(v, "signature") == "skipped: not reached");
  };
  format_fails("", "empty");
  format_fails("not json at all", "not JSON");
  format_fails("[1,2,3]", "an array");
  format_fails(std::string(100, '[') + std::string(100, ']'), "deep nesting");
  format_fails(std::string(5u << 20, ' '), "5 MiB");
  auto mutate = [&](auto&& fn, const char* what) {
    json b = good;
    fn(b);
    format_fails(b.dump(), what);
  };
  mutate([](json& b) { b["mediaType"] = "application/json"; }, "media type");
  mutate([](json& b) { b["mediaType"] = 3; }, "media type type");
  mutate([](json& b) { b.erase("verificationMaterial"); }, "no verification material");
  mutate([](json& b) { b["verificationMaterial"] = "x"; }, "verification material a string");
  mutate([](json& b) { b["verificationMaterial"]["certificate"]["rawBytes"] = "!!!not base64!!!"; }, "garbage base64");
  mutate([](json& b) { b["verificationMaterial"]["certificate"]["rawBytes"] = b64("not DER"); }, "not DER");
  mutate([](json& b) { b["verificationMaterial"]["certificate"]["rawBytes"] = 12; }, "rawBytes a number");
  mutate([](json& b) { b["verificationMaterial"]["publicKey"] = {{"hint", "x"}}; }, "certificate and public key");
  mutate([](json& b) { b["verificationMaterial"].erase("certificate"); }, "no certificate or key");
  mutate([](json& b) {
    b["verificationMaterial"].erase("certificate");
    b["verificationMaterial"]["x509CertificateChain"] = {{"certificates", json::array()}};
  }, "v0.3 with a chain");
  mutate([](json& b) { b["messageSignature"] = {{"messageDigest", {{"algorithm", "SHA2_256"}, {"digest", ""}}}, {"signature", ""}}; },
         "both dsseEnvelope and messageSignature");
  mutate([](json& b) { b.erase("dsseEnvelope"); }, "neither");
  mutate([](json& b) { b["dsseEnvelope"]["payload"] = "%%%"; }, "payload base64");
  mutate([](json& b) { b["dsseEnvelope"]["signatures"] = json::array(); }, "no signatures");
  mutate([](json& b) { b["dsseEnvelope"]["signatures"].push_back(b["dsseEnvelope"]["signatures"][0]); }, "two signatures");
  mutate([](json& b) { b["dsseEnvelope"]["signatures"] = json::array({1, 2}); }, "signatures of numbers");
  mutate([](json& b) { b["dsseEnvelope"]["signatures"] = "x"; }, "signatures a string");
  mutate([](json& b) {
    json many = json::array();
    for (int i = 0; i < 100000; ++i) many.push_back(b["verificationMaterial"]["tlogEntries"][0]);
    b["verificationMaterial"]["tlogEntries"] = many;
  }, "100000 tlog entries");
  mutate([](json& b) {
    json many = json::array();
    for (int i = 0; i < 1000; ++i) many.push_back({{"signedTimestamp", "AAAA"}});
    b["verificationMaterial"]["timestampVerificationData"] = {{"rfc3161Timestamps", many}};
  }, "1000 timestamps");
  mutate([](json& b) { b["verificationMaterial"]["tlogEntries"][0].erase("inclusionProof"); }, "v0.3 without a proof");
  mutate([](json& b) { b["verificationMaterial"]["tlogEntries"][0]["logIndex"] = json::array(); }, "logIndex an array");
  mutate([](json& b) { b["verificationMaterial"]["tlogEntries"] = {{"x", 1}}; }, "tlogEntries an object");
  mutate([](json& b) {
    b["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1";
    b["verificationMaterial"]["tlogEntries"][0].erase("inclusionPromise");
  }, "v0.1 without a promise");
  // Wrong types below the top level are format failures, never exceptions.
  for (const char* key : {"payload", "payloadType", "signatures"}) {
    json b = good;
    b["dsseEnvelope"][key] = json::object();
    format_fails(b.dump(), key);
  }
  // Random bytes.
  std::string noise;
  for (int i = 0; i < 4096; ++i) noise += static_cast<char>((i * 7919) & 0xff);
  format_fails(noise, "noise");
}

TEST_CASE("cosign: legacy .sig layers (simple signing)")
{
  World w;
  std::string payload = w.simple_payload(w.image.digest.str());
  Policy keyed = w.keyed(w.cosign_key.get());
  Descriptor good = w.sig_layer(payload, w.cosign_key.get(), pem_key(w.cosign_key.get()));

  Verdict v = verify_simple_signing(good, payload, w.image, keyed, k_now);
  INFO(v.reason);
  CHECK(v.verified);
  CHECK(v.format == "cosign-sig");
  CHECK(v.detail == "simple signing");
  REQUIRE(v.signing_time);
  CHECK(*v.signing_time == w.T + std::chrono::minutes(1));

  CHECK_FALSE(verify_simple_signing(good, payload, w.image, w.keyed(w.other_key.get()), k_now).verified);

  // Wrong digest, wrong type.
  std::string wrong = w.simple_payload(Digest::of("x").str());
  v = verify_simple_signing(w.sig_layer(wrong, w.cosign_key.get(), pem_key(w.cosign_key.get())), wrong, w.image, keyed, k_now);
  CHECK(starts_with(v.reason, "subject: "));
  std::string type = w.simple_payload(w.image.digest.str(), "atomic container signature");
  v = verify_simple_signing(w.sig_layer(type, w.cosign_key.get(), pem_key(w.cosign_key.get())), type, w.image, keyed, k_now);
  CHECK(starts_with(v.reason, "subject: "));

  // Tampered payload: the signature and the tlog body fail.
  std::string tampered = payload;
  tampered.insert(tampered.size() - 1, " ");
  v = verify_simple_signing(good, tampered, w.image, keyed, k_now);
  CHECK(starts_with(v.reason, "signature: "));

  // No Rekor bundle: only with --insecure-ignore-tlog.
  Descriptor no = w.sig_layer(payload, w.cosign_key.get(), pem_key(w.cosign_key.get()), false);
  v = verify_simple_signing(no, payload, w.image, keyed, k_now);
  CHECK(starts_with(v.reason, "tlog: "));
  Policy ig = keyed;
  ig.ignore_tlog = true;
  CHECK(verify_simple_signing(no, payload, w.image, ig, k_now).verified);

  // A corrupted SET; a bad signature annotation.
  Descriptor bad_set = good;
  json a = json::parse(bad_set.annotations[std::string(k_annotation_bundle)]);
  a["SignedEntryTimestamp"] = b64(flip(base64_decode(a["SignedEntryTimestamp"].get<std::string>())));
  bad_set.annotations[std::string(k_annotation_bundle)] = a.dump();
  CHECK(starts_with(verify_simple_signing(bad_set, payload, w.image, keyed, k_now).reason, "tlog: "));
  Descriptor bad_sig = no;
  auto& s = bad_sig.annotations[std::string(k_annotation_signature)];
  s = b64(flip(base64_decode(s)));
  CHECK(starts_with(verify_simple_signing(bad_sig, payload, w.image, ig, k_now).reason, "signature: "));

  // The Rekor entry of another payload.
  Descriptor swapped = good;
  std::string other_payload = w.simple_payload(w.image.digest.str(), "cosign container image signature") + " ";
  Descriptor other = w.sig_layer(other_payload, w.cosign_key.get(), pem_key(w.cosign_key.get()));
  swapped.annotations[std::string(k_annotation_bundle)] = other.annotations[std::string(k_annotation_bundle)];
  CHECK(starts_with(verify_simple_signing(swapped, payload, w.image, keyed, k_now).reason, "tlog: "));

  // Hostile annotations and payloads.
  auto format_fails = [&](const Descriptor& d, std::string_view p, const char* what) {
    Verdict r;
    CHECK_NOTHROW(r = verify_simple_signing(d, p, w.image, keyed, k_now));
    INFO(what << ": " << r.reason);
    CHECK(starts_with(r.reason, "format: "));
  };
  format_fails(good, "not json", "payload not JSON");
  format_fails(good, "[]", "payload an array");
  Descriptor d = good;
  d.annotations.erase(std::string(k_annotation_signature));
  format_fails(d, payload, "no signature");
  d = good;
  d.annotations[std::string(k_annotation_signature)] = "***";
  format_fails(d, payload, "garbage base64");
  d = good;
  d.annotations[std::string(k_annotation_bundle)] = "{";
  format_fails(d, payload, "bundle not JSON");
  d = good;
  d.annotations[std::string(k_annotation_bundle)] = R"({"SignedEntryTimestamp":"AAAA","Payload":{"body":"e30=","integratedTime":"1","logIndex":1,"logID":"00"}})";
  format_fails(d, payload, "integratedTime a string");
  d = good;
  d.annotations[std::string(k_annotation_bundle)] = R"({"SignedEntryTimestamp":"AAAA","Payload":{"body":"e30=","integratedTime":1,"logIndex":1,"logID":"zz"}})";
  format_fails(d, payload, "logID not hex");
  d = good;
  d.annotations[std::string(k_annotation_certificate)] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  format_fails(d, payload, "certificate garbage");
  d = good;
  d.annotations[std::string(k_annotation_rfc3161)] = R"({"SignedRFC3161Timestamp":7})";
  format_fails(d, payload, "timestamp a number");
}

TEST_CASE("cosign: legacy keyless .sig layer")
{
  World w;
  auto l = w.leaf();
  std::string payload = w.simple_payload(w.image.digest.str());
  Descriptor layer = w.sig_layer(payload, l.key.get(), pem_cert(l.cert.get()), true, l.cert.get());
  Verdict v = verify_simple_signing(layer, payload, w.image, w.keyless(), k_now);
  INFO(v.reason);
  CHECK(v.verified);
  CHECK(v.signer == "signer@example.test (issuer https://oidc.example.test)");
  CHECK(starts_with(verify_simple_signing(layer, payload, w.image, w.keyless("someone@example.test"), k_now).reason,
                    "identity: "));
  // The chain annotation only offers intermediates: a rogue root in it does not help.
  World rogue;
  auto rl = rogue.leaf();
  Descriptor rlayer = rogue.sig_layer(payload, rl.key.get(), pem_cert(rl.cert.get()), true, rl.cert.get());
  Policy p = w.keyless();
  v = verify_simple_signing(rlayer, payload, w.image, p, k_now);
  CHECK_FALSE(v.verified);
  // No certificate annotation under a keyless policy.
  Descriptor bare = w.sig_layer(payload, w.cosign_key.get(), pem_key(w.cosign_key.get()));
  CHECK(starts_with(verify_simple_signing(bare, payload, w.image, w.keyless(), k_now).reason, "signature: "));
}

TEST_CASE("cosign: .att layers (DSSE in-toto)")
{
  World w;
  auto make = [&](const std::string& statement, EVP_PKEY* key) {
    std::string sig = sign(key, pae(k_intoto, statement));
    return json{{"payloadType", k_intoto}, {"payload", b64(statement)}, {"signatures", {{{"keyid", ""}, {"sig", b64(sig)}}}}}.dump();
  };
  Descriptor layer;
  layer.media_type = std::string(k_dsse_envelope);
  layer.annotations[std::string(k_annotation_signature)] = "";
  Policy p = w.keyed(w.cosign_key.get());
  p.ignore_tlog = true;
  std::string env = make(w.statement(w.image.digest.hex(), "https://in-toto.io/Statement/v0.1"), w.cosign_key.get());
  Verdict v = verify_attestation(layer, env, w.image, p, k_now);
  INFO(v.reason);
  CHECK(v.verified);
  CHECK(v.format == "cosign-att");
  CHECK(v.detail == "DSSE https://sigstore.dev/cosign/sign/v1");
  CHECK(starts_with(verify_attestation(layer, env, w.image, w.keyed(w.cosign_key.get()), k_now).reason, "tlog: "));
  CHECK(starts_with(verify_attestation(layer, env, w.image, [&] {
    Policy o = w.keyed(w.other_key.get());
    o.ignore_tlog = true;
    return o;
  }(), k_now).reason, "signature: "));
  std::string wrong = make(w.statement(hex(sha256("x"))), w.cosign_key.get());
  CHECK(starts_with(verify_attestation(layer, wrong, w.image, p, k_now).reason, "subject: "));
  for (const char* hostile : {"", "{}", "[]", R"({"payloadType":1})", R"({"payload":"!!","payloadType":"x","signatures":[]})",
                              R"({"payload":"e30=","payloadType":"x","signatures":[{"sig":5}]})"}) {
    Verdict h;
    CHECK_NOTHROW(h = verify_attestation(layer, hostile, w.image, p, k_now));
    CHECK(starts_with(h.reason, "format: "));
  }
  // A statement that is not JSON fails `subject`.
  std::string nj = make("not json", w.cosign_key.get());
  CHECK(starts_with(verify_attestation(layer, nj, w.image, p, k_now).reason, "subject: "));
}

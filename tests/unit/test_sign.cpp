// ferry sign: envelopes and manifests in notation's exact shape, signing identities, the
// RFC 3161 client against an in-process TSA, and the bundle rewrite verified by ferry verify.
#include <ferry/sign.hpp>

#include <ferry/bundle.hpp>
#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/util/base64.hpp>
#include <ferry/verify/cbor.hpp>
#include <ferry/verify/envelope.hpp>
#include <ferry/verify/timestamp.hpp>
#include <ferry/verify/verifier.hpp>

#include "fake_http_client.hpp"
#include "test_pki.hpp"
#include "test_pki_crl.hpp"

#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <ferry/store/bundle_writer.hpp>
#include <ferry/util/file.hpp>

#include <archive.h>
#include <archive_entry.h>
#include <nlohmann/json.hpp>
#include <openssl/pem.h>
#include <openssl/ts.h>

#include <filesystem>
#include <fstream>
#include <random>

using namespace ferry;
using namespace ferry::sign;
namespace fs = std::filesystem;
using ferry::TempDir;
using fixtures::write_into;
namespace tp = ferry::test_pki;
namespace cbor = ferry::verify::cbor;

namespace {

void write_text(const fs::path& p, const std::string& s)
{
  std::ofstream out(p, std::ios::binary);
  out << s;
}

std::string key_pem(EVP_PKEY* key)
{
  verify::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string certs_pem(const std::vector<X509*>& certs)
{
  verify::BioPtr bio(BIO_new(BIO_s_mem()));
  for (X509* c : certs) PEM_write_bio_X509(bio.get(), c);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

/// A chain per key spec, made once.
const tp::TestChain& chain_for(const std::string& spec)
{
  static std::map<std::string, tp::TestChain> chains;
  auto it = chains.find(spec);
  if (it != chains.end()) return it->second;
  tp::EvpPkeyPtr key = spec == "rsa2048"   ? tp::make_key("rsa", 2048)
                       : spec == "rsa3072" ? tp::make_key("rsa", 3072)
                       : spec == "ec256"   ? tp::make_key("ec", 256)
                       : spec == "ec384"   ? tp::make_key("ec", 384)
                                           : tp::make_key("ec", 521);
  return chains.emplace(spec, tp::make_chain(std::move(key))).first->second;
}

SigningIdentity identity(const std::string& spec)
{
  const auto& c = chain_for(spec);
  return load_identity(key_pem(c.leaf_key.get()), certs_pem(c.chain()), "key.pem", "chain.pem");
}

Descriptor target()
{
  Descriptor d;
  d.media_type = std::string(media_type::k_oci_manifest);
  d.digest = Digest::parse("sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9");
  d.size = 517;
  d.annotations["io.containerd.image.name"] = "reg.example/app:v1";  // never in the payload
  return d;
}

/// Signing time of every test here: 2026-11-23T09:00:00Z, inside the test PKI's validity
/// (it is pinned to tp::k_now, design §8); the expected headers spell it out.
constexpr verify::TimePoint k_time = tp::k_now + std::chrono::hours(9);

std::string b64url_decode(std::string s)
{
  for (char& c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  return base64_decode(s);
}

std::vector<std::string> keys_in_order(const std::string& json_text)
{
  auto j = nlohmann::ordered_json::parse(json_text);
  std::vector<std::string> out;
  for (auto it = j.begin(); it != j.end(); ++it) out.push_back(it.key());
  return out;
}

std::vector<std::string> map_labels(const cbor::Item& map)
{
  std::vector<std::string> out;
  for (const auto& [k, v] : map.entries) out.push_back(k.is_int() ? std::to_string(*k.as_int()) : k.content);
  return out;
}

} // namespace

TEST_CASE("sign: parse_duration accepts Go durations and days")
{
  CHECK(parse_duration("24h").count() == 86400);
  CHECK(parse_duration("30m").count() == 1800);
  CHECK(parse_duration("1h30m").count() == 5400);
  CHECK(parse_duration("7d").count() == 7 * 86400);
  CHECK(parse_duration("1d12h").count() == 36 * 3600);
  CHECK(parse_duration("1.5h").count() == 5400);
  CHECK(parse_duration("90s").count() == 90);
  CHECK(parse_duration("1500ms").count() == 1);
  for (std::string bad : {"", "10", "h", "-1h", "0s", "500ms", "1x", "1..5h", "1h-2m"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_duration(bad), Error);
  }
}

TEST_CASE("sign: JWS envelopes verify and have notation's exact shape")
{
  for (std::string spec : {"rsa2048", "rsa3072", "ec256", "ec384", "ec521"}) {
    CAPTURE(spec);
    SigningIdentity id = identity(spec);
    EnvelopeRequest req;
    req.target = target();
    req.signing_time = k_time;
    req.signing_agent = "ferry/test <&>";
    Envelope env = make_jws(id, req);
    CHECK(env.media_type == "application/jose+json");
    auto info = verify::verify_envelope(env.media_type, env.bytes);
    CHECK(info.alg == id.alg);
    CHECK(info.signing_time == k_time);
    CHECK(!info.expiry);
    CHECK(info.chain.size() == 3);
    CHECK(info.signing_agent == "ferry/test <&>");
    CHECK(verify::parse_payload_target(info.payload).digest == req.target.digest);

    // Field by field against notation's JWS (e2e-valid-signature, blob.jws.sig).
    CHECK(keys_in_order(env.bytes) == std::vector<std::string>{"payload", "protected", "header", "signature"});
    auto j = nlohmann::json::parse(env.bytes);
    for (const char* k : {"payload", "protected", "signature"}) {
      std::string v = j[k];
      CHECK(v.find('=') == std::string::npos);
      CHECK(v.find('+') == std::string::npos);
      CHECK(v.find('/') == std::string::npos);
    }
    CHECK(env.bytes.find("ferry/test \\u003c\\u0026\\u003e") != std::string::npos);  // Go's HTML escaping
    CHECK(b64url_decode(j["protected"]) ==
          std::string(R"({"alg":")") + id.alg +
              R"(","crit":["io.cncf.notary.signingScheme"],"cty":"application/vnd.cncf.notary.payload.v1+json",)"
              R"("io.cncf.notary.signingScheme":"notary.x509","io.cncf.notary.signingTime":"2026-11-23T09:00:00Z"})");
    CHECK(b64url_decode(j["payload"]) ==
          R"({"targetArtifact":{"digest":"sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9",)"
          R"("mediaType":"application/vnd.oci.image.manifest.v1+json","size":517}})");
    CHECK(keys_in_order(nlohmann::ordered_json::parse(env.bytes)["header"].dump()) == std::vector<std::string>{"x5c", "io.cncf.notary.signingAgent"});
    auto x5c = j["header"]["x5c"];
    REQUIRE(x5c.size() == 3);
    CHECK(base64_decode(x5c[0].get<std::string>()) == verify::der_bytes(chain_for(spec).leaf.get()));
    CHECK(base64_decode(x5c[2].get<std::string>()) == verify::der_bytes(chain_for(spec).root.get()));
    std::string sig = b64url_decode(j["signature"]);
    if (id.alg[0] == 'E') CHECK(sig.size() == 2 * static_cast<std::size_t>((EVP_PKEY_get_bits(id.key.get()) + 7) / 8));
    // COSE-strict PSS salt (hash length) also passes for JWS: verify with the fixed salt.
    std::string prot = j["protected"], pay = j["payload"];
    CHECK(verify::detail::verify_signature(X509_get0_pubkey(chain_for(spec).leaf.get()), id.alg, prot + "." + pay, sig,
                                           /*pss_salt_auto=*/false) == "");
  }
}

TEST_CASE("sign: expiry is a critical signed attribute")
{
  SigningIdentity id = identity("ec256");
  EnvelopeRequest req;
  req.target = target();
  req.signing_time = k_time;
  req.expiry = k_time + std::chrono::hours(24);
  Envelope jws = make_jws(id, req);
  auto j = nlohmann::json::parse(jws.bytes);
  CHECK(b64url_decode(j["protected"]) ==
        R"({"alg":"ES256","crit":["io.cncf.notary.signingScheme","io.cncf.notary.expiry"],)"
        R"("cty":"application/vnd.cncf.notary.payload.v1+json","io.cncf.notary.expiry":"2026-11-24T09:00:00Z",)"
        R"("io.cncf.notary.signingScheme":"notary.x509","io.cncf.notary.signingTime":"2026-11-23T09:00:00Z"})");
  CHECK(!j["header"].contains("io.cncf.notary.signingAgent"));  // omitempty, as notation
  CHECK(*verify::verify_envelope(jws.media_type, jws.bytes).expiry == *req.expiry);

  Envelope cose = make_cose(id, req);
  auto info = verify::verify_envelope(cose.media_type, cose.bytes);
  CHECK(*info.expiry == *req.expiry);
  auto msg = cbor::decode(cose.bytes);
  auto prot = cbor::decode(msg.items[0].items[0].content);
  CHECK(map_labels(prot) == std::vector<std::string>{"1", "2", "3", "io.cncf.notary.expiry", "io.cncf.notary.signingTime",
                                                     "io.cncf.notary.signingScheme"});
  const cbor::Item* crit = prot.find(2);
  REQUIRE(crit);
  REQUIRE(crit->items.size() == 2);
  CHECK(crit->items[0].content == "io.cncf.notary.signingScheme");
  CHECK(crit->items[1].content == "io.cncf.notary.expiry");
}

TEST_CASE("sign: COSE envelopes verify and have notation's exact shape")
{
  for (std::string spec : {"rsa2048", "rsa3072", "ec256", "ec384", "ec521"}) {
    CAPTURE(spec);
    SigningIdentity id = identity(spec);
    EnvelopeRequest req;
    req.target = target();
    req.signing_time = k_time;
    req.signing_agent = "ferry/test";
    Envelope env = make_cose(id, req);
    CHECK(env.media_type == "application/cose");
    auto info = verify::verify_envelope(env.media_type, env.bytes);
    CHECK(info.alg == id.alg);
    CHECK(info.signing_time == k_time);
    CHECK(info.signing_agent == "ferry/test");

    // Field by field against notation's COSE (internal-testdata/cose_signature.sig).
    CHECK(static_cast<unsigned char>(env.bytes[0]) == 0xd2);  // tag 18
    auto msg = cbor::decode(env.bytes);
    REQUIRE(msg.type == cbor::Type::tag);
    const auto& arr = msg.items[0];
    REQUIRE(arr.items.size() == 4);
    auto prot = cbor::decode(arr.items[0].content);
    CHECK(map_labels(prot) ==
          std::vector<std::string>{"1", "2", "3", "io.cncf.notary.signingTime", "io.cncf.notary.signingScheme"});
    const cbor::Item* st = prot.find("io.cncf.notary.signingTime");
    REQUIRE(st);
    CHECK(st->type == cbor::Type::tag);
    CHECK(st->arg == 1);
    CHECK(prot.find(3)->content == "application/vnd.cncf.notary.payload.v1+json");
    CHECK(map_labels(arr.items[1]) == std::vector<std::string>{"33", "io.cncf.notary.signingAgent"});
    const cbor::Item* x5 = arr.items[1].find(33);
    REQUIRE(x5);
    CHECK(x5->type == cbor::Type::array);
    CHECK(x5->items.size() == 3);
    CHECK(arr.items[2].content ==
          R"({"targetArtifact":{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
          R"("digest":"sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9","size":517}})");
  }
  // A single-certificate chain is still an array (notation rejects a bare bstr).
  auto key = tp::make_key("ec", 256);
  tp::CertSpec s;
  s.key = key.get();
  s.key_usage = tp::k_ku_digital_signature;
  s.ekus = {"codeSigning"};
  auto self = tp::make_cert(s);
  SigningIdentity id = load_identity(key_pem(key.get()), certs_pem({self.get()}), "k", "c");
  EnvelopeRequest req;
  req.target = target();
  req.signing_time = k_time;
  Envelope env = make_cose(id, req);
  auto msg = cbor::decode(env.bytes);
  CHECK(msg.items[0].items[1].find(33)->type == cbor::Type::array);
  CHECK(verify::verify_envelope(env.media_type, env.bytes).chain.size() == 1);
}

TEST_CASE("sign: the signature manifest is byte for byte notation's OCI 1.1 form")
{
  SigningIdentity id = identity("rsa2048");
  EnvelopeRequest req;
  req.target = target();
  req.signing_time = k_time;
  Envelope env = make_jws(id, req);
  SignatureManifest m = make_signature_manifest(req.target, env, id.chain, k_time);
  std::string tp0 = verify::sha256_thumbprint(id.chain[0].get());
  std::string tp1 = verify::sha256_thumbprint(id.chain[1].get());
  std::string tp2 = verify::sha256_thumbprint(id.chain[2].get());
  std::string expected =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("artifactType":"application/vnd.cncf.notary.signature",)"
      R"("config":{"mediaType":"application/vnd.oci.empty.v1+json",)"
      R"("digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},)"
      R"("layers":[{"mediaType":"application/jose+json","digest":")" +
      Digest::of(env.bytes).str() + R"(","size":)" + std::to_string(env.bytes.size()) +
      R"(}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("digest":"sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9","size":517},)"
      R"("annotations":{"io.cncf.notary.x509chain.thumbprint#S256":"[\")" +
      tp0 + R"(\",\")" + tp1 + R"(\",\")" + tp2 + R"(\"]","org.opencontainers.image.created":"2026-11-23T09:00:00Z"}})";
  CHECK(m.bytes == expected);
  CHECK(m.desc.digest == Digest::of(expected));
  CHECK(m.desc.artifact_type == "application/vnd.cncf.notary.signature");
  CHECK(m.desc.annotations.at("org.opencontainers.image.created") == "2026-11-23T09:00:00Z");
  CHECK(m.envelope.digest == Digest::of(env.bytes));
  CHECK(Digest::of(k_empty_json).str() == k_empty_json_digest);
}

TEST_CASE("sign: signing identities")
{
  const auto& rsa = chain_for("rsa2048");
  const auto& ec = chain_for("ec256");
  SUBCASE("the key dictates the algorithm")
  {
    CHECK(identity("rsa2048").alg == "PS256");
    CHECK(identity("rsa3072").alg == "PS384");
    CHECK(identity("ec256").alg == "ES256");
    CHECK(identity("ec384").alg == "ES384");
    CHECK(identity("ec521").alg == "ES512");
  }
  SUBCASE("a key that is not the leaf's is refused")
  {
    try {
      load_identity(key_pem(ec.leaf_key.get()), certs_pem(rsa.chain()), "key.pem", "chain.pem");
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("does not match the leaf") != std::string::npos);
      CHECK(std::string(e.what()).find("key.pem") != std::string::npos);
    }
  }
  SUBCASE("a chain out of order or without its root is refused")
  {
    CHECK_THROWS_AS(load_identity(key_pem(rsa.leaf_key.get()), certs_pem({rsa.leaf.get(), rsa.root.get(), rsa.intermediate.get()}),
                                  "k", "c"),
                    Error);
    CHECK_THROWS_AS(load_identity(key_pem(rsa.leaf_key.get()), certs_pem({rsa.leaf.get(), rsa.intermediate.get()}), "k", "c"),
                    Error);
  }
  SUBCASE("unsupported keys and garbage")
  {
    auto small = tp::make_key("rsa", 1024);
    tp::CertSpec s;
    s.key = small.get();
    s.key_usage = tp::k_ku_digital_signature;
    auto cert = tp::make_cert(s);
    try {
      load_identity(key_pem(small.get()), certs_pem({cert.get()}), "k", "c");
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("1024") != std::string::npos);
    }
    CHECK_THROWS_AS(load_identity("not a key", certs_pem(rsa.chain()), "k", "c"), Error);
    CHECK_THROWS_AS(load_identity(key_pem(rsa.leaf_key.get()), "not a cert", "k", "c"), Error);
  }
}

// ---- RFC 3161 -------------------------------------------------------------------------------

namespace {

struct TsaFree {
  void operator()(TS_RESP_CTX* p) const { TS_RESP_CTX_free(p); }
};

/// A TSA: root → leaf with a critical timeStamping EKU, answering requests in process.
struct TestTsa {
  tp::EvpPkeyPtr root_key = tp::make_key("rsa", 2048);
  tp::EvpPkeyPtr leaf_key = tp::make_key("rsa", 2048);
  tp::X509Ptr root, leaf;
  int status = 0;  ///< PKIStatus to answer with (0 granted)
  bool wrong_nonce = false;
  verify::TimePoint time = k_time;  ///< genTime and signingTime of its tokens (never the wall clock)
  TestTsa()
  {
    root = tp::make_cert(tp::ca_spec("CN=Test TSA Root", root_key.get()));
    tp::CertSpec s;
    s.subject = "CN=Test TSA";
    s.key = leaf_key.get();
    s.issuer = root.get();
    s.issuer_key = root_key.get();
    s.key_usage = tp::k_ku_digital_signature;
    s.ekus = {"timeStamping"};
    s.eku_critical = true;
    s.serial = 7;
    leaf = tp::make_cert(s);
  }
  remote::HttpResponse answer(const std::string& request_der)
  {
    if (status != 0) {
      TS_RESP* r = TS_RESP_new();
      TS_STATUS_INFO* si = TS_STATUS_INFO_new();
      TS_STATUS_INFO_set_status(si, status);
      TS_RESP_set_status_info(r, si);
      TS_STATUS_INFO_free(si);
      unsigned char* der = nullptr;
      int n = i2d_TS_RESP(r, &der);
      TS_RESP_free(r);
      std::string body(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
      OPENSSL_free(der);
      return remote::make_response(200, body);
    }
    std::string req = request_der;
    if (wrong_nonce) {
      // Re-encode the request with another nonce.
      const unsigned char* p = reinterpret_cast<const unsigned char*>(req.data());
      TS_REQ* r = d2i_TS_REQ(nullptr, &p, static_cast<long>(req.size()));
      ASN1_INTEGER* n = ASN1_INTEGER_new();
      ASN1_INTEGER_set(n, 42);
      TS_REQ_set_nonce(r, n);
      ASN1_INTEGER_free(n);
      unsigned char* der = nullptr;
      int len = i2d_TS_REQ(r, &der);
      req.assign(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
      OPENSSL_free(der);
      TS_REQ_free(r);
    }
    std::unique_ptr<TS_RESP_CTX, TsaFree> ctx(TS_RESP_CTX_new());
    TS_RESP_CTX_set_signer_cert(ctx.get(), leaf.get());
    TS_RESP_CTX_set_signer_key(ctx.get(), leaf_key.get());
    TS_RESP_CTX_set_signer_digest(ctx.get(), EVP_sha256());
    TS_RESP_CTX_set_ess_cert_id_digest(ctx.get(), EVP_sha256());
    ASN1_OBJECT* policy = OBJ_txt2obj("1.3.6.1.4.1.99999.3", 1);
    TS_RESP_CTX_set_def_policy(ctx.get(), policy);
    ASN1_OBJECT_free(policy);
    TS_RESP_CTX_add_md(ctx.get(), EVP_sha256());
    TS_RESP_CTX_set_time_cb(
        ctx.get(),
        [](TS_RESP_CTX*, void* data, long* sec, long* usec) {
          *sec = static_cast<long>(static_cast<const TestTsa*>(data)->time.time_since_epoch().count());
          *usec = 0;
          return 1;
        },
        this);
    verify::X509StackPtr certs(sk_X509_new_null());
    X509_up_ref(root.get());
    sk_X509_push(certs.get(), root.get());
    TS_RESP_CTX_set_certs(ctx.get(), certs.get());
    verify::BioPtr in(BIO_new_mem_buf(req.data(), static_cast<int>(req.size())));
    TS_RESP* resp = TS_RESP_create_response(ctx.get(), in.get());
    if (PKCS7* token = TS_RESP_get_token(resp)) verify::testpki::pin_signing_time(token, time);
    unsigned char* der = nullptr;
    int n = i2d_TS_RESP(resp, &der);
    TS_RESP_free(resp);
    std::string body(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
    return remote::make_response(200, body);
  }
  verify::Chain roots() const
  {
    verify::Chain c;
    c.push_back(verify::clone(root.get()));
    return c;
  }
};

} // namespace

TEST_CASE("sign: RFC 3161 timestamps from a TSA, checked before they are embedded")
{
  TestTsa tsa;
  remote::FakeHttpClient http;
  http.handler = [&](const remote::HttpRequest&) { return tsa.answer(http.bodies.back()); };
  SigningIdentity id = identity("ec256");
  const auto now = k_time;
  const std::string sig = "raw signature bytes";

  SUBCASE("granted: the token covers the signature and verifies")
  {
    std::string token = request_timestamp(http, "http://tsa.test/ts?x=1", sig, tsa.roots(), id.chain, now);
    REQUIRE(http.count() == 1);
    auto req = http.request(0);
    CHECK(req.method == "POST");
    CHECK(req.headers.get("Content-Type") == "application/timestamp-query");
    const std::string body = http.body(0);  // a copy that outlives the parse
    const unsigned char* p = reinterpret_cast<const unsigned char*>(body.data());
    TS_REQ* parsed = d2i_TS_REQ(nullptr, &p, static_cast<long>(body.size()));
    REQUIRE(parsed);
    CHECK(TS_REQ_get_cert_req(parsed) == 1);
    CHECK(TS_REQ_get_nonce(parsed) != nullptr);
    TS_MSG_IMPRINT* mi = TS_REQ_get_msg_imprint(parsed);
    CHECK(OBJ_obj2nid(TS_MSG_IMPRINT_get_algo(mi)->algorithm) == NID_sha256);
    TS_REQ_free(parsed);
    auto r = verify::verify_timestamp(token, sig, tsa.roots(), id.chain, verify::CrlSet{}, now);
    CHECK_MESSAGE(r.ok, r.reason);
  }
  SUBCASE("embedded in JWS and COSE envelopes")
  {
    for (auto format : {EnvelopeFormat::jws, EnvelopeFormat::cose}) {
      EnvelopeRequest req;
      req.target = target();
      req.signing_time = now;
      req.signing_agent = "ferry/test";
      req.timestamper = [&](std::string_view s) { return request_timestamp(http, "http://tsa.test/", s, tsa.roots(), id.chain, now); };
      Envelope env = make_envelope(format, id, req);
      auto info = verify::verify_envelope(env.media_type, env.bytes);
      REQUIRE(!info.timestamp_token.empty());
      auto r = verify::verify_timestamp(info.timestamp_token, info.signature, tsa.roots(), info.chain, verify::CrlSet{}, now);
      CHECK_MESSAGE(r.ok, r.reason);
      if (format == EnvelopeFormat::jws) {
        auto j = nlohmann::json::parse(env.bytes);
        CHECK(keys_in_order(nlohmann::ordered_json::parse(env.bytes)["header"].dump()) ==
              std::vector<std::string>{"io.cncf.notary.timestampSignature", "x5c", "io.cncf.notary.signingAgent"});
      } else {
        auto msg = cbor::decode(env.bytes);
        CHECK(map_labels(msg.items[0].items[1]) ==
              std::vector<std::string>{"33", "io.cncf.notary.signingAgent", "io.cncf.notary.timestampSignature"});
        CHECK(msg.items[0].items[1].find("io.cncf.notary.timestampSignature")->type == cbor::Type::bytes);
      }
    }
  }
  SUBCASE("refusals")
  {
    tsa.status = 2;
    CHECK_THROWS_WITH_AS(request_timestamp(http, "http://tsa.test/", sig, tsa.roots(), id.chain, now),
                         doctest::Contains("not granted"), Error);
    tsa.status = 0;
    tsa.wrong_nonce = true;
    CHECK_THROWS_WITH_AS(request_timestamp(http, "http://tsa.test/", sig, tsa.roots(), id.chain, now),
                         doctest::Contains("nonce"), Error);
    tsa.wrong_nonce = false;
    TestTsa other;
    CHECK_THROWS_AS(request_timestamp(http, "http://tsa.test/", sig, other.roots(), id.chain, now), Error);
    http.handler = [](const remote::HttpRequest&) { return remote::make_response(500, "boom"); };
    CHECK_THROWS_WITH_AS(request_timestamp(http, "http://tsa.test/", sig, tsa.roots(), id.chain, now),
                         doctest::Contains("HTTP 500"), Error);
  }
}

// ---- the bundle --------------------------------------------------------------------------

namespace {

struct Fixture {
  TempDir dir;
  fs::path key, chain, store;
  std::string policy;
  Descriptor image, other;
  std::string layer = std::string(4096, 'L');

  Fixture()
  {
    const auto& c = chain_for("rsa2048");
    key = dir.path() / "key.pem";
    chain = dir.path() / "chain.pem";
    write_text(key, key_pem(c.leaf_key.get()));
    write_text(chain, certs_pem(c.chain()));
    store = dir.path() / "truststore";
    fs::create_directories(store / "x509" / "ca" / "test");
    write_text(store / "x509" / "ca" / "test" / "root.crt", certs_pem({c.root.get()}));
    policy = R"({"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],)"
             R"("signatureVerification":{"level":"strict"},"trustStores":["ca:test"],"trustedIdentities":["*"]}]})";
  }

  /// A bundle with two images (app:v1 and app:v2), written by the bundle writer in save's order.
  fs::path make_bundle(const std::string& name)
  {
    fs::path p = dir.path() / name;
    std::string config1 = R"({"architecture":"amd64","os":"linux","v":1})";
    std::string config2 = R"({"architecture":"amd64","os":"linux","v":2})";
    auto desc = [](std::string_view mt, const std::string& bytes) {
      Descriptor d;
      d.media_type = std::string(mt);
      d.digest = Digest::of(bytes);
      d.size = bytes.size();
      return d;
    };
    Descriptor l = desc("application/vnd.oci.image.layer.v1.tar", layer);
    auto manifest = [&](const std::string& cfg) {
      nlohmann::json m = {{"schemaVersion", 2},
                          {"mediaType", media_type::k_oci_manifest},
                          {"config", desc(media_type::k_oci_config, cfg).to_json_basic()},
                          {"layers", {l.to_json_basic()}}};
      return m.dump();
    };
    std::string m1 = manifest(config1), m2 = manifest(config2);
    image = desc(media_type::k_oci_manifest, m1);
    other = desc(media_type::k_oci_manifest, m2);
    nlohmann::json e1 = image.to_json_basic(), e2 = other.to_json_basic();
    e1["annotations"] = {{"io.containerd.image.name", "reg.example:5000/team/app:v1"}, {"org.opencontainers.image.ref.name", "v1"}};
    e2["annotations"] = {{"io.containerd.image.name", "reg.example:5000/team/app:v2"}, {"org.opencontainers.image.ref.name", "v2"}};
    nlohmann::json index = {{"schemaVersion", 2}, {"mediaType", media_type::k_oci_index}, {"manifests", {e1, e2}}};
    std::vector<BundleItem> items{{image, m1},
                                  {other, m2},
                                  {desc(media_type::k_oci_config, config1), config1},
                                  {desc(media_type::k_oci_config, config2), config2},
                                  {l, layer}};
    BundleWriter::Options wo;
    wo.resume = false;
    BundleWriter::create(p, format_from_path(p), index.dump(), std::move(items), wo)->commit();
    return p;
  }

  verify::VerifyReport verify(const fs::path& bundle)
  {
    verify::VerifyOptions o;
    o.policy = verify::TrustPolicyDocument::parse(policy, "policy");
    o.trust_store = verify::TrustStore(store);
    o.now = k_time + std::chrono::hours(1);
    return fixtures::verify_path(bundle, o);
  }

  SignOptions options(const fs::path& bundle)
  {
    SignOptions o;
    o.bundle = bundle;
    o.key_file = key;
    o.cert_file = chain;
    o.time = k_time;
    o.signing_agent = "ferry/test";
    return o;
  }
};

void no_log(const std::string&) {}

} // namespace

TEST_CASE("sign: signs every root of a bundle in each format; ferry verify accepts the result")
{
  Fixture f;
  for (std::string name : {"b.tar", "b.tar.zst", "b-dir"}) {
    for (auto envelope : {EnvelopeFormat::jws, EnvelopeFormat::cose}) {
      CAPTURE(name);
      CAPTURE(static_cast<int>(envelope));
      fs::path bundle = f.make_bundle(name);
      auto before = f.verify(bundle);
      CHECK(!before.verified);  // unsigned
      SignOptions o = f.options(bundle);
      o.envelope = envelope;
      SignResult r = sign_bundle(o, no_log);
      REQUIRE(r.signatures.size() == 2);
      CHECK(r.signatures[0].reference == "reg.example:5000/team/app:v1");
      CHECK(r.signatures[0].subject.digest == f.image.digest);
      CHECK(r.signatures[1].subject.digest == f.other.digest);
      CHECK(!fs::exists(bundle.string() + ".partial"));

      auto report = f.verify(bundle);
      CHECK(report.problems.empty());
      CHECK(report.verified);
      REQUIRE(report.artifacts.size() == 2);
      for (const auto& a : report.artifacts) {
        REQUIRE(a.signatures.size() == 1);
        CHECK(a.signatures[0].envelope_media_type == envelope_media_type(envelope));
      }

      // index.json: the roots as they were, then each signature untagged with artifactType.
      auto reader = LayoutReader::open(bundle);
      auto contents = classify(*reader);
      CHECK(contents.roots.size() == 2);
      CHECK(contents.referrer_entries.size() == 2);
      auto index = nlohmann::ordered_json::parse(reader->index_json());
      REQUIRE(index["manifests"].size() == 4);
      const auto& e = index["manifests"][2];
      CHECK(keys_in_order(e.dump()) == std::vector<std::string>{"mediaType", "digest", "size", "annotations", "artifactType"});
      CHECK(e["artifactType"] == "application/vnd.cncf.notary.signature");
      CHECK(!e["annotations"].contains("org.opencontainers.image.ref.name"));
      CHECK(e["digest"] == r.signatures[0].signature.digest.str());

      if (format_from_path(bundle) != BundleFormat::dir) {
        // Tar order (design §3): oci-layout, index.json, manifests, small blobs, layers.
        auto names = fixtures::tar_entry_names(bundle);
        REQUIRE(names.size() == 12);  // 4 manifests, 2 configs, empty config, 2 envelopes, 1 layer
        CHECK(names[0] == "oci-layout");
        CHECK(names[1] == "index.json");
        std::vector<std::string> manifests(names.begin() + 2, names.begin() + 6);
        for (const auto& d : {f.image.digest, f.other.digest, r.signatures[0].signature.digest, r.signatures[1].signature.digest})
          CHECK(std::count(manifests.begin(), manifests.end(), blob_path(d)) == 1);
        CHECK(names.back() == blob_path(Digest::of(f.layer)));
      }
    }
  }
}

TEST_CASE("sign: REF selects roots by reference, tag or digest; re-signing adds a signature")
{
  Fixture f;
  fs::path bundle = f.make_bundle("sel.tar");
  SignOptions o = f.options(bundle);
  o.references = {"v2"};
  auto r = sign_bundle(o, no_log);
  REQUIRE(r.signatures.size() == 1);
  CHECK(r.signatures[0].subject.digest == f.other.digest);
  {
    auto report = f.verify(bundle);
    CHECK(!report.verified);  // v1 is unsigned
  }
  o.references = {"reg.example:5000/team/app:v1", f.image.digest.str()};  // the same root twice → one signature
  o.envelope = EnvelopeFormat::cose;
  o.expiry = std::chrono::hours(48);
  r = sign_bundle(o, no_log);
  REQUIRE(r.signatures.size() == 1);
  CHECK(r.signatures[0].subject.digest == f.image.digest);
  CHECK(r.expiry == k_time + std::chrono::hours(48));
  CHECK(f.verify(bundle).verified);

  o.references = {f.other.digest.str()};
  sign_bundle(o, no_log);
  auto report = f.verify(bundle);
  CHECK(report.verified);
  for (const auto& a : report.artifacts) CHECK(a.signatures.size() == (a.desc.digest == f.other.digest ? 2u : 1u));
  // The empty config blob is stored once.
  auto names = fixtures::tar_entry_names(bundle);
  CHECK(std::count(names.begin(), names.end(), blob_path(Digest::parse(k_empty_json_digest))) == 1);
}

TEST_CASE("sign: failures leave the bundle untouched")
{
  Fixture f;
  fs::path bundle = f.make_bundle("keep.tar");
  auto size = fs::file_size(bundle);
  auto bytes = tp::read_file(bundle);
  SignOptions o = f.options(bundle);
  o.references = {"v9"};
  CHECK_THROWS_WITH_AS(sign_bundle(o, no_log), doctest::Contains("no root matches \"v9\""), Error);
  o.references = {};
  o.key_file = f.dir.path() / "missing.pem";
  CHECK_THROWS_WITH_AS(sign_bundle(o, no_log), doctest::Contains("missing.pem"), Error);
  o.key_file = f.key;
  o.timestamp_url = "http://127.0.0.1:1/";
  CHECK_THROWS_AS(sign_bundle(o, no_log), Error);  // --tsa-ca missing
  CHECK(fs::file_size(bundle) == size);
  CHECK(tp::read_file(bundle) == bytes);
  CHECK(!fs::exists(bundle.string() + ".partial"));
  o.timestamp_url.clear();
  o.bundle = f.dir.path() / "nope.tar";
  CHECK_THROWS_WITH_AS(sign_bundle(o, no_log), doctest::Contains("nope.tar"), Error);
}

TEST_CASE("sign: a timestamped signature in a bundle verifies")
{
  Fixture f;
  TestTsa tsa;
  remote::FakeHttpClient http;
  http.handler = [&](const remote::HttpRequest&) { return tsa.answer(http.bodies.back()); };
  write_text(f.dir.path() / "tsa-root.pem", certs_pem({tsa.root.get()}));
  fs::create_directories(f.store / "x509" / "tsa" / "test");
  write_text(f.store / "x509" / "tsa" / "test" / "root.crt", certs_pem({tsa.root.get()}));
  f.policy = R"({"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],)"
             R"("signatureVerification":{"level":"strict"},"trustStores":["ca:test","tsa:test"],"trustedIdentities":["*"]}]})";
  fs::path bundle = f.make_bundle("ts-dir");
  SignOptions o = f.options(bundle);
  o.timestamp_url = "http://tsa.test/";
  o.tsa_ca_file = f.dir.path() / "tsa-root.pem";
  o.http = &http;
  auto r = sign_bundle(o, no_log);
  REQUIRE(r.signatures.size() == 2);
  CHECK(r.signatures[0].timestamped);
  CHECK(http.count() == 2);
  auto report = f.verify(bundle);
  CHECK(report.verified);
  for (const auto& a : report.artifacts)
    for (const auto& s : a.signatures)
      for (const auto& c : s.checks)
        if (c.name == "authenticTimestamp") CHECK_MESSAGE(c.result == verify::CheckResult::pass, c.reason);
}

TEST_CASE("sign: a directory bundle named with a trailing slash is replaced, not nested")
{
  Fixture f;
  fs::path bundle = f.make_bundle("slash-dir");
  SignOptions o = f.options(fs::path(bundle.string() + "/"));
  auto r = sign_bundle(o, no_log);
  CHECK(r.signatures.size() == 2);
  CHECK(!fs::exists(bundle / ".partial"));
  CHECK(!fs::exists(bundle.string() + ".partial"));
  CHECK(f.verify(bundle).verified);
}

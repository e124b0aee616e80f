// Sigstore's offline trust primitives (issue 15): the trusted root, signatures, canonical
// JSON, Rekor entries (SET, RFC 6962 inclusion proof, signed checkpoint, bodies), embedded
// SCTs and RFC 3161 timestamps. Everything is generated at test time with OpenSSL at fixed
// instants (no clock); the last case checks the generator's vectors when
// FERRY_SIGSTORE_VECTORS names its output directory.
#include <ferry/verify/sigstore.hpp>

#include <ferry/error.hpp>
#include <ferry/util/base64.hpp>

#include "test_pki_crl.hpp"

#include <doctest/doctest.h>
#include <openssl/pem.h>
#include <nlohmann/json.hpp>

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

using namespace ferry;
using namespace ferry::verify;
using namespace ferry::verify::sigstore;
using namespace ferry::verify::testpki;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

TimePoint at(const char* rfc3339) { return parse_rfc3339(rfc3339); }
const TimePoint k_t = at("2026-06-01T00:00:00Z");  // the signing instant of these tests
std::int64_t unix_of(TimePoint t) { return t.time_since_epoch().count(); }

std::string sha(std::string_view d)
{
  unsigned char out[32];
  unsigned int n = 0;
  EVP_Digest(d.data(), d.size(), out, &n, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(out), n);
}

std::string hexs(std::string_view b)
{
  std::string out;
  char buf[3];
  for (unsigned char c : b) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

EvpPkeyPtr gen(const char* what)
{
  std::string w = what;
  EVP_PKEY* k = w == "rsa" ? EVP_RSA_gen(2048) : w == "ed25519" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519") : EVP_EC_gen(what);
  check(k != nullptr, "keygen");
  return EvpPkeyPtr(k);
}

/// DER ECDSA / RSA PKCS#1 v1.5 / Ed25519 signature with the hash verify_signature expects.
std::string sign(EVP_PKEY* key, std::string_view data)
{
  const EVP_MD* md = nullptr;
  if (EVP_PKEY_base_id(key) == EVP_PKEY_EC) {
    int bits = EVP_PKEY_get_bits(key);
    md = bits <= 256 ? EVP_sha256() : bits <= 384 ? EVP_sha384() : EVP_sha512();
  } else if (EVP_PKEY_base_id(key) == EVP_PKEY_RSA) {
    md = EVP_sha256();
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  check(EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key) == 1, "DigestSignInit");
  std::size_t n = 0;
  auto in = reinterpret_cast<const unsigned char*>(data.data());
  check(EVP_DigestSign(ctx.get(), nullptr, &n, in, data.size()) == 1, "DigestSign");
  std::string sig(n, '\0');
  check(EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n, in, data.size()) == 1, "DigestSign");
  sig.resize(n);
  return sig;
}

std::string pem_of_key(EVP_PKEY* key)
{
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string flip(std::string s, std::size_t i = 0)
{
  s[i % s.size()] = static_cast<char>(s[i % s.size()] ^ 1);
  return s;
}

json valid_for(const char* start, const char* end = nullptr)
{
  json v = {{"start", start}};
  if (end) v["end"] = end;
  return v;
}

json log_json(EVP_PKEY* key, json vf = valid_for("2026-01-01T00:00:00Z"))
{
  std::string spki = spki_der(key);
  return {{"baseUrl", "https://log.example.test"},
          {"hashAlgorithm", "SHA2_256"},
          {"publicKey", {{"rawBytes", base64_encode(spki)}, {"keyDetails", "PKIX_ECDSA_P256_SHA_256"}, {"validFor", vf}}},
          {"logId", {{"keyId", base64_encode(sha(spki))}}}};
}

json authority_json(std::initializer_list<X509*> chain, const std::string& cn, json vf = valid_for("2026-01-01T00:00:00Z"))
{
  json certs = json::array();
  for (X509* c : chain) certs.push_back({{"rawBytes", base64_encode(der_bytes(c))}});
  return {{"subject", {{"organization", "ferry"}, {"commonName", cn}}},
          {"uri", "https://" + cn + ".example.test"},
          {"certChain", {{"certificates", certs}}},
          {"validFor", vf}};
}

json root_json()
{
  return {{"mediaType", "application/vnd.dev.sigstore.trustedroot+json;version=0.1"},
          {"tlogs", json::array()},
          {"ctlogs", json::array()},
          {"certificateAuthorities", json::array()},
          {"timestampAuthorities", json::array()}};
}

TrustedRoot parse_root(const json& j) { return TrustedRoot::parse(j.dump(), "trusted_root.json"); }

// ---- an RFC 6962 log at test time ---------------------------------------------------------

std::string node(const std::string& l, const std::string& r) { return sha("\x01" + l + r); }
std::size_t split_point(std::size_t n)
{
  std::size_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
std::string mth(const std::vector<std::string>& h, std::size_t lo, std::size_t hi)
{
  if (hi - lo == 1) return h[lo];
  std::size_t k = split_point(hi - lo);
  return node(mth(h, lo, lo + k), mth(h, lo + k, hi));
}
std::vector<std::string> audit_path(const std::vector<std::string>& h, std::size_t m, std::size_t lo, std::size_t hi)
{
  if (hi - lo == 1) return {};
  std::size_t k = split_point(hi - lo);
  std::vector<std::string> p;
  if (m < k) {
    p = audit_path(h, m, lo, lo + k);
    p.push_back(mth(h, lo + k, hi));
  } else {
    p = audit_path(h, m - k, lo + k, hi);
    p.push_back(mth(h, lo, lo + k));
  }
  return p;
}

struct TestLog {
  EvpPkeyPtr key = gen("P-256");
  std::string key_id = sha(spki_der(key.get()));
  std::int64_t offset = 5000;  // global index = offset + tree index
  std::vector<std::string> leaves;

  std::string checkpoint(const std::string& root, std::size_t size, EVP_PKEY* signer = nullptr) const
  {
    std::string note = "log.example.test - 42\n" + std::to_string(size) + "\n" + base64_encode(root) + "\n";
    std::string sig = sign(signer ? signer : key.get(), note);
    return note + "\n\xe2\x80\x94 log.example.test " + base64_encode(key_id.substr(0, 4) + sig) + "\n";
  }
  /// A bundle tlogEntries[] element for leaf `idx` (the body is the leaf).
  json entry(std::size_t idx, std::int64_t integrated) const
  {
    std::vector<std::string> hashes;
    for (const auto& l : leaves) hashes.push_back(rfc6962_leaf_hash(l));
    std::string root = mth(hashes, 0, hashes.size());
    json path = json::array();
    for (const auto& p : audit_path(hashes, idx, 0, hashes.size())) path.push_back(base64_encode(p));
    json payload = {{"body", base64_encode(leaves[idx])},
                    {"integratedTime", integrated},
                    {"logID", hexs(key_id)},
                    {"logIndex", offset + static_cast<std::int64_t>(idx)}};
    return {{"logIndex", std::to_string(offset + static_cast<std::int64_t>(idx))},
            {"logId", {{"keyId", base64_encode(key_id)}}},
            {"kindVersion", {{"kind", "hashedrekord"}, {"version", "0.0.1"}}},
            {"integratedTime", std::to_string(integrated)},
            {"inclusionPromise", {{"signedEntryTimestamp", base64_encode(sign(key.get(), canonical_json(payload)))}}},
            {"inclusionProof",
             {{"logIndex", std::to_string(idx)},
              {"rootHash", base64_encode(root)},
              {"treeSize", std::to_string(leaves.size())},
              {"hashes", path},
              {"checkpoint", {{"envelope", checkpoint(root, leaves.size())}}}}},
            {"canonicalizedBody", base64_encode(leaves[idx])}};
  }
};

TestLog make_log(std::size_t n)
{
  TestLog log;
  for (std::size_t i = 0; i < n; ++i) log.leaves.push_back("{\"leaf\":" + std::to_string(i) + "}");
  return log;
}

} // namespace

// ---- trusted root ---------------------------------------------------------------------------

TEST_CASE("sigstore TrustedRoot::parse: logs, authorities, validFor, lookups")
{
  auto tlog = gen("P-256");
  auto ct = gen("P-384");
  Issued ca = issue({.cn = "Fulcio Root", .ca = true});
  json j = root_json();
  j["tlogs"].push_back(log_json(tlog.get(), valid_for("2026-01-01T00:00:00.123Z", "2027-01-01T00:00:00Z")));
  j["ctlogs"].push_back(log_json(ct.get()));
  j["certificateAuthorities"].push_back(authority_json({ca.cert.get()}, "fulcio"));
  j["timestampAuthorities"].push_back(authority_json({ca.cert.get()}, "tsa"));
  j["someFutureField"] = {{"x", 1}};  // unknown fields are ignored
  TrustedRoot root = parse_root(j);
  REQUIRE(root.tlogs.size() == 1);
  REQUIRE(root.ctlogs.size() == 1);
  CHECK(root.tlogs[0].base_url == "https://log.example.test");
  CHECK(root.tlogs[0].key_id == sha(spki_der(tlog.get())));
  CHECK(root.tlog(sha(spki_der(tlog.get()))) == &root.tlogs[0]);
  CHECK(root.tlog(sha(spki_der(ct.get()))) == nullptr);
  CHECK(root.ctlog(sha(spki_der(ct.get()))) == &root.ctlogs[0]);
  CHECK(root.tlogs[0].valid_for.start == at("2026-01-01T00:00:00Z"));
  CHECK(root.tlogs[0].valid_for.end == at("2027-01-01T00:00:00Z"));
  CHECK_FALSE(root.ctlogs[0].valid_for.end.has_value());
  REQUIRE(root.certificate_authorities.size() == 1);
  CHECK(root.certificate_authorities[0].name == "fulcio");
  CHECK(root.certificate_authorities[0].chain.size() == 1);
  CHECK(root.timestamp_authorities[0].uri == "https://tsa.example.test");

  ValidFor vf{at("2026-01-01T00:00:00Z"), at("2026-02-01T00:00:00Z")};
  CHECK(vf.contains(at("2026-01-01T00:00:00Z")));
  CHECK(vf.contains(at("2026-02-01T00:00:00Z")));
  CHECK_FALSE(vf.contains(at("2025-12-31T23:59:59Z")));
  CHECK_FALSE(vf.contains(at("2026-02-01T00:00:01Z")));
  CHECK(ValidFor{}.contains(at("1999-01-01T00:00:00Z")));

  json v2 = j;
  v2["mediaType"] = "application/vnd.dev.sigstore.trustedroot.v0.2+json";
  CHECK(parse_root(v2).tlogs.size() == 1);
}

TEST_CASE("sigstore TrustedRoot::parse: malformed input throws invalid_manifest naming the field")
{
  auto key = gen("P-256");
  json good = root_json();
  good["tlogs"].push_back(log_json(key.get()));
  auto throws = [](const std::string& text, const char* needle) {
    try {
      TrustedRoot::parse(text, "root.json");
      FAIL("no throw for " << needle);
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_manifest);
      CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
      CHECK(std::string(e.what()).find("root.json") != std::string::npos);
    }
  };
  auto with = [&](auto&& edit) {
    json j = good;
    edit(j);
    return j.dump();
  };
  throws("not json", "not valid JSON");
  throws("[]", "not a JSON object");
  throws(with([](json& j) { j["mediaType"] = "application/vnd.dev.sigstore.trustedroot+json;version=9"; }), "mediaType");
  throws(with([](json& j) { j.erase("mediaType"); }), "mediaType");
  throws(with([](json& j) { j["tlogs"] = json::object(); }), "tlogs is not an array");
  throws(with([](json& j) { j["tlogs"][0]["publicKey"]["rawBytes"] = "!!!not base64"; }), "invalid base64");
  throws(with([](json& j) { j["tlogs"][0]["publicKey"]["rawBytes"] = base64_encode("not a key"); }), "public key");
  throws(with([](json& j) { j["tlogs"][0]["publicKey"]["rawBytes"] = 12; }), "rawBytes is not a string");
  throws(with([](json& j) { j["tlogs"][0]["publicKey"]["validFor"]["start"] = "yesterday"; }), "validFor");
  throws(with([](json& j) { j["tlogs"][0]["logId"]["keyId"] = ""; }), "keyId");
  throws(with([](json& j) { j["tlogs"][0].erase("logId"); }), "logId");
  throws(with([](json& j) {
           j["certificateAuthorities"].push_back({{"certChain", {{"certificates", {{{"rawBytes", base64_encode("junk")}}}}}}});
         }),
         "certificate does not parse");
  throws(with([](json& j) { j["certificateAuthorities"].push_back({{"certChain", {{"certificates", json::array()}}}}); }),
         "empty");
  throws(with([](json& j) {
           j["ctlogs"] = json::array();
           for (int i = 0; i < 1001; ++i) j["ctlogs"].push_back(json::object());
         }),
         "more than 1000");
  throws(std::string(100, '[') + std::string(100, ']'), "nested");
  throws(std::string(17u << 20, ' '), "16 MiB");
}

// ---- keys and signatures --------------------------------------------------------------------

TEST_CASE("sigstore verify_signature: ECDSA P-256/384/521, RSA PKCS#1 v1.5, Ed25519")
{
  const std::string data = "signed bytes";
  for (const char* kind : {"P-256", "P-384", "P-521", "rsa", "ed25519"}) {
    CAPTURE(kind);
    auto key = gen(kind);
    std::string sig = sign(key.get(), data);
    CHECK(verify_signature(key.get(), data, sig));
    CHECK_FALSE(verify_signature(key.get(), data + "x", sig));
    CHECK_FALSE(verify_signature(key.get(), data, flip(sig, sig.size() - 1)));
    CHECK_FALSE(verify_signature(key.get(), data, ""));
    CHECK_FALSE(verify_signature(gen(kind).get(), data, sig));
    // PEM and DER SPKI parse to the same key.
    auto from_pem = parse_public_key(pem_of_key(key.get()), "cosign.pub");
    auto from_der = parse_public_key(spki_der(key.get()), "cosign.der");
    CHECK(verify_signature(from_pem.get(), data, sig));
    CHECK(spki_der(from_der.get()) == spki_der(key.get()));
  }
  CHECK_FALSE(verify_signature(nullptr, data, "x"));
  CHECK_THROWS_AS(parse_public_key("", "k"), Error);
  CHECK_THROWS_AS(parse_public_key("-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n", "k"), Error);
  auto key = gen("P-256");
  CHECK_THROWS_AS(parse_public_key(spki_der(key.get()) + "trailing", "k"), Error);
}

TEST_CASE("sigstore canonical_json: RFC 8785 for Rekor's values")
{
  json v = json::parse(R"({"logIndex":12,"body":"YQ==","integratedTime":1700000000,"logID":"ab","b":[3,{"z":null,"a":true}],)"
                       R"("s":"\u0001\n\"\\/é"})");
  CHECK(canonical_json(v) == "{\"b\":[3,{\"a\":true,\"z\":null}],\"body\":\"YQ==\",\"integratedTime\":1700000000,\"logID\":\"ab\","
                             "\"logIndex\":12,\"s\":\"\\u0001\\n\\\"\\\\/é\"}");
  // Keys sort by UTF-16 code units: U+FF5E (one unit) after U+1F600 (a surrogate pair, 0xD83D).
  json k = {{"\xef\xbd\x9e", 1}, {"\xf0\x9f\x98\x80", 2}};
  CHECK(canonical_json(k) == "{\"\xf0\x9f\x98\x80\":2,\"\xef\xbd\x9e\":1}");
  CHECK(canonical_json(json(-5)) == "-5");
  CHECK_THROWS_AS(canonical_json(json(1.5)), Error);
}

// ---- Rekor entries ---------------------------------------------------------------------------

TEST_CASE("sigstore TlogEntry::from_json: strings or numbers, strict base64, bounds")
{
  TestLog log = make_log(5);
  json j = log.entry(3, unix_of(k_t));
  TlogEntry e = TlogEntry::from_json(j, "tlogEntries[0]");
  CHECK(e.log_index == 5003);
  CHECK(e.log_id == log.key_id);
  CHECK(e.kind == "hashedrekord");
  CHECK(e.kind_version == "0.0.1");
  CHECK(e.integrated_time == unix_of(k_t));
  CHECK_FALSE(e.signed_entry_timestamp.empty());
  REQUIRE(e.inclusion_proof);
  CHECK(e.inclusion_proof->log_index == 3);
  CHECK(e.inclusion_proof->tree_size == 5);
  CHECK(e.inclusion_proof->hashes.size() == 3);
  CHECK(e.canonicalized_body == log.leaves[3]);

  json numbers = j;
  numbers["logIndex"] = 5003;
  numbers["integratedTime"] = unix_of(k_t);
  numbers["inclusionProof"]["treeSize"] = 5;
  CHECK(TlogEntry::from_json(numbers, "e").log_index == 5003);

  auto throws = [](const json& bad, const char* needle) {
    try {
      TlogEntry::from_json(bad, "tlogEntries[0]");
      FAIL("no throw for " << needle);
    } catch (const Error& err) {
      CHECK(err.code() == Errc::invalid_manifest);
      CHECK_MESSAGE(std::string(err.what()).find(needle) != std::string::npos, err.what());
    }
  };
  auto with = [&](auto&& edit) {
    json x = j;
    edit(x);
    return x;
  };
  throws(json::array(), "not a JSON object");
  throws(with([](json& x) { x["canonicalizedBody"] = "%%%garbage"; }), "invalid base64");
  throws(with([](json& x) { x["canonicalizedBody"] = "YQ=a"; }), "invalid base64");
  throws(with([](json& x) { x["logId"]["keyId"] = "not*base64"; }), "invalid base64");
  throws(with([](json& x) { x["inclusionPromise"]["signedEntryTimestamp"] = "@@"; }), "invalid base64");
  throws(with([](json& x) { x["inclusionProof"]["hashes"][0] = "*"; }), "invalid base64");
  throws(with([](json& x) { x["logIndex"] = "12abc"; }), "logIndex");
  throws(with([](json& x) { x["logIndex"] = "99999999999999999999"; }), "logIndex");
  throws(with([](json& x) { x["logIndex"] = -1; }), "negative");
  throws(with([](json& x) { x["logIndex"] = 1.5; }), "logIndex");
  throws(with([](json& x) { x["integratedTime"] = true; }), "integratedTime");
  throws(with([](json& x) { x.erase("kindVersion"); }), "kindVersion");
  throws(with([](json& x) { x["inclusionProof"].erase("checkpoint"); }), "checkpoint");
  throws(with([](json& x) {
           x["inclusionProof"]["hashes"] = json::array();
           for (int i = 0; i < 65; ++i) x["inclusionProof"]["hashes"].push_back(base64_encode(std::string(32, 'a')));
         }),
         "more than 64");
}

TEST_CASE("sigstore verify_set: signed entry timestamp against the trusted root")
{
  TestLog log = make_log(4);
  json root_j = root_json();
  root_j["tlogs"].push_back(log_json(log.key.get(), valid_for("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")));
  TrustedRoot root = parse_root(root_j);
  TlogEntry good = TlogEntry::from_json(log.entry(2, unix_of(k_t)), "e");
  CHECK(verify_set(good, root) == "");

  TlogEntry tampered = good;
  tampered.canonicalized_body += " ";
  CHECK(verify_set(tampered, root).find("does not verify") != std::string::npos);
  TlogEntry moved = good;
  moved.log_index += 1;
  CHECK(verify_set(moved, root) != "");
  TlogEntry retimed = good;
  retimed.integrated_time += 1;
  CHECK(verify_set(retimed, root) != "");
  TlogEntry bad_sig = good;
  bad_sig.signed_entry_timestamp = flip(bad_sig.signed_entry_timestamp, 10);
  CHECK(verify_set(bad_sig, root) != "");
  TlogEntry no_promise = good;
  no_promise.signed_entry_timestamp.clear();
  CHECK(verify_set(no_promise, root).find("no inclusion promise") != std::string::npos);

  // The log must be in the root, and valid at integratedTime.
  TrustedRoot other = parse_root([&] {
    json j = root_json();
    j["tlogs"].push_back(log_json(gen("P-256").get()));
    return j;
  }());
  CHECK(verify_set(good, other).find("not in the trusted root") != std::string::npos);
  TlogEntry late = TlogEntry::from_json(log.entry(2, unix_of(at("2027-01-01T00:00:01Z"))), "e");
  CHECK(verify_set(late, root).find("not valid at the integrated time") != std::string::npos);
  TlogEntry early = TlogEntry::from_json(log.entry(2, unix_of(at("2025-12-31T23:59:59Z"))), "e");
  CHECK(verify_set(early, root).find("not valid") != std::string::npos);
}

TEST_CASE("sigstore rfc6962_root_from_proof: every index of trees of 1..33 leaves, and hostile paths")
{
  for (std::size_t n = 1; n <= 33; ++n) {
    std::vector<std::string> hashes;
    for (std::size_t i = 0; i < n; ++i) hashes.push_back(rfc6962_leaf_hash("leaf " + std::to_string(i)));
    std::string root = mth(hashes, 0, n);
    for (std::size_t i = 0; i < n; ++i) {
      CAPTURE(n);
      CAPTURE(i);
      auto path = audit_path(hashes, i, 0, n);
      std::string err;
      auto got = rfc6962_root_from_proof(i, n, hashes[i], path, &err);
      REQUIRE_MESSAGE(got, err);
      CHECK(*got == root);
      if (!path.empty()) {
        auto shorter = path;
        shorter.pop_back();
        CHECK_FALSE(rfc6962_root_from_proof(i, n, hashes[i], shorter, &err));
        auto bad = path;
        bad[0] = flip(bad[0]);
        auto r = rfc6962_root_from_proof(i, n, hashes[i], bad, &err);
        CHECK((!r || *r != root));
      }
      auto longer = path;
      longer.push_back(std::string(32, 'x'));
      CHECK_FALSE(rfc6962_root_from_proof(i, n, hashes[i], longer, &err));
    }
  }
  std::string err;
  std::string leaf = rfc6962_leaf_hash("x");
  CHECK(leaf == sha(std::string("\0x", 2)));
  CHECK_FALSE(rfc6962_root_from_proof(0, 0, leaf, {}, &err));
  CHECK(err.find("empty tree") != std::string::npos);
  CHECK_FALSE(rfc6962_root_from_proof(5, 5, leaf, {}, &err));
  CHECK_FALSE(rfc6962_root_from_proof(UINT64_MAX, UINT64_MAX, leaf, {}, &err));
  CHECK_FALSE(rfc6962_root_from_proof(0, 2, leaf, {std::string(31, 'a')}, &err));
  // A million hashes are refused before any is hashed.
  std::vector<std::string> million(1000000, std::string(32, 'a'));
  auto start = std::chrono::steady_clock::now();
  CHECK_FALSE(rfc6962_root_from_proof(1, UINT64_MAX, leaf, million, &err));
  CHECK(err.find("64") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(100));
}

TEST_CASE("sigstore verify_inclusion: audit path, signed checkpoint, root and size agreement")
{
  TestLog log = make_log(7);
  json root_j = root_json();
  root_j["tlogs"].push_back(log_json(log.key.get()));
  TrustedRoot root = parse_root(root_j);
  json j = log.entry(4, unix_of(k_t));
  TlogEntry good = TlogEntry::from_json(j, "e");
  CHECK(verify_inclusion(good, root) == "");
  for (std::size_t i = 0; i < 7; ++i) CHECK(verify_inclusion(TlogEntry::from_json(log.entry(i, unix_of(k_t)), "e"), root) == "");

  SUBCASE("a corrupted audit path hash")
  {
    TlogEntry e = good;
    e.inclusion_proof->hashes[1] = flip(e.inclusion_proof->hashes[1]);
    CHECK(verify_inclusion(e, root).find("calculated root hash") != std::string::npos);
  }
  SUBCASE("another body")
  {
    TlogEntry e = good;
    e.canonicalized_body = log.leaves[3];
    CHECK(verify_inclusion(e, root).find("calculated root hash") != std::string::npos);
  }
  SUBCASE("a corrupted checkpoint signature")
  {
    TlogEntry e = good;
    std::string& cp = e.inclusion_proof->checkpoint;
    std::size_t sp = cp.rfind(' ');
    std::string sig = base64_decode(cp.substr(sp + 1, cp.size() - sp - 2));
    cp = cp.substr(0, sp + 1) + base64_encode(flip(sig, sig.size() - 2)) + "\n";
    CHECK(verify_inclusion(e, root) == "invalid checkpoint signature");
  }
  SUBCASE("a checkpoint signed by another key under the log's hint")
  {
    TlogEntry e = good;
    auto other = gen("P-256");
    e.inclusion_proof->checkpoint = log.checkpoint(e.inclusion_proof->root_hash, 7, other.get());
    CHECK(verify_inclusion(e, root) == "invalid checkpoint signature");
  }
  SUBCASE("a checkpoint whose note text was edited")
  {
    TlogEntry e = good;
    e.inclusion_proof->checkpoint.replace(0, 3, "LOG");
    CHECK(verify_inclusion(e, root) == "invalid checkpoint signature");
  }
  SUBCASE("proof root differs from the checkpoint's (cosign rejects, sigstore-js does not)")
  {
    TlogEntry e = good;
    e.inclusion_proof->root_hash = flip(e.inclusion_proof->root_hash);
    CHECK(verify_inclusion(e, root).find("differs from the signed checkpoint") != std::string::npos);
  }
  SUBCASE("a checkpoint for another tree size")
  {
    TlogEntry e = good;
    e.inclusion_proof->checkpoint = log.checkpoint(e.inclusion_proof->root_hash, 8);
    CHECK(verify_inclusion(e, root).find("tree size") != std::string::npos);
  }
  SUBCASE("checkpoint without signatures, without a matching hint, malformed")
  {
    TlogEntry e = good;
    std::string note = e.inclusion_proof->checkpoint.substr(0, e.inclusion_proof->checkpoint.find("\n\n") + 1);
    e.inclusion_proof->checkpoint = note;
    CHECK(verify_inclusion(e, root) != "");
    e.inclusion_proof->checkpoint = note + "\n";
    CHECK(verify_inclusion(e, root).find("no signature") != std::string::npos);
    e.inclusion_proof->checkpoint = note + "\n\xe2\x80\x94 other " + base64_encode("abcdsignature") + "\n";
    CHECK(verify_inclusion(e, root).find("not signed by") != std::string::npos);
    e.inclusion_proof->checkpoint = note + "\n- other " + base64_encode("abcdsignature") + "\n";
    CHECK(verify_inclusion(e, root) != "");
    e.inclusion_proof->checkpoint = note + "\n\xe2\x80\x94 other ***\n";
    CHECK(verify_inclusion(e, root).find("base64") != std::string::npos);
    e.inclusion_proof->checkpoint = "origin\n0x7\n" + base64_encode(e.inclusion_proof->root_hash) + "\n\n";
    CHECK(verify_inclusion(e, root).find("tree size") != std::string::npos);
    e.inclusion_proof->checkpoint = "";
    CHECK(verify_inclusion(e, root) != "");
  }
  SUBCASE("hostile proofs: index >= size, size 0, a million hashes, no proof")
  {
    TlogEntry e = good;
    e.inclusion_proof->log_index = 7;
    CHECK(verify_inclusion(e, root).find("index") != std::string::npos);
    e.inclusion_proof->log_index = 0;
    e.inclusion_proof->tree_size = 0;
    CHECK(verify_inclusion(e, root).find("tree size") != std::string::npos);
    e = good;
    e.inclusion_proof->hashes.assign(1000000, std::string(32, 'h'));
    auto start = std::chrono::steady_clock::now();
    CHECK(verify_inclusion(e, root).find("64") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(200));
    e.inclusion_proof.reset();
    CHECK(verify_inclusion(e, root) == "no inclusion proof");
  }
  SUBCASE("a log that is not in the trusted root")
  {
    TestLog rogue = make_log(7);
    CHECK(verify_inclusion(TlogEntry::from_json(rogue.entry(4, unix_of(k_t)), "e"), root).find("not in the trusted root") !=
          std::string::npos);
  }
}

TEST_CASE("sigstore RekorBody::parse: hashedrekord 0.0.1, dsse 0.0.1, intoto 0.0.2")
{
  auto key = gen("P-256");
  std::string pem = pem_of_key(key.get());
  std::string sig = sign(key.get(), "payload");
  std::string digest(64, 'a');
  json hr = {{"apiVersion", "0.0.1"},
             {"kind", "hashedrekord"},
             {"spec",
              {{"data", {{"hash", {{"algorithm", "sha256"}, {"value", digest}}}}},
               {"signature", {{"content", base64_encode(sig)}, {"publicKey", {{"content", base64_encode(pem)}}}}}}}};
  RekorBody b = RekorBody::parse(canonical_json(hr), "body");
  CHECK(b.kind == "hashedrekord");
  CHECK(b.version == "0.0.1");
  REQUIRE(b.signatures.size() == 1);
  CHECK(b.signatures[0].first == sig);
  CHECK(b.signatures[0].second == pem);
  CHECK(b.data_sha256 == digest);

  json dsse = {{"apiVersion", "0.0.1"},
               {"kind", "dsse"},
               {"spec",
                {{"envelopeHash", {{"algorithm", "sha256"}, {"value", std::string(64, 'b')}}},
                 {"payloadHash", {{"algorithm", "sha256"}, {"value", std::string(64, 'c')}}},
                 {"signatures", {{{"signature", base64_encode(sig)}, {"verifier", base64_encode(pem)}}}}}}};
  b = RekorBody::parse(canonical_json(dsse), "body");
  CHECK(b.envelope_sha256 == std::string(64, 'b'));
  CHECK(b.payload_sha256 == std::string(64, 'c'));
  CHECK(b.signatures.at(0).first == sig);
  CHECK(b.signatures.at(0).second == pem);

  json intoto = {{"apiVersion", "0.0.2"},
                 {"kind", "intoto"},
                 {"spec",
                  {{"content",
                    {{"envelope",
                      {{"payloadType", "application/vnd.in-toto+json"},
                       {"signatures", {{{"sig", base64_encode(base64_encode(sig))}, {"publicKey", base64_encode(pem)}}}}}},
                     {"hash", {{"algorithm", "sha256"}, {"value", std::string(64, 'd')}}},
                     {"payloadHash", {{"algorithm", "sha256"}, {"value", std::string(64, 'e')}}}}}}}};
  b = RekorBody::parse(canonical_json(intoto), "body");
  CHECK(b.envelope_sha256 == std::string(64, 'd'));
  CHECK(b.payload_sha256 == std::string(64, 'e'));
  CHECK(b.signatures.at(0).first == sig);

  auto throws = [](const std::string& text) { CHECK_THROWS_AS(RekorBody::parse(text, "body"), Error); };
  throws("");
  throws("{");
  throws("[1]");
  json x = hr;
  x["spec"]["signature"]["content"] = "!!";
  throws(x.dump());
  x = hr;
  x["spec"]["data"]["hash"]["value"] = "XYZ";
  throws(x.dump());
  x = hr;
  x["kind"] = "rekord";
  throws(x.dump());
  x = dsse;
  x["spec"]["signatures"] = json::array();
  throws(x.dump());
  x = intoto;
  x["spec"]["content"]["envelope"]["signatures"][0]["sig"] = base64_encode("*not base64*");
  throws(x.dump());
}

// ---- SCTs -------------------------------------------------------------------------------------

namespace {

std::string u16(std::size_t n) { return {static_cast<char>(n >> 8), static_cast<char>(n & 0xff)}; }
std::string u24(std::size_t n) { return {static_cast<char>(n >> 16), static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)}; }
std::string u64(std::uint64_t n)
{
  std::string s;
  for (int i = 7; i >= 0; --i) s += static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

std::string tbs_of(X509* cert)
{
  unsigned char* der = nullptr;
  int n = i2d_re_X509_tbs(cert, &der);
  check(n > 0, "i2d_re_X509_tbs");
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

std::string der_octet_string(const std::string& content)
{
  ASN1_OCTET_STRING* os = ASN1_OCTET_STRING_new();
  ASN1_OCTET_STRING_set(os, reinterpret_cast<const unsigned char*>(content.data()), static_cast<int>(content.size()));
  unsigned char* der = nullptr;
  int n = i2d_ASN1_OCTET_STRING(os, &der);
  ASN1_OCTET_STRING_free(os);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  return out;
}

/// A CA, a CT log, and leaves carrying SCT extensions whose bytes a test chooses.
struct CtWorld {
  Issued ca = issue({.cn = "Fulcio Intermediate", .ca = true});
  EvpPkeyPtr ct = gen("P-256");
  std::string ct_id = sha(spki_der(ct.get()));

  Issued precert() const
  {
    return issue({.cn = "leaf", .issuer = ca.cert.get(), .issuer_key = ca.key.get(), .eku = "codeSigning"});
  }
  std::string issuer_key_hash() const
  {
    unsigned char* spki = nullptr;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(ca.cert.get()), &spki);
    std::string h = sha(std::string_view(reinterpret_cast<char*>(spki), static_cast<std::size_t>(n)));
    OPENSSL_free(spki);
    return h;
  }
  /// One serialized SCT over `pre`'s TBS by `key` (default: the trusted CT log).
  std::string sct(X509* pre, TimePoint when, EVP_PKEY* key = nullptr, std::string log_id = {}) const
  {
    std::uint64_t ms = static_cast<std::uint64_t>(unix_of(when)) * 1000 + 123;
    std::string tbs = tbs_of(pre);
    std::string signed_data = std::string("\0\0", 2) + u64(ms) + u16(1) + issuer_key_hash() + u24(tbs.size()) + tbs + u16(0);
    std::string sig = sign(key ? key : ct.get(), signed_data);
    return std::string(1, '\0') + (log_id.empty() ? ct_id : log_id) + u64(ms) + u16(0) + std::string("\x04\x03", 2) + u16(sig.size()) +
           sig;
  }
  /// The leaf with the SCT extension (raw TLS list bytes) added, re-signed by the CA.
  X509Ptr with_list(const Issued& pre, const std::string& tls_list) const
  {
    X509Ptr cert(X509_dup(pre.cert.get()));
    std::string value = der_octet_string(tls_list);
    ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(data, reinterpret_cast<const unsigned char*>(value.data()), static_cast<int>(value.size()));
    X509_EXTENSION* ext = X509_EXTENSION_create_by_NID(nullptr, NID_ct_precert_scts, 0, data);
    ASN1_OCTET_STRING_free(data);
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
    check(X509_sign(cert.get(), ca.key.get(), EVP_sha256()) > 0, "X509_sign");
    return cert;
  }
  X509Ptr with_scts(const Issued& pre, std::initializer_list<std::string> scts) const
  {
    std::string body;
    for (const auto& s : scts) body += u16(s.size()) + s;
    return with_list(pre, u16(body.size()) + body);
  }
  TrustedRoot root(json vf = valid_for("2026-01-01T00:00:00Z")) const
  {
    json j = root_json();
    j["ctlogs"].push_back(log_json(ct.get(), vf));
    return parse_root(j);
  }
};

} // namespace

TEST_CASE("sigstore verify_embedded_scts: precertificate SCTs against the root's CT logs")
{
  CtWorld w;
  Issued pre = w.precert();
  TrustedRoot root = w.root();
  X509Ptr leaf = w.with_scts(pre, {w.sct(pre.cert.get(), k_t)});
  CHECK(verify_embedded_scts(leaf.get(), w.ca.cert.get(), root) == "");

  SUBCASE("one good SCT among others is enough")
  {
    auto rogue = gen("P-256");
    X509Ptr two = w.with_scts(pre, {w.sct(pre.cert.get(), k_t, rogue.get(), sha(spki_der(rogue.get()))), w.sct(pre.cert.get(), k_t)});
    CHECK(verify_embedded_scts(two.get(), w.ca.cert.get(), root) == "");
  }
  SUBCASE("no SCT extension")
  {
    CHECK(verify_embedded_scts(pre.cert.get(), w.ca.cert.get(), root) == "certificate has no embedded SCTs");
  }
  SUBCASE("an SCT from a CT log that is not in the root")
  {
    auto rogue = gen("P-256");
    X509Ptr c = w.with_scts(pre, {w.sct(pre.cert.get(), k_t, rogue.get(), sha(spki_der(rogue.get())))});
    CHECK(verify_embedded_scts(c.get(), w.ca.cert.get(), root).find("not in the trusted root") != std::string::npos);
  }
  SUBCASE("an SCT signed by another key under the log's id")
  {
    auto rogue = gen("P-256");
    X509Ptr c = w.with_scts(pre, {w.sct(pre.cert.get(), k_t, rogue.get())});
    CHECK(verify_embedded_scts(c.get(), w.ca.cert.get(), root).find("does not verify") != std::string::npos);
  }
  SUBCASE("an SCT over another certificate")
  {
    Issued other = w.precert();
    X509Ptr c = w.with_scts(pre, {w.sct(other.cert.get(), k_t)});
    CHECK(verify_embedded_scts(c.get(), w.ca.cert.get(), root).find("does not verify") != std::string::npos);
  }
  SUBCASE("the wrong issuer (issuer_key_hash differs)")
  {
    Issued other_ca = issue({.cn = "Other CA", .ca = true});
    CHECK(verify_embedded_scts(leaf.get(), other_ca.cert.get(), root).find("does not verify") != std::string::npos);
  }
  SUBCASE("SCT time outside the CT log's validFor")
  {
    TrustedRoot later = w.root(valid_for("2026-07-01T00:00:00Z"));
    CHECK(verify_embedded_scts(leaf.get(), w.ca.cert.get(), later).find("outside the validFor") != std::string::npos);
    TrustedRoot ended = w.root(valid_for("2026-01-01T00:00:00Z", "2026-05-01T00:00:00Z"));
    CHECK(verify_embedded_scts(leaf.get(), w.ca.cert.get(), ended).find("outside the validFor") != std::string::npos);
  }
  SUBCASE("hostile lists: truncated, huge lengths, empty, trailing bytes, not an OCTET STRING")
  {
    std::string s = w.sct(pre.cert.get(), k_t);
    std::string list = u16(s.size() + 2) + u16(s.size()) + s;
    for (std::size_t cut : {std::size_t(0), std::size_t(1), std::size_t(3), std::size_t(40), list.size() - 1}) {
      CAPTURE(cut);
      X509Ptr c = w.with_list(pre, list.substr(0, cut));
      CHECK(verify_embedded_scts(c.get(), w.ca.cert.get(), root) != "");
    }
    X509Ptr huge = w.with_list(pre, u16(0xffff) + u16(0xffff) + s);
    CHECK(verify_embedded_scts(huge.get(), w.ca.cert.get(), root).find("length") != std::string::npos);
    X509Ptr huge_inner = w.with_list(pre, u16(s.size() + 2) + u16(0xfff0) + s);
    CHECK(verify_embedded_scts(huge_inner.get(), w.ca.cert.get(), root).find("truncated") != std::string::npos);
    std::string bad_sig_len = s;
    bad_sig_len[45] = '\x7f';  // the signature's u16 length (after version, id, time, extensions, algorithms)
    X509Ptr c2 = w.with_scts(pre, {bad_sig_len});
    CHECK(verify_embedded_scts(c2.get(), w.ca.cert.get(), root) != "");
    X509Ptr empty = w.with_list(pre, u16(0));
    CHECK(verify_embedded_scts(empty.get(), w.ca.cert.get(), root) == "empty SCT list");
    X509Ptr trailing = w.with_scts(pre, {s + "junk"});
    CHECK(verify_embedded_scts(trailing.get(), w.ca.cert.get(), root) == "malformed SCT");
    X509Ptr v2 = w.with_scts(pre, {std::string(1, '\x01') + s.substr(1)});
    CHECK(verify_embedded_scts(v2.get(), w.ca.cert.get(), root) == "no SCT of a known version");
    // An extension value that is not an OCTET STRING at all.
    X509Ptr raw(X509_dup(pre.cert.get()));
    ASN1_OCTET_STRING* data = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(data, reinterpret_cast<const unsigned char*>("\x30\x00"), 2);
    X509_EXTENSION* ext = X509_EXTENSION_create_by_NID(nullptr, NID_ct_precert_scts, 0, data);
    ASN1_OCTET_STRING_free(data);
    X509_add_ext(raw.get(), ext, -1);
    X509_EXTENSION_free(ext);
    CHECK(verify_embedded_scts(raw.get(), w.ca.cert.get(), root) == "SCT extension is not an OCTET STRING");
  }
  CHECK(verify_embedded_scts(nullptr, w.ca.cert.get(), root) != "");
}

// ---- RFC 3161 ---------------------------------------------------------------------------------

namespace {

/// TimeStampResp { PKIStatusInfo { status }, token }.
std::string der_len(std::size_t n)
{
  if (n < 0x80) return std::string(1, static_cast<char>(n));
  if (n < 0x100) return std::string("\x81", 1) + static_cast<char>(n);
  return std::string("\x82", 1) + static_cast<char>(n >> 8) + static_cast<char>(n & 0xff);
}
std::string ts_resp(const std::string& token, int status = 0)
{
  std::string status_info = std::string("\x30\x03\x02\x01", 4) + static_cast<char>(status);
  std::string body = status_info + token;
  return "\x30" + der_len(body.size()) + body;
}

struct TsaWorld {
  Issued root = issue({.cn = "TSA Root", .not_before = at("2026-01-01T00:00:00Z"), .not_after = at("2030-01-01T00:00:00Z"), .ca = true});
  Issued leaf = issue({.cn = "TSA Leaf",
                       .issuer = root.cert.get(),
                       .issuer_key = root.key.get(),
                       .not_before = at("2026-01-01T00:00:00Z"),
                       .not_after = at("2027-01-01T00:00:00Z"),
                       .eku = "critical,timeStamping"});
  std::string token(const std::string& message, TimePoint when, bool embed = true) const
  {
    std::vector<X509*> extra;
    if (embed) extra = {root.cert.get()};
    return make_token_with_ts_resp_ctx(leaf.cert.get(), leaf.key.get(), extra, message, when);
  }
  json authority(json vf = valid_for("2026-01-01T00:00:00Z")) const
  {
    return authority_json({leaf.cert.get(), root.cert.get()}, "test TSA", vf);
  }
  TrustedRoot trusted(json vf = valid_for("2026-01-01T00:00:00Z")) const
  {
    json j = root_json();
    j["timestampAuthorities"].push_back(authority(vf));
    return parse_root(j);
  }
};

} // namespace

TEST_CASE("sigstore verify_rfc3161: tokens and responses against the root's timestamp authorities")
{
  TsaWorld w;
  const std::string sig = "the signature bytes";
  TrustedRoot root = w.trusted();
  std::string token = w.token(sig, k_t);

  SignedTimestamp ok = verify_rfc3161(token, sig, root);
  CHECK_MESSAGE(ok.ok, ok.reason);
  CHECK(ok.time == k_t);
  CHECK(ok.authority == "test TSA");
  SignedTimestamp resp = verify_rfc3161(ts_resp(token), sig, root);
  CHECK_MESSAGE(resp.ok, resp.reason);
  CHECK(resp.time == k_t);
  SignedTimestamp bare = verify_rfc3161(w.token(sig, k_t, false), sig, root);
  CHECK_MESSAGE(bare.ok, bare.reason);

  SUBCASE("another message")
  {
    SignedTimestamp r = verify_rfc3161(token, sig + "x", root);
    CHECK_FALSE(r.ok);
    CHECK(r.reason.find("imprint") != std::string::npos);
  }
  SUBCASE("a response that was not granted")
  {
    SignedTimestamp r = verify_rfc3161(ts_resp("", 2), sig, root);
    CHECK_FALSE(r.ok);
    CHECK(r.reason.find("not granted") != std::string::npos);
    CHECK_FALSE(verify_rfc3161(ts_resp(token, 2), sig, root).ok);  // OpenSSL refuses a rejection with a token
  }
  SUBCASE("a TSA that is not in the root (same names)")
  {
    TsaWorld rogue;
    SignedTimestamp r = verify_rfc3161(rogue.token(sig, k_t), sig, root);
    CHECK_FALSE(r.ok);
    CHECK(r.reason.find("does not verify") != std::string::npos);
  }
  SUBCASE("the first of two authorities fails, the second verifies")
  {
    TsaWorld other;
    json j = root_json();
    j["timestampAuthorities"].push_back(other.authority());
    j["timestampAuthorities"].push_back(w.authority());
    j["timestampAuthorities"][0]["subject"]["commonName"] = "other";
    SignedTimestamp r = verify_rfc3161(token, sig, parse_root(j));
    CHECK_MESSAGE(r.ok, r.reason);
    CHECK(r.authority == "test TSA");
  }
  SUBCASE("genTime outside the authority's validFor")
  {
    SignedTimestamp r = verify_rfc3161(token, sig, w.trusted(valid_for("2026-07-01T00:00:00Z")));
    CHECK_FALSE(r.ok);
    CHECK(r.reason.find("validFor") != std::string::npos);
    r = verify_rfc3161(token, sig, w.trusted(valid_for("2026-01-01T00:00:00Z", "2026-05-31T23:59:59Z")));
    CHECK_FALSE(r.ok);
  }
  SUBCASE("genTime after the TSA certificate expired")
  {
    std::string late = w.token(sig, at("2027-02-01T00:00:00Z"));
    SignedTimestamp r = verify_rfc3161(late, sig, root);
    CHECK_FALSE(r.ok);
    CHECK(r.reason.find("chain") != std::string::npos);
  }
  SUBCASE("an authority chain whose leaf lacks timeStamping")
  {
    Issued plain = issue({.cn = "TSA Leaf",
                          .issuer = w.root.cert.get(),
                          .issuer_key = w.root.key.get(),
                          .not_before = at("2026-01-01T00:00:00Z"),
                          .not_after = at("2027-01-01T00:00:00Z"),
                          .eku = "codeSigning"});
    json j = root_json();
    j["timestampAuthorities"].push_back(authority_json({plain.cert.get(), w.root.cert.get()}, "plain"));
    SignedTimestamp r = verify_rfc3161(token, sig, parse_root(j));
    CHECK_FALSE(r.ok);
  }
  SUBCASE("garbage, truncation, trailing bytes, no authority")
  {
    CHECK_FALSE(verify_rfc3161("", sig, root).ok);
    CHECK_FALSE(verify_rfc3161("garbage", sig, root).ok);
    CHECK_FALSE(verify_rfc3161(token.substr(0, token.size() / 2), sig, root).ok);
    CHECK_FALSE(verify_rfc3161(token + "x", sig, root).ok);
    CHECK_FALSE(verify_rfc3161(std::string(2u << 20, '\x30'), sig, root).ok);
    std::string corrupted = token;
    corrupted[corrupted.size() - 5] ^= 1;
    CHECK_FALSE(verify_rfc3161(corrupted, sig, root).ok);
    SignedTimestamp r = verify_rfc3161(token, sig, parse_root(root_json()));
    CHECK_FALSE(r.ok);
    CHECK(r.reason.find("no timestamp authority") != std::string::npos);
  }
}

// ---- the generator's vectors ------------------------------------------------------------------

namespace {

std::string slurp(const fs::path& p)
{
  std::ifstream in(p, std::ios::binary);
  REQUIRE_MESSAGE(in, "cannot read " << p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

X509Ptr pem_cert(const std::string& pem)
{
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

} // namespace

TEST_CASE("sigstore vectors (FERRY_SIGSTORE_VECTORS): trusted root, SET, inclusion, SCT and TSA verdicts")
{
  const char* dir_env = std::getenv("FERRY_SIGSTORE_VECTORS");
  if (!dir_env || !*dir_env) {
    MESSAGE("FERRY_SIGSTORE_VECTORS is not set: the generator's vectors are skipped");
    return;
  }
  fs::path dir(dir_env);
  json cases = json::parse(slurp(dir / "cases.json"));
  TrustedRoot root = TrustedRoot::parse(slurp(dir / "trust" / "trusted_root.json"), "trusted_root.json");
  CHECK(root.tlogs.size() == 1);
  CHECK(root.ctlogs.size() == 1);
  CHECK(root.certificate_authorities.size() == 3);
  CHECK(root.timestamp_authorities.size() == 1);
  auto fulcio_intermediate = pem_cert(slurp(dir / "trust" / "fulcio-intermediate.pem"));
  REQUIRE(fulcio_intermediate);

  std::map<std::string, json> expect;
  for (const json& c : cases["cases"]) expect[c["id"].get<std::string>()] = c;

  struct Verdicts {
    std::string set, inclusion, sct, tsa;
  };
  auto bundle_verdicts = [&](const std::string& artifact) {
    json b = json::parse(slurp(dir / "artifacts" / artifact / "bundle.sigstore.json"));
    const json& vm = b["verificationMaterial"];
    Verdicts v;
    std::string signature;
    if (b.contains("dsseEnvelope")) signature = base64_decode(b["dsseEnvelope"]["signatures"][0]["sig"].get<std::string>());
    else signature = base64_decode(b["messageSignature"]["signature"].get<std::string>());
    if (vm["tlogEntries"].empty()) {
      v.set = v.inclusion = "no tlog entry";
    } else {
      TlogEntry e = TlogEntry::from_json(vm["tlogEntries"][0], artifact);
      v.set = verify_set(e, root);
      v.inclusion = verify_inclusion(e, root);
      RekorBody body = RekorBody::parse(e.canonicalized_body, artifact + " body");
      CHECK(body.signatures.size() == 1);
      CHECK(body.signatures.at(0).first == signature);
    }
    if (vm.contains("certificate")) {
      X509Ptr leaf = parse_der_certificate(base64_decode(vm["certificate"]["rawBytes"].get<std::string>()));
      v.sct = verify_embedded_scts(leaf.get(), fulcio_intermediate.get(), root);
    }
    const json& ts = vm["timestampVerificationData"]["rfc3161Timestamps"];
    if (ts.empty()) {
      v.tsa = "no timestamp";
    } else {
      SignedTimestamp t = verify_rfc3161(base64_decode(ts[0]["signedTimestamp"].get<std::string>()), signature, root);
      v.tsa = t.ok ? "" : t.reason;
      if (t.ok) CHECK(t.authority == "vectors TSA");
    }
    return v;
  };

  Verdicts good = bundle_verdicts("bundle-good");
  CHECK(good.set == "");
  CHECK(good.inclusion == "");
  CHECK(good.sct == "");
  CHECK(good.tsa == "");
  CHECK(expect.at("bundle-good")["expect"] == "pass");

  struct Case {
    const char* id;
    std::string Verdicts::*failing;
  };
  for (const Case& c : {Case{"bundle-bad-set", &Verdicts::set}, Case{"bundle-bad-inclusion-proof", &Verdicts::inclusion},
                        Case{"bundle-bad-checkpoint", &Verdicts::inclusion}, Case{"bundle-roothash-mismatch", &Verdicts::inclusion},
                        Case{"bundle-tlog-untrusted-key", &Verdicts::set}, Case{"bundle-no-sct", &Verdicts::sct},
                        Case{"bundle-untrusted-sct", &Verdicts::sct}, Case{"bundle-untrusted-tsa", &Verdicts::tsa}}) {
    std::string id = c.id;
    CAPTURE(id);
    REQUIRE(expect.count(id) == 1);
    CHECK(expect.at(c.id)["expect"] == "fail");
    Verdicts v = bundle_verdicts(expect.at(c.id)["artifact"].get<std::string>());
    MESSAGE(id << ": set=[" << v.set << "] inclusion=[" << v.inclusion << "] sct=[" << v.sct << "] tsa=[" << v.tsa << "]");
    CHECK((v.*c.failing) != "");
  }
  // The untrusted-key entry fails its proof too; the others fail only where they were broken.
  CHECK(bundle_verdicts("bundle-tlog-untrusted-key").inclusion != "");
  CHECK(bundle_verdicts("bundle-bad-set").inclusion == "");
  CHECK(bundle_verdicts("bundle-bad-inclusion-proof").set == "");
  CHECK(bundle_verdicts("bundle-no-sct").set == "");

  // Legacy .sig: the SET of dev.sigstore.cosign/bundle (Payload + SignedEntryTimestamp).
  auto legacy_set = [&](const std::string& artifact) {
    json ann = json::parse(slurp(dir / "artifacts" / artifact / "layer0.annotations.json"));
    json bundle = json::parse(ann.at("dev.sigstore.cosign/bundle").get<std::string>());
    const json& p = bundle["Payload"];
    TlogEntry e;
    e.log_index = p["logIndex"].get<std::int64_t>();
    e.integrated_time = p["integratedTime"].get<std::int64_t>();
    std::string id_hex = p["logID"].get<std::string>();
    for (std::size_t i = 0; i + 1 < id_hex.size(); i += 2) e.log_id += static_cast<char>(std::stoi(id_hex.substr(i, 2), nullptr, 16));
    e.canonicalized_body = base64_decode(p["body"].get<std::string>());
    e.signed_entry_timestamp = base64_decode(bundle["SignedEntryTimestamp"].get<std::string>());
    return verify_set(e, root);
  };
  CHECK(legacy_set("sig-keyed-good") == "");
  CHECK(expect.at("sig-keyed-bad-set")["expect"] == "fail");
  std::string bad = legacy_set("sig-keyed-bad-set");
  MESSAGE("sig-keyed-bad-set: set=[" << bad << "]");
  CHECK(bad != "");
}

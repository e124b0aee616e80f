#pragma once
// A small fixed Sigstore trusted root and policies for the cosign fuzz targets: one Rekor log,
// one CT log, one CA and one TSA, made once with OpenSSL (keys are random per process; the
// fuzzers exercise parsing and the checks' control flow, not a particular signature).
#include <ferry/util/base64.hpp>
#include <ferry/verify/cosign.hpp>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>

namespace fuzz_sigstore {

inline std::string spki(EVP_PKEY* key)
{
  unsigned char* p = nullptr;
  int n = i2d_PUBKEY(key, &p);
  std::string out(reinterpret_cast<char*>(p), static_cast<std::size_t>(n > 0 ? n : 0));
  OPENSSL_free(p);
  return out;
}

inline std::string self_signed(EVP_PKEY* key)
{
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_NAME* name = X509_NAME_new();
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("fuzz root"), -1, -1, 0);
  X509_set_subject_name(x, name);
  X509_set_issuer_name(x, name);
  X509_NAME_free(name);
  ASN1_TIME_set(X509_getm_notBefore(x), 1700000000);
  ASN1_TIME_set(X509_getm_notAfter(x), 2000000000);
  X509_set_pubkey(x, key);
  X509_sign(x, key, EVP_sha256());
  unsigned char* p = nullptr;
  int n = i2d_X509(x, &p);
  std::string out(reinterpret_cast<char*>(p), static_cast<std::size_t>(n > 0 ? n : 0));
  OPENSSL_free(p);
  X509_free(x);
  return out;
}

struct Fixture {
  ferry::verify::cosign::Policy keyless, keyed;
  ferry::Descriptor image;
  std::string manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]})";
  ferry::verify::TimePoint now{std::chrono::seconds{1800000000}};

  Fixture()
  {
    using nlohmann::json;
    EVP_PKEY* k = EVP_EC_gen("P-256");
    std::string key = ferry::base64_encode(spki(k));
    std::string cert = ferry::base64_encode(self_signed(k));
    unsigned char md[32];
    std::string der = spki(k);
    EVP_Digest(der.data(), der.size(), md, nullptr, EVP_sha256(), nullptr);
    std::string key_id = ferry::base64_encode(std::string(reinterpret_cast<char*>(md), 32));
    json log = {{"baseUrl", "https://log.example.test"},
                {"hashAlgorithm", "SHA2_256"},
                {"publicKey", {{"rawBytes", key}, {"keyDetails", "PKIX_ECDSA_P256_SHA_256"}, {"validFor", {{"start", "2023-01-01T00:00:00Z"}}}}},
                {"logId", {{"keyId", key_id}}}};
    json ca = {{"subject", {{"commonName", "fuzz"}}},
               {"uri", "https://ca.example.test"},
               {"certChain", {{"certificates", {{{"rawBytes", cert}}}}}},
               {"validFor", {{"start", "2023-01-01T00:00:00Z"}}}};
    json root = {{"mediaType", "application/vnd.dev.sigstore.trustedroot+json;version=0.1"},
                 {"tlogs", {log}},
                 {"ctlogs", {log}},
                 {"certificateAuthorities", {ca}},
                 {"timestampAuthorities", {ca}}};
    auto tr = std::make_shared<ferry::verify::sigstore::TrustedRoot>(
        ferry::verify::sigstore::TrustedRoot::parse(root.dump(), "fuzz trusted root"));
    keyless.trusted_root = tr;
    keyless.identity = "signer@example.test";
    keyless.issuer_regexp = "^https://";
    keyed.trusted_root = tr;
    keyed.keys.push_back({"fuzz.pub", std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free)});
    keyed.use_signed_timestamps = true;
    image.media_type = "application/vnd.oci.image.manifest.v1+json";
    image.digest = ferry::Digest::of(manifest);
    image.size = manifest.size();
  }
};

inline const Fixture& fixture()
{
  static const Fixture f;
  return f;
}

} // namespace fuzz_sigstore

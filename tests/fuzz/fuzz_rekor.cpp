// Rekor transparency log entries (issue 15). The first byte picks the parser:
//   0: a bundle tlogEntries[] element → TlogEntry::from_json, then verify_set and
//      verify_inclusion against a fixed trusted root (the seeds' log key);
//   1: an entry body → RekorBody::parse;
//   2: a checkpoint note → verify_inclusion of a fixed one-leaf proof with that checkpoint.
#include "fuzz_common.hpp"

#include <ferry/verify/sigstore.hpp>

#include <nlohmann/json.hpp>

namespace {

using namespace ferry::verify::sigstore;

// The log of the seeds in corpus/rekor (a key the vectors generator made; public only).
const char* k_root = R"({"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1",
  "tlogs":[{"baseUrl":"https://rekor.example.test","hashAlgorithm":"SHA2_256",
    "publicKey":{"rawBytes":"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEakSEguGLckhAKm1tnnxiQeGfGp2qg9GEzXNUyYQvD8o3c7NuEtDA3GzwR67eICpwqzXwVHXjPJPh3fGxLEkMCw==",
      "keyDetails":"PKIX_ECDSA_P256_SHA_256","validFor":{"start":"2025-12-05T02:52:22.000Z"}},
    "logId":{"keyId":"FnYcrZpeoTU+OEW/rrBX5RvmBzfzeXa9Ppiq7o158Mc="}}]})";

const TrustedRoot& root()
{
  static const TrustedRoot r = TrustedRoot::parse(k_root, "fuzz root");
  return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size == 0) return 0;
  std::string_view in = as_view(data + 1, size - 1);
  switch (data[0] % 3) {
  case 0:
    expect_only_ferry_errors([&] {
      nlohmann::json j = nlohmann::json::parse(in.begin(), in.end(), nullptr, false);
      if (j.is_discarded()) return;
      TlogEntry e = TlogEntry::from_json(j, "fuzz");
      (void)verify_set(e, root());
      (void)verify_inclusion(e, root());
      (void)RekorBody::parse(e.canonicalized_body, "fuzz body");
    });
    break;
  case 1: expect_only_ferry_errors([&] { (void)RekorBody::parse(in, "fuzz"); }); break;
  default:
    expect_only_ferry_errors([&] {
      TlogEntry e;
      e.log_id = root().tlogs.at(0).key_id;
      e.canonicalized_body = "body";
      InclusionProof p;
      p.tree_size = 1;
      p.root_hash = rfc6962_leaf_hash(e.canonicalized_body);
      p.checkpoint = std::string(in);
      e.inclusion_proof = std::move(p);
      (void)verify_inclusion(e, root());
    });
  }
  return 0;
}

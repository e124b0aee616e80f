// Legacy cosign `.sig` / `.att` layers: verify_simple_signing and verify_attestation with
// arbitrary payload and annotation bytes. Input: a mode byte (bit 0: .att, bit 1: keyed),
// then the payload, a NUL, and the annotations as a JSON object of strings (anything else
// is taken as the value of the signature annotation).
#include "fuzz_common.hpp"
#include "fuzz_cosign_fixture.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size < 1) return 0;
  const auto& f = fuzz_sigstore::fixture();
  unsigned mode = data[0];
  auto rest = as_view(data + 1, size - 1);
  auto nul = rest.find('\0');
  std::string_view payload = rest.substr(0, nul);
  std::string_view annotations = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  ferry::Descriptor layer;
  layer.digest = ferry::Digest::of(payload);
  layer.size = payload.size();
  auto j = nlohmann::json::parse(annotations.begin(), annotations.end(), nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    for (auto& [k, v] : j.items())
      if (v.is_string()) layer.annotations[k] = v.get<std::string>();
  } else {
    layer.annotations[std::string(ferry::verify::cosign::k_annotation_signature)] = std::string(annotations);
  }
  const auto& policy = (mode & 2) ? f.keyed : f.keyless;
  auto v = (mode & 1) ? ferry::verify::cosign::verify_attestation(layer, payload, f.image, policy, f.now)
                      : ferry::verify::cosign::verify_simple_signing(layer, payload, f.image, policy, f.now);
  if (v.checks.size() != 8 || (!v.verified && v.reason.empty())) std::abort();
  return 0;
}

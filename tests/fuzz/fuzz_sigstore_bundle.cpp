// Sigstore bundles (v0.1–v0.3): verify_bundle on arbitrary bytes, keyless and keyed, with a
// fixed small trusted root. A verdict is the only outcome: nothing may throw or crash.
#include "fuzz_common.hpp"
#include "fuzz_cosign_fixture.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  const auto& f = fuzz_sigstore::fixture();
  auto bytes = as_view(data, size);
  auto a = ferry::verify::cosign::verify_bundle(bytes, f.image, &f.manifest, f.keyless, f.now);
  auto b = ferry::verify::cosign::verify_bundle(bytes, f.image, nullptr, f.keyed, f.now);
  if (a.checks.size() != 8 || b.checks.size() != 8) std::abort();
  if ((!a.verified && a.reason.empty()) || (!b.verified && b.reason.empty())) std::abort();
  return 0;
}

// Notation trust policy documents.
#include "fuzz_common.hpp"

#include <ferry/verify/trust_policy.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  expect_only_ferry_errors([&] { (void)ferry::verify::TrustPolicyDocument::parse(as_view(data, size), "fuzz"); });
  return 0;
}

// JWS signature envelopes (flattened JSON serialization): parsing, x5c chains, attributes.
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  expect_only_ferry_errors([&] { (void)ferry::verify::verify_jws(as_view(data, size)); });
  return 0;
}

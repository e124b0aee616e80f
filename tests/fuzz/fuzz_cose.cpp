// COSE_Sign1 signature envelopes: the CBOR decoder, headers, chains, attributes.
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  expect_only_ferry_errors([&] { (void)ferry::verify::verify_cose(as_view(data, size)); });
  return 0;
}

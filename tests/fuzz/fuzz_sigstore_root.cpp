// Sigstore trusted roots (protobuf-specs TrustedRoot JSON, issue 15).
#include "fuzz_common.hpp"

#include <ferry/verify/sigstore.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  expect_only_ferry_errors([&] { (void)ferry::verify::sigstore::TrustedRoot::parse(as_view(data, size), "fuzz"); });
  return 0;
}

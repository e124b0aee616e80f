// Image references: registry/repo[:tag][@digest], docker.io normalisation, platforms.
#include "fuzz_common.hpp"

#include <ferry/descriptor.hpp>
#include <ferry/reference.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  std::string text(as_view(data, size));
  expect_only_ferry_errors([&] {
    auto r = ferry::Reference::parse(text);
    (void)ferry::Reference::parse(r.str());  // what it prints parses again
  });
  expect_only_ferry_errors([&] { (void)ferry::Platform::parse(text); });
  return 0;
}

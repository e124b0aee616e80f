// WWW-Authenticate challenges (documented never to throw).
#include "fuzz_common.hpp"

#include <ferry/remote/auth.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  (void)ferry::remote::parse_www_authenticate(as_view(data, size));
  return 0;
}

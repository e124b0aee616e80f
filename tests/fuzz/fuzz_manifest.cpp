// Manifests and indexes under every media type ferry accepts, and their successors.
#include "fuzz_common.hpp"

#include <ferry/digest.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>

#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  if (size == 0) return 0;
  static const char* const types[] = {
      "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
      "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
      "", "application/octet-stream"};
  std::string type = types[data[0] % (sizeof types / sizeof *types)];
  std::string_view bytes = as_view(data + 1, size - 1);
  expect_only_ferry_errors([&] {
    auto m = ferry::Manifest::parse(bytes, type, "fuzz");
    ferry::Descriptor d;
    d.media_type = m.media_type;
    d.digest = ferry::Digest::of(bytes);
    d.size = bytes.size();
    (void)ferry::successors(d, bytes);
  });
  return 0;
}

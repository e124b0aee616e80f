// Bundles as tar or tar.zst bytes: the one archive codec and scanner (index.json,
// manifests, entry rules) at head and verify depth, the roots, and a pass over every blob
// the graph names.
#include "fuzz_common.hpp"

#include <ferry/bundle.hpp>
#include <ferry/manifest.hpp>
#include <ferry/store/layout.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
  static const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("ferry-fuzz-" + std::to_string(::getpid()) + ".tar");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  expect_only_ferry_errors([&] {
    for (auto depth : {ferry::ReadDepth::head, ferry::ReadDepth::verify}) {
      ferry::LayoutReader::Options options;
      options.depth = depth;
      auto reader = ferry::LayoutReader::open(path, ferry::BundleFormat::tar, options);
      (void)ferry::classify(*reader);
      std::vector<ferry::Descriptor> wanted;
      for (const auto& d : reader->metadata().all())
        for (const auto& child : ferry::successors(d, *reader->metadata().get(d.digest))) wanted.push_back(child);
      char sink[4096];
      reader->for_each_blob(wanted, [&](const ferry::Descriptor&, ferry::Reader& r) {
        while (r.read(sink, sizeof sink) > 0) {
        }
      });
    }
  });
  return 0;
}

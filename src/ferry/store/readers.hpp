#pragma once
// The bundle readers of each format (internal to libferry): a directory read through one
// directory descriptor, an archive through one file descriptor and ArchiveReader.
#include <ferry/store/layout.hpp>

namespace ferry::detail {

std::unique_ptr<LayoutReader> open_dir_layout(const std::filesystem::path& path, const LayoutReader::Options& options);
std::unique_ptr<LayoutReader> open_tar_layout(const std::filesystem::path& path, const LayoutReader::Options& options);

} // namespace ferry::detail

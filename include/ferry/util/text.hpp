#pragma once
/// Small text helpers for messages.
#include <cstdint>
#include <string>

namespace ferry {

/// "1.1 MiB" style sizes.
std::string human_bytes(std::uint64_t n);

} // namespace ferry

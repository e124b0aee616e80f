#pragma once
/// What every JSON reader of ferry checks before nlohmann/json parses, which recurses
/// (design §8: JSON bombs): manifests, Sigstore bundles and trusted roots, token responses.
#include <cstddef>
#include <string_view>

namespace ferry {

/// The deepest nesting of objects and arrays in `text`, strings skipped (a closer without an
/// opener never lowers it below 0). Linear, no allocation.
std::size_t json_depth(std::string_view text);

} // namespace ferry

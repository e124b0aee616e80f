#pragma once
/// What every JSON reader of ferry checks before nlohmann/json parses, which recurses
/// (design §8: JSON bombs): manifests, Sigstore bundles and trusted roots, token responses.
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace ferry {

/// The deepest nesting of objects and arrays in `text`, strings skipped (a closer without an
/// opener never lowers it below 0). Linear, no allocation.
std::size_t json_depth(std::string_view text);

/// For ferry's own strict documents (an inventory, a bundle's record): throws
/// Errc::invalid_manifest "WHERE: not a JSON object" or "WHERE: unknown key "K"" unless `j`
/// is an object whose every key is one of `keys`.
void only_keys(const nlohmann::json& j, std::initializer_list<const char*> keys, const std::string& where);

} // namespace ferry

#pragma once
// Internal helpers shared by the Sigstore sources (sigstore_root.cpp, rekor.cpp, sct.cpp,
// sigstore_tsa.cpp). Not installed; not part of the contract in sigstore.hpp.
#include <ferry/error.hpp>
#include <ferry/verify/openssl.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::verify::sigstore::detail {

inline constexpr std::size_t k_max_json_bytes = 16u << 20;  // 16 MiB
inline constexpr std::size_t k_max_list = 1000;             // entries per list
inline constexpr int k_max_json_depth = 64;

[[noreturn]] void malformed(const std::string& where, const std::string& why);

/// Parses JSON text (bounded size and nesting); throws invalid_manifest naming `where`.
nlohmann::json parse_json(std::string_view text, const std::string& where);

/// Strict standard base64 (padding optional) into raw bytes; throws invalid_manifest.
std::string b64(std::string_view text, const std::string& where);
/// The string member `key` of `obj` (required unless `optional` is set: then "" when absent).
const std::string* get_string(const nlohmann::json& obj, const char* key, const std::string& where, bool required);
/// A base64 string member decoded; "" when absent and not required.
std::string get_b64(const nlohmann::json& obj, const char* key, const std::string& where, bool required);
/// int64 given as a JSON number or a decimal string (protobuf JSON); absent → `fallback` unless required.
std::int64_t get_int64(const nlohmann::json& obj, const char* key, const std::string& where, bool required,
                       std::int64_t fallback = 0);
/// The object member `key`, or null when absent and not required.
const nlohmann::json* get_object(const nlohmann::json& obj, const char* key, const std::string& where, bool required);
/// The array member `key` (bounded to k_max_list), or null when absent and not required.
const nlohmann::json* get_array(const nlohmann::json& obj, const char* key, const std::string& where, bool required);

std::string sha256(std::string_view data);
std::string hex(std::string_view bytes);

} // namespace ferry::verify::sigstore::detail

#pragma once
/// Base64 with the standard alphabet (RFC 4648 §4).
#include <string>
#include <string_view>

namespace ferry {

/// Encodes bytes as padded base64 (RFC 4648 §4).
std::string base64_encode(std::string_view data);

/// Decodes base64 (RFC 4648 §4); padding is optional. Throws Errc::invalid_argument on
/// characters outside the alphabet, misplaced padding or an impossible length. The
/// message never quotes the input (it may be a credential).
std::string base64_decode(std::string_view text);

} // namespace ferry

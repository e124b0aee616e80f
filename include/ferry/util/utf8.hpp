#pragma once
/// UTF-8 well-formedness (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF),
/// shared by the CBOR decoder, the distinguished-name parser and the HTML report.
#include <cstddef>
#include <string_view>

namespace ferry {

/// Length (1-4) of the well-formed UTF-8 sequence starting at `s[i]`, or 0 when it is not one.
std::size_t utf8_sequence_length(std::string_view s, std::size_t i);

/// True when all of `s` is well-formed UTF-8.
bool valid_utf8(std::string_view s);

} // namespace ferry

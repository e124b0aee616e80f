#pragma once
/// Small text helpers for messages.
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

/// "1.1 MiB" style sizes.
std::string human_bytes(std::uint64_t n);

/// A count and its noun, singular for exactly one: counted(1, "blob") is "1 blob",
/// counted(2, "blob") "2 blobs", counted(3, "entry", "entries") "3 entries". Every count in
/// human output goes through it, so "1 blobs" never appears.
std::string counted(std::uint64_t n, std::string_view singular, std::string_view plural = {});

/// True for the code points a terminal must never see raw in text that came from outside
/// (design §8): C0 controls (all of them, newline and tab included), DEL, C1 controls, the
/// Unicode bidi controls (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069), the line
/// and paragraph separators U+2028/U+2029, and invisible format characters that hide or fake
/// text (U+00AD, U+180E, U+200B, U+2060-U+2064, U+206A-U+206F, U+FEFF, U+FFF9-U+FFFB and
/// the tag characters U+E0000-U+E007F). U+200C/U+200D (ZWNJ, ZWJ) are kept: scripts and
/// emoji need them. Reference: Unicode UAX #9 §2 (explicit directional formatting
/// characters), Unicode TR #36 §2 (invisible characters, bidi spoofing).
bool unsafe_for_terminal(char32_t c);

/// The same for `seq`, one well-formed UTF-8 sequence as utf8_sequence_length delimits it.
bool unsafe_for_terminal(std::string_view seq);

/// `s` made safe to print on a terminal, unambiguously and reversibly: a backslash as `\\`,
/// a byte below 0x80 that `unsafe_for_terminal` names as `\x..`, any other such code point as
/// `\u....` (`\U........` past U+FFFF), and each byte of an ill-formed UTF-8 sequence as
/// `\x..` (hex in lowercase). Everything else — printable ASCII, well-formed printable UTF-8
/// such as ✓, é or 中 — passes unchanged. The result is well-formed UTF-8 holding no control
/// character: it can never start a line, move the cursor or reorder what follows.
std::string escape_for_terminal(std::string_view s);

/// `text` with ASCII letters in lower case (header names, URL schemes, registry hosts).
std::string to_lower(std::string_view text);

/// A name from outside (an archive entry, a file) in double quotes for an error message,
/// its control characters as `\x..`: a NUL would otherwise end the message early, since
/// messages travel as C strings. The CLI escapes the whole line again when it prints it.
std::string quote_name(std::string_view s);

} // namespace ferry

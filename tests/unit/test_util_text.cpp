#include <doctest/doctest.h>

#include <ferry/util/text.hpp>
#include <ferry/util/utf8.hpp>

#include <cstdio>
#include <string>

using namespace ferry;

TEST_CASE("escape_for_terminal: printable text, ASCII or not, passes unchanged")
{
  CHECK(escape_for_terminal("") == "");
  CHECK(escape_for_terminal("registry.example:5000/team/app:v1 sha256:ab (1.2 MiB) ~!@#$%^&*()") ==
        "registry.example:5000/team/app:v1 sha256:ab (1.2 MiB) ~!@#$%^&*()");
  // ✓ ✗ é 中文 🔑, the box drawing of inspect's tree, ZWJ (emoji sequences) and ZWNJ (Persian).
  std::string kept = "\xE2\x9C\x93 \xE2\x9C\x97 \xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x94\x91 \xE2\x94\x94\xE2\x94\x80\xE2\x94\x80 "
                     "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x92\xBB \xD9\x85\xE2\x80\x8C\xDB\x8C";
  CHECK(escape_for_terminal(kept) == kept);
  CHECK(escape_for_terminal("\xC2\xA0\xC2\xA9\xEF\xBF\xBD") == "\xC2\xA0\xC2\xA9\xEF\xBF\xBD");  // NBSP © U+FFFD
}

TEST_CASE("escape_for_terminal: every C0 control and DEL as \\x.., newline and tab included")
{
  CHECK(escape_for_terminal("a\nb") == "a\\x0ab");
  CHECK(escape_for_terminal("\r\t\b\a\f\v") == "\\x0d\\x09\\x08\\x07\\x0c\\x0b");
  CHECK(escape_for_terminal("\x1b[2J\x1b]0;title\x07") == "\\x1b[2J\\x1b]0;title\\x07");
  CHECK(escape_for_terminal(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(escape_for_terminal("\x7f") == "\\x7f");
  for (int c = 0; c < 0x20; ++c) {
    std::string in(1, static_cast<char>(c));
    char want[8];
    std::snprintf(want, sizeof want, "\\x%02x", c);
    CAPTURE(c);
    CHECK(escape_for_terminal(in) == want);
  }
}

TEST_CASE("escape_for_terminal: C1 controls, bidi controls and invisible format characters as \\u....")
{
  CHECK(escape_for_terminal("\xC2\x80") == "\\u0080");
  CHECK(escape_for_terminal("\xC2\x9B" "2J") == "\\u009b2J");  // CSI
  CHECK(escape_for_terminal("\xC2\x9F") == "\\u009f");
  // U+202E RIGHT-TO-LEFT OVERRIDE: "app\u202Egnp.exe" must not read "appexe.png".
  CHECK(escape_for_terminal("app\xE2\x80\xAEgnp.exe") == "app\\u202egnp.exe");
  struct Case {
    const char* utf8;
    const char* escaped;
  };
  for (const Case& c : {Case{"\xD8\x9C", "\\u061c"}, Case{"\xE2\x80\x8E", "\\u200e"}, Case{"\xE2\x80\x8F", "\\u200f"},
                        Case{"\xE2\x80\xAA", "\\u202a"}, Case{"\xE2\x80\xAB", "\\u202b"}, Case{"\xE2\x80\xAC", "\\u202c"},
                        Case{"\xE2\x80\xAD", "\\u202d"}, Case{"\xE2\x81\xA6", "\\u2066"}, Case{"\xE2\x81\xA7", "\\u2067"},
                        Case{"\xE2\x81\xA8", "\\u2068"}, Case{"\xE2\x81\xA9", "\\u2069"}, Case{"\xE2\x80\xA8", "\\u2028"},
                        Case{"\xE2\x80\xA9", "\\u2029"}, Case{"\xE2\x80\x8B", "\\u200b"}, Case{"\xEF\xBB\xBF", "\\ufeff"},
                        Case{"\xC2\xAD", "\\u00ad"}, Case{"\xE2\x81\xA0", "\\u2060"}, Case{"\xEF\xBF\xB9", "\\ufff9"},
                        Case{"\xF3\xA0\x80\x81", "\\U000e0001"}, Case{"\xF3\xA0\x81\xBF", "\\U000e007f"}}) {
    CAPTURE(c.escaped);
    CHECK(escape_for_terminal(c.utf8) == c.escaped);
  }
  CHECK(unsafe_for_terminal(0x202E));
  CHECK_FALSE(unsafe_for_terminal(0x200D));
  CHECK_FALSE(unsafe_for_terminal(0x2713));
  CHECK_FALSE(unsafe_for_terminal(0xE0080));  // past the tag characters
  CHECK(unsafe_for_terminal(std::string_view("\xE2\x80\xAE")));
  CHECK(unsafe_for_terminal(std::string_view("\xC2\x85")));
  CHECK_FALSE(unsafe_for_terminal(std::string_view("\xE2\x9C\x93")));
  CHECK_FALSE(unsafe_for_terminal(std::string_view("")));
}

TEST_CASE("escape_for_terminal: ill-formed UTF-8 byte by byte, a backslash doubled")
{
  CHECK(escape_for_terminal("\xff") == "\\xff");
  CHECK(escape_for_terminal("caf\xE9") == "caf\\xe9");                    // Latin-1, not UTF-8
  CHECK(escape_for_terminal("\xC0\xAF") == "\\xc0\\xaf");                 // overlong '/'
  CHECK(escape_for_terminal("\xED\xA0\x80") == "\\xed\\xa0\\x80");        // a surrogate
  CHECK(escape_for_terminal("\xE2\x82" "ok") == "\\xe2\\x82ok");         // truncated, then ASCII
  CHECK(escape_for_terminal("\x9b" "2J") == "\\x9b2J");                  // a raw 8-bit CSI byte
  CHECK(escape_for_terminal("a\\b") == "a\\\\b");
  // Unambiguous: the escape of a backslash followed by "x1b" differs from the escape of ESC.
  CHECK(escape_for_terminal("\\x1b") != escape_for_terminal("\x1b"));
  CHECK(escape_for_terminal("\\x1b") == "\\\\x1b");
}

TEST_CASE("escape_for_terminal: the result is printable UTF-8, whatever the input")
{
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  all += "\xE2\x80\xAE\xE2\x81\xA6\xC2\x85\xEF\xBB\xBF";
  std::string out = escape_for_terminal(all);
  CHECK(valid_utf8(out));
  for (unsigned char c : out) {
    CAPTURE(static_cast<int>(c));
    CHECK(c >= 0x20);
    CHECK(c != 0x7F);
  }
  CHECK(out.find("\xE2\x80\xAE") == std::string::npos);
  CHECK(out.find("\xC2\x85") == std::string::npos);
}

TEST_CASE("counted: singular for exactly one, the plural otherwise")
{
  CHECK(ferry::counted(0, "blob") == "0 blobs");
  CHECK(ferry::counted(1, "blob") == "1 blob");
  CHECK(ferry::counted(2, "blob") == "2 blobs");
  CHECK(ferry::counted(1, "entry", "entries") == "1 entry");
  CHECK(ferry::counted(500000, "entry", "entries") == "500000 entries");
  CHECK(ferry::counted(1, "repository", "repositories") == "1 repository");
}

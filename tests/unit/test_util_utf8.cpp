#include <doctest/doctest.h>

#include <ferry/util/utf8.hpp>

#include <string>

using namespace ferry;

TEST_CASE("utf8: well-formed sequences and every kind of ill-formed one (RFC 3629)")
{
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain ascii"));
  CHECK(valid_utf8("\xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\x91 \xEF\xBF\xBD"));  // é € 🔑 U+FFFD
  CHECK(utf8_sequence_length("\xF0\x9F\x94\x91", 0) == 4);
  CHECK(utf8_sequence_length("a\xE2\x82\xAC", 1) == 3);
  for (const std::string bad : {"\x80", "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF0\x80\x80\xAF",
                                "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xFF", "\xC3", "\xE2\x82", "\xF0\x9F\x94",
                                "\xE2\x28\xA1"}) {
    CAPTURE(bad);
    CHECK_FALSE(valid_utf8(bad));
    CHECK_FALSE(valid_utf8("ok " + bad + " ok"));
    CHECK(utf8_sequence_length(bad, 0) == 0);
  }
}

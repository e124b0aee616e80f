#include <doctest/doctest.h>

#include <ferry/error.hpp>
#include <ferry/verify/cbor.hpp>

#include <string>

using namespace ferry;
using namespace ferry::verify;

namespace {

std::string hex(std::string_view h)
{
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  return out;
}

void check_rejected(const std::string& data, const std::string& needle)
{
  CAPTURE(needle);
  try {
    cbor::decode(data);
    FAIL("decoded malformed CBOR");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_argument);
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
  }
}

} // namespace

TEST_CASE("cbor: integers (RFC 8949 Appendix A)")
{
  CHECK(cbor::decode(hex("00")).as_int() == 0);
  CHECK(cbor::decode(hex("17")).as_int() == 23);
  CHECK(cbor::decode(hex("1818")).as_int() == 24);
  CHECK(cbor::decode(hex("1903e8")).as_int() == 1000);
  CHECK(cbor::decode(hex("1a000f4240")).as_int() == 1000000);
  CHECK(cbor::decode(hex("1b000000e8d4a51000")).as_int() == 1000000000000);
  CHECK(cbor::decode(hex("20")).as_int() == -1);
  CHECK(cbor::decode(hex("3863")).as_int() == -100);
  CHECK(cbor::decode(hex("3903e7")).as_int() == -1000);
  auto big = cbor::decode(hex("1bffffffffffffffff"));
  CHECK(big.type == cbor::Type::unsigned_int);
  CHECK(big.arg == UINT64_MAX);
  CHECK_FALSE(big.as_int().has_value());
  CHECK_FALSE(cbor::decode(hex("3bffffffffffffffff")).as_int().has_value());
}

TEST_CASE("cbor: strings, arrays, maps, simple values and floats")
{
  auto b = cbor::decode(hex("4401020304"));
  CHECK(b.type == cbor::Type::bytes);
  CHECK(b.content == hex("01020304"));
  auto t = cbor::decode(hex("6449455446"));
  CHECK(t.type == cbor::Type::text);
  CHECK(t.content == "IETF");
  CHECK(cbor::decode(hex("62c3bc")).content == "\xc3\xbc");
  auto a = cbor::decode(hex("8301820203820405"));
  REQUIRE(a.type == cbor::Type::array);
  REQUIRE(a.items.size() == 3);
  CHECK(a.items[1].items[1].as_int() == 3);
  auto m = cbor::decode(hex("a201020304"));
  REQUIRE(m.type == cbor::Type::map);
  REQUIRE(m.find(1) != nullptr);
  CHECK(m.find(1)->as_int() == 2);
  CHECK(m.find(5) == nullptr);
  auto tm = cbor::decode(hex("a26161016162820203"));
  CHECK(tm.find(std::string_view("b"))->items.size() == 2);
  CHECK(cbor::decode(hex("f4")).arg == 20);
  CHECK(cbor::decode(hex("f5")).arg == 21);
  CHECK(cbor::decode(hex("f6")).is_null());
  CHECK(cbor::decode(hex("f93c00")).float_value == 1.0);
  CHECK(cbor::decode(hex("f9c400")).float_value == -4.0);
  CHECK(cbor::decode(hex("fa47c35000")).float_value == 100000.0);
  CHECK(cbor::decode(hex("fb3ff199999999999a")).float_value == doctest::Approx(1.1));
}

TEST_CASE("cbor: tags keep their numbers; raw spans cover each item's encoding")
{
  auto t = cbor::decode(hex("c11a514b67b0"));
  REQUIRE(t.type == cbor::Type::tag);
  CHECK(t.arg == 1);
  CHECK(t.items[0].as_int() == 1363896240);
  const std::string cose_bytes = hex("d28443a10126a0f640");  // raw views point into it
  auto cose = cbor::decode(cose_bytes);
  CHECK(cose.arg == 18);
  CHECK(cbor::contains_tag(cose));
  const auto& arr = cose.items[0];
  CHECK_FALSE(cbor::contains_tag(arr));
  CHECK(arr.items[0].raw == hex("43a10126"));
  CHECK(arr.items[0].content == hex("a10126"));
  CHECK(arr.items[2].is_null());
  // A non-minimal length prefix is kept as is in raw.
  const std::string nm_bytes = hex("580203ff");
  auto nm = cbor::decode(nm_bytes);
  CHECK(nm.raw == hex("580203ff"));
  CHECK(nm.content == hex("03ff"));
}

TEST_CASE("cbor: malformed and hostile input is rejected")
{
  check_rejected(hex("5f42010243030405ff"), "indefinite");  // indefinite bstr
  check_rejected(hex("9fff"), "indefinite");
  check_rejected(hex("bfff"), "indefinite");
  check_rejected(hex("a201020103"), "duplicate map key");
  check_rejected(hex("a2616101616102"), "duplicate map key");
  check_rejected(hex("0000"), "extraneous data");
  check_rejected(hex("44010203"), "unexpected EOF");
  check_rejected(hex("1a0000"), "unexpected EOF");
  check_rejected(hex("9b00000000ffffffff"), "unexpected EOF");   // array length lies
  check_rejected(hex("5b00000000ffffffff00"), "unexpected EOF");  // bstr length lies
  check_rejected(hex("bb00000000ffffffff"), "unexpected EOF");
  check_rejected(hex("1c"), "additional information");
  check_rejected(hex("62c328"), "UTF-8");
  check_rejected(hex("f817"), "simple value");
  check_rejected("", "EOF");
  std::string deep(40, '\x81');
  deep += '\x00';
  check_rejected(deep, "nested level");
  cbor::Limits small;
  small.max_items = 3;
  CHECK_THROWS_AS(cbor::decode(hex("8401020304"), small), Error);
}

TEST_CASE("cbor: encoders produce shortest forms and round-trip")
{
  CHECK(cbor::encode_uint(0) == hex("00"));
  CHECK(cbor::encode_uint(24) == hex("1818"));
  CHECK(cbor::encode_uint(65536) == hex("1a00010000"));
  CHECK(cbor::encode_uint(4294967296ULL) == hex("1b0000000100000000"));
  CHECK(cbor::encode_int(-37) == hex("3824"));
  CHECK(cbor::encode_int(-1) == hex("20"));
  CHECK(cbor::encode_text("Signature1") == hex("6a5369676e617475726531"));
  std::string m = cbor::encode_map({{cbor::encode_int(1), cbor::encode_int(-7)},
                                    {cbor::encode_text("k"), cbor::encode_tag(1, cbor::encode_int(1700000000))}});
  auto d = cbor::decode(m);
  CHECK(d.find(1)->as_int() == -7);
  CHECK(d.find(std::string_view("k"))->items[0].as_int() == 1700000000);
  CHECK(d.raw == m);
}

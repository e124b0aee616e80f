#include <doctest/doctest.h>

#include <ferry/error.hpp>
#include <ferry/util/base64.hpp>

#include <random>

using namespace ferry;

TEST_CASE("base64: RFC 4648 test vectors")
{
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},        {"fo", "Zm8="},          {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    CHECK(base64_encode(plain) == encoded);
    CHECK(base64_decode(encoded) == plain);
  }
}

TEST_CASE("base64: missing padding is accepted")
{
  CHECK(base64_decode("Zg") == "f");
  CHECK(base64_decode("Zm8") == "fo");
  CHECK(base64_decode("Zm9vYmE") == "fooba");
  CHECK(base64_decode("YWxpY2U6czNjcmV0") == "alice:s3cret");
}

TEST_CASE("base64: malformed input throws invalid_argument")
{
  for (const char* bad : {"Z", "Zm9vY", "Zm9v!", "Zm=v", "=Zm9", "Zg===", "Zm9v\n", "Zg=", "Z==="}) {
    CAPTURE(bad);
    try {
      base64_decode(bad);
      FAIL("no exception");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::invalid_argument);
    }
  }
}

TEST_CASE("base64: binary round trip")
{
  std::mt19937 rng(42);
  for (int len = 0; len < 70; ++len) {
    std::string data;
    for (int i = 0; i < len; ++i) data += static_cast<char>(rng() & 0xff);
    std::string encoded = base64_encode(data);
    CHECK(encoded.size() % 4 == 0);
    CHECK(base64_decode(encoded) == data);
  }
}

#include <doctest/doctest.h>

#include <ferry/digest.hpp>
#include <ferry/error.hpp>

using namespace ferry;

TEST_CASE("digest: known sha256 and sha512 values")
{
  CHECK(Digest::of("").str() == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Digest::of("{}").str() == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  CHECK(Digest::of("abc", "sha512").str() ==
        "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd"
        "454d4423643ce80e2a9ac94fa54ca49f");
}

TEST_CASE("digest: streaming equals one shot")
{
  Hasher h;
  h.update("hello ");
  h.update("world");
  CHECK(h.finish() == Digest::of("hello world"));
}

TEST_CASE("digest: parse rejects malformed input")
{
  CHECK_NOTHROW(Digest::parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  CHECK_THROWS_AS(Digest::parse("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"), Error);
  CHECK_THROWS_AS(Digest::parse("sha256:abc"), Error);
  CHECK_THROWS_AS(Digest::parse("md5:d41d8cd98f00b204e9800998ecf8427e"), Error);
  CHECK_THROWS_AS(Digest::parse("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), Error);
  CHECK_THROWS_AS(Digest::parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g"), Error);
  try {
    Digest::parse("blake3:00");
    FAIL("expected a throw");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::invalid_digest);
    CHECK(std::string(e.what()).find("blake3") != std::string::npos);
  }
}

TEST_CASE("digest: fallback tag name")
{
  auto d = Digest::of("x");
  CHECK(d.fallback_tag() == "sha256-" + d.hex());
}

TEST_CASE("verifying reader: accepts exact content, rejects wrong bytes and sizes")
{
  auto read = [](std::string data, const Digest& d, std::uint64_t size) {
    VerifyingReader r(std::make_unique<StringReader>(std::move(data)), d, size, "blob");
    return read_all(r, 1 << 20);
  };
  auto d = Digest::of("content");
  CHECK(read("content", d, 7) == "content");
  CHECK_THROWS_WITH_AS(read("contenT", d, 7), doctest::Contains("digest"), Error);
  CHECK_THROWS_AS(read("content!", d, 7), Error);
  CHECK_THROWS_AS(read("conten", d, 7), Error);
  CHECK_THROWS_AS(read("content", d, 6), Error);
}

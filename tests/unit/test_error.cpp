#include <doctest/doctest.h>

#include <ferry/error.hpp>

#include <string>

using namespace ferry;

namespace {

std::string rethrown(const std::string& inner, const std::string& context)
{
  try {
    try {
      throw Error(Errc::digest_mismatch, inner);
    } catch (...) {
      rethrow_with_context(context);
    }
  } catch (const Error& e) {
    CHECK(e.code() == Errc::digest_mismatch);
    return e.what();
  }
  return {};
}

} // namespace

TEST_CASE("rethrow_with_context: adds the context once")
{
  CHECK(rethrown("content has digest sha256:1", "reg/app:v1") == "reg/app:v1: content has digest sha256:1");
  // An error that already names the context (the repository names the ref it fetched) is
  // not prefixed again: "reg/app:v1: reg/app:v1: ..." says nothing more.
  CHECK(rethrown("reg/app:v1: Docker-Content-Digest lies", "reg/app:v1") == "reg/app:v1: Docker-Content-Digest lies");
  CHECK(rethrown("reg/app:v10: x", "reg/app:v1") == "reg/app:v1: reg/app:v10: x");
}

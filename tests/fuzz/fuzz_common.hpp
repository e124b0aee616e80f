#pragma once
// Shared by the libFuzzer targets (issue 6): the only exceptions a parser may throw on
// hostile input are ferry's own errors; anything else escaping (std::out_of_range, a JSON
// type error, a crash or a sanitizer report) is a finding.
#include <ferry/error.hpp>
#include <ferry/verify/envelope.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

template <typename Fn>
void expect_only_ferry_errors(Fn&& fn)
{
  try {
    fn();
  } catch (const ferry::Error&) {
  } catch (const ferry::verify::IntegrityError&) {
  }
}

inline std::string_view as_view(const std::uint8_t* data, std::size_t size)
{
  return {reinterpret_cast<const char*>(data), size};
}

#include <ferry/util/base64.hpp>

#include <ferry/error.hpp>

#include <array>
#include <cstdint>

namespace ferry {

namespace {

constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<signed char, 256> make_decode_table()
{
  std::array<signed char, 256> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(k_alphabet[i])] = static_cast<signed char>(i);
  return table;
}

constexpr auto k_decode = make_decode_table();

[[noreturn]] void bad_base64(const char* why)
{
  throw Error(Errc::invalid_argument, std::string("invalid base64: ") + why);
}

} // namespace

std::string base64_encode(std::string_view data)
{
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    auto b0 = static_cast<unsigned char>(data[i]);
    auto b1 = static_cast<unsigned char>(data[i + 1]);
    auto b2 = static_cast<unsigned char>(data[i + 2]);
    out += k_alphabet[b0 >> 2];
    out += k_alphabet[((b0 & 0x03) << 4) | (b1 >> 4)];
    out += k_alphabet[((b1 & 0x0f) << 2) | (b2 >> 6)];
    out += k_alphabet[b2 & 0x3f];
  }
  std::size_t rest = data.size() - i;
  if (rest == 1) {
    auto b0 = static_cast<unsigned char>(data[i]);
    out += k_alphabet[b0 >> 2];
    out += k_alphabet[(b0 & 0x03) << 4];
    out += "==";
  } else if (rest == 2) {
    auto b0 = static_cast<unsigned char>(data[i]);
    auto b1 = static_cast<unsigned char>(data[i + 1]);
    out += k_alphabet[b0 >> 2];
    out += k_alphabet[((b0 & 0x03) << 4) | (b1 >> 4)];
    out += k_alphabet[(b1 & 0x0f) << 2];
    out += '=';
  }
  return out;
}

std::string base64_decode(std::string_view text)
{
  // Strip up to two '=' of padding; padding anywhere else is an error.
  std::size_t padding = 0;
  while (!text.empty() && text.back() == '=' && padding < 2) {
    text.remove_suffix(1);
    ++padding;
  }
  if (padding != 0 && (text.size() + padding) % 4 != 0) bad_base64("wrong padding");
  if (text.size() % 4 == 1) bad_base64("impossible length");

  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = k_decode[static_cast<unsigned char>(c)];
    if (v < 0) bad_base64(c == '=' ? "misplaced padding" : "character outside the alphabet");
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  // Non-zero leftover bits (a non-canonical encoding) are accepted, as Go's StdEncoding
  // does, since docker config.json files are written by Go tools (RFC 4648 §3.5).
  return out;
}

} // namespace ferry

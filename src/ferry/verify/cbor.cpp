#include <ferry/verify/cbor.hpp>

#include <algorithm>
#include <set>

#include <ferry/error.hpp>
#include <ferry/util/utf8.hpp>

#include <cmath>
#include <cstring>
#include <limits>

namespace ferry::verify::cbor {

namespace {

[[noreturn]] void fail(const std::string& what) { throw Error(Errc::invalid_argument, "cbor: " + what); }

class Decoder {
public:
  Decoder(std::string_view data, const Limits& limits) : m_data(data), m_limits(limits) {}

  Item item(int depth)
  {
    if (depth > m_limits.max_depth) fail("exceeded max nested level " + std::to_string(m_limits.max_depth));
    if (++m_count > m_limits.max_items) fail("too many data items");
    std::size_t start = m_pos;
    if (m_pos >= m_data.size()) fail("unexpected EOF");
    auto initial = static_cast<unsigned char>(m_data[m_pos++]);
    int major = initial >> 5;
    int info = initial & 0x1f;
    Item out;
    if (info == 31) fail("indefinite-length items are not allowed");
    if (info >= 28) fail("invalid additional information " + std::to_string(info));
    if (major == 7) {
      simple_or_float(out, info);
    } else {
      std::uint64_t arg = argument(info);
      out.arg = arg;
      switch (major) {
      case 0: out.type = Type::unsigned_int; break;
      case 1: out.type = Type::negative_int; break;
      case 2:
      case 3:
        out.type = major == 2 ? Type::bytes : Type::text;
        if (arg > m_data.size() - m_pos) fail("unexpected EOF");
        out.content.assign(m_data.substr(m_pos, static_cast<std::size_t>(arg)));
        m_pos += static_cast<std::size_t>(arg);
        if (major == 3 && !valid_utf8(out.content)) fail("invalid UTF-8 string");
        break;
      case 4:
        out.type = Type::array;
        // Each element takes at least one byte: a length beyond the input is a lie.
        if (arg > m_data.size() - m_pos) fail("unexpected EOF");
        out.items.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(arg, 64)));  // grows with what is really there
        for (std::uint64_t i = 0; i < arg; ++i) out.items.push_back(item(depth + 1));
        break;
      case 5:
        out.type = Type::map;
        if (arg > (m_data.size() - m_pos) / 2) fail("unexpected EOF");
        out.entries.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(arg, 64)));
        {
          std::set<std::string> seen;  // duplicate keys found in O(n log n), not pairwise
          for (std::uint64_t i = 0; i < arg; ++i) {
            Item key = item(depth + 1);
            if (!seen.insert(key_identity(key)).second)
              fail("found duplicate map key \"" + key_text(key) + "\" at map element index " + std::to_string(i));
            Item value = item(depth + 1);
            out.entries.push_back(Entry{std::move(key), std::move(value)});
          }
        }
        break;
      case 6:
        out.type = Type::tag;
        out.items.push_back(item(depth + 1));
        break;
      }
    }
    out.raw = m_data.substr(start, m_pos - start);
    return out;
  }

  std::size_t pos() const { return m_pos; }

private:
  std::uint64_t argument(int info)
  {
    if (info < 24) return static_cast<std::uint64_t>(info);
    std::size_t n = std::size_t{1} << (info - 24);
    if (n > m_data.size() - m_pos) fail("unexpected EOF");
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(m_data[m_pos++]);
    return v;
  }

  void simple_or_float(Item& out, int info)
  {
    if (info < 24) {
      out.type = Type::simple;
      out.arg = static_cast<std::uint64_t>(info);
      return;
    }
    if (info == 24) {
      std::uint64_t v = argument(info);
      if (v < 32) fail("invalid simple value " + std::to_string(v) + " for type primitives");
      out.type = Type::simple;
      out.arg = v;
      return;
    }
    std::uint64_t bits = argument(info);
    out.type = Type::floating;
    out.arg = bits;
    if (info == 25) {
      int exp = static_cast<int>((bits >> 10) & 0x1f);
      double mant = static_cast<double>(bits & 0x3ff);
      double v;
      if (exp == 0) v = std::ldexp(mant, -24);
      else if (exp != 31) v = std::ldexp(mant + 1024, exp - 25);
      else v = mant == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
      out.float_value = (bits & 0x8000) ? -v : v;
    } else if (info == 26) {
      auto u = static_cast<std::uint32_t>(bits);
      float f;
      std::memcpy(&f, &u, sizeof f);
      out.float_value = f;
    } else {
      double d;
      std::memcpy(&d, &bits, sizeof d);
      out.float_value = d;
    }
  }

  // Two keys are the same when their type and value are (integers by value, whatever their
  // encoded width; other items by their encoding).
  static std::string key_identity(const Item& k)
  {
    std::string id(1, static_cast<char>('a' + static_cast<int>(k.type)));
    switch (k.type) {
    case Type::unsigned_int:
    case Type::negative_int:
    case Type::simple: return id + std::to_string(k.arg);
    case Type::bytes:
    case Type::text: return id + k.content;
    default: return id + std::string(k.raw);
    }
  }

  static std::string key_text(const Item& k)
  {
    if (k.type == Type::text) return k.content;
    if (auto v = k.as_int()) return std::to_string(*v);
    return "?";
  }

  std::string_view m_data;
  Limits m_limits;
  std::size_t m_pos = 0;
  std::size_t m_count = 0;
};

} // namespace

std::optional<std::int64_t> Item::as_int() const
{
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (type == Type::unsigned_int && arg <= max) return static_cast<std::int64_t>(arg);
  if (type == Type::negative_int && arg <= max) return -1 - static_cast<std::int64_t>(arg);
  return std::nullopt;
}

const Item* Item::find(std::int64_t label) const
{
  if (type != Type::map) return nullptr;
  for (const auto& [k, v] : entries)
    if (k.is_int() && k.as_int() == label) return &v;
  return nullptr;
}

const Item* Item::find(std::string_view label) const
{
  if (type != Type::map) return nullptr;
  for (const auto& [k, v] : entries)
    if (k.type == Type::text && k.content == label) return &v;
  return nullptr;
}

Item decode(std::string_view data, const Limits& limits)
{
  Decoder d(data, limits);
  Item out = d.item(0);
  if (d.pos() != data.size())
    fail(std::to_string(data.size() - d.pos()) + " bytes of extraneous data starting at index " + std::to_string(d.pos()));
  return out;
}

bool contains_tag(const Item& item)
{
  if (item.type == Type::tag) return true;
  for (const auto& i : item.items)
    if (contains_tag(i)) return true;
  for (const auto& [k, v] : item.entries)
    if (contains_tag(k) || contains_tag(v)) return true;
  return false;
}

std::string encode_head(int major, std::uint64_t arg)
{
  std::string out;
  auto m = static_cast<unsigned char>(major << 5);
  auto put = [&](int info, int n) {
    out.push_back(static_cast<char>(m | info));
    for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<char>((arg >> (8 * i)) & 0xff));
  };
  if (arg < 24) out.push_back(static_cast<char>(m | arg));
  else if (arg <= 0xff) put(24, 1);
  else if (arg <= 0xffff) put(25, 2);
  else if (arg <= 0xffffffffu) put(26, 4);
  else put(27, 8);
  return out;
}

std::string encode_uint(std::uint64_t v) { return encode_head(0, v); }

std::string encode_int(std::int64_t v)
{
  if (v >= 0) return encode_head(0, static_cast<std::uint64_t>(v));
  return encode_head(1, static_cast<std::uint64_t>(-1 - v));
}

std::string encode_bytes(std::string_view b) { return encode_head(2, b.size()) + std::string(b); }
std::string encode_text(std::string_view t) { return encode_head(3, t.size()) + std::string(t); }

std::string encode_array(const std::vector<std::string>& encoded_items)
{
  std::string out = encode_head(4, encoded_items.size());
  for (const auto& i : encoded_items) out += i;
  return out;
}

std::string encode_map(const std::vector<std::pair<std::string, std::string>>& encoded_entries)
{
  std::string out = encode_head(5, encoded_entries.size());
  for (const auto& [k, v] : encoded_entries) out += k + v;
  return out;
}

std::string encode_tag(std::uint64_t tag, std::string_view encoded_item)
{
  return encode_head(6, tag) + std::string(encoded_item);
}

} // namespace ferry::verify::cbor

#include <ferry/util/text.hpp>
#include <ferry/util/utf8.hpp>

#include <cstdio>

namespace ferry {

std::string counted(std::uint64_t n, std::string_view singular, std::string_view plural)
{
  std::string out = std::to_string(n) + " ";
  if (n == 1) out += singular;
  else if (!plural.empty()) out += plural;
  else {
    out += singular;
    out += 's';
  }
  return out;
}

std::string human_bytes(std::uint64_t n)
{
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

bool unsafe_for_terminal(char32_t c)
{
  if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) return true;  // C0, DEL, C1
  switch (c) {
  case 0x00AD:  // soft hyphen
  case 0x061C:  // arabic letter mark
  case 0x180E:  // mongolian vowel separator
  case 0x200B:  // zero width space
  case 0x200E:  // left-to-right mark
  case 0x200F:  // right-to-left mark
  case 0xFEFF:  // zero width no-break space (BOM)
    return true;
  default: break;
  }
  return (c >= 0x2028 && c <= 0x202E) ||  // line/paragraph separators, bidi embeddings and overrides
         (c >= 0x2060 && c <= 0x2064) ||  // word joiner, invisible operators
         (c >= 0x2066 && c <= 0x206F) ||  // bidi isolates, deprecated format characters
         (c >= 0xFFF9 && c <= 0xFFFB) ||  // interlinear annotation
         (c >= 0xE0000 && c <= 0xE007F);  // tag characters
}

namespace {

// The code point of the well-formed `n`-byte sequence at `p` (as utf8_sequence_length found it).
char32_t code_point(const unsigned char* p, std::size_t n)
{
  if (n == 1) return p[0];
  char32_t c = p[0] & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) c = (c << 6) | (p[k] & 0x3F);
  return c;
}

void append_hex(std::string& out, const char* prefix, unsigned long v, int digits)
{
  char buf[16];
  std::snprintf(buf, sizeof buf, "%s%0*lx", prefix, digits, v);
  out += buf;
}

} // namespace

bool unsafe_for_terminal(std::string_view seq)
{
  return !seq.empty() && seq.size() <= 4 &&
         unsafe_for_terminal(code_point(reinterpret_cast<const unsigned char*>(seq.data()), seq.size()));
}

std::string escape_for_terminal(std::string_view s)
{
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) {  // not UTF-8: the byte itself, visibly
      append_hex(out, "\\x", static_cast<unsigned char>(s[i]), 2);
      ++i;
      continue;
    }
    char32_t c = code_point(reinterpret_cast<const unsigned char*>(s.data() + i), n);
    if (c == '\\') out += "\\\\";
    else if (!unsafe_for_terminal(c)) out.append(s, i, n);
    else if (c < 0x80) append_hex(out, "\\x", c, 2);
    else if (c <= 0xFFFF) append_hex(out, "\\u", c, 4);
    else append_hex(out, "\\U", c, 8);
    i += n;
  }
  return out;
}

std::string quote_name(std::string_view s)
{
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string to_lower(std::string_view text)
{
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

} // namespace ferry

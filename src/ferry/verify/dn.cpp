#include <ferry/verify/dn.hpp>

#include <ferry/error.hpp>
#include <ferry/util/utf8.hpp>
#include <ferry/verify/trust_policy.hpp>

#include <openssl/objects.h>

#include <array>
#include <cstdint>
#include <cstdio>

namespace ferry::verify {

namespace {

constexpr char32_t k_rune_error = 0xFFFD;

struct Rune {
  char32_t value;
  std::size_t offset; ///< byte offset of the rune in the source
  std::size_t size;   ///< bytes consumed (1 for an invalid byte)
};

/// Decodes UTF-8 like Go's `for range` over a string: an invalid sequence yields U+FFFD and
/// consumes one byte.
std::vector<Rune> go_runes(std::string_view s)
{
  std::vector<Rune> out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      out.push_back({k_rune_error, i, 1});
      ++i;
      continue;
    }
    auto c = static_cast<unsigned char>(s[i]);
    char32_t value = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (std::size_t k = 1; k < n; ++k) value = (value << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back({value, i, n});
    i += n;
  }
  return out;
}

void append_utf8(std::string& out, char32_t r)
{
  if (r < 0x80) {
    out += static_cast<char>(r);
  } else if (r < 0x800) {
    out += static_cast<char>(0xC0 | (r >> 6));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else if (r < 0x10000) {
    out += static_cast<char>(0xE0 | (r >> 12));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (r >> 18));
    out += static_cast<char>(0x80 | ((r >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (r & 0x3F));
  }
}

int hex_value(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string hex_encode(std::string_view bytes)
{
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0x0F];
  }
  return out;
}

[[noreturn]] void fail(const std::string& message) { throw Error(Errc::invalid_argument, message); }

// go-ldap v3.4.11 stripLeadingAndTrailingSpaces: trims ' ' and re-adds one trailing space when
// the trimmed text ends with a backslash (an escaped space).
std::string strip_spaces(std::string_view in)
{
  std::size_t b = 0, e = in.size();
  while (b < e && in[b] == ' ') ++b;
  while (e > b && in[e - 1] == ' ') --e;
  std::string out(in.substr(b, e - b));
  if (!out.empty() && out.back() == '\\' && !in.empty() && in.back() == ' ') out += ' ';
  return out;
}

// go-ldap decodeString: strips spaces, then resolves `\c` and `\XX` escapes over runes.
std::string decode_string(std::string_view str)
{
  std::string stripped = strip_spaces(str);
  auto runes = go_runes(stripped);
  std::string out;
  for (std::size_t i = 0; i < runes.size(); ++i) {
    char32_t c = runes[i].value;
    if (c != '\\') {
      append_utf8(out, c);
      continue;
    }
    if (i + 1 >= runes.size()) fail("got corrupted escaped character: '" + stripped + "'");
    switch (runes[i + 1].value) {
    case ' ': case '"': case '#': case '+': case ',': case ';': case '<': case '=': case '>': case '\\':
      append_utf8(out, runes[i + 1].value);
      ++i;
      continue;
    default:
      break;
    }
    if (i + 2 >= runes.size()) {
      std::string ch;
      append_utf8(ch, runes[i + 1].value);
      fail("failed to decode escaped character: encoding/hex: invalid byte: " + ch);
    }
    std::string xx;
    append_utf8(xx, runes[i + 1].value);
    append_utf8(xx, runes[i + 2].value);
    if (xx.size() != 2) fail("failed to decode escaped character: invalid byte: " + xx);
    int h = hex_value(xx[0]), l = hex_value(xx[1]);
    if (h < 0 || l < 0) {
      char bad = h < 0 ? xx[0] : xx[1];
      char buf[64];
      std::snprintf(buf, sizeof buf, "encoding/hex: invalid byte: U+%04X %s", static_cast<unsigned>(bad),
                    go_quote(std::string(1, bad)).c_str());
      fail(std::string("failed to decode escaped character: ") + buf);
    }
    out += static_cast<char>(h * 16 + l);
    i += 2;
  }
  return out;
}

// go-ldap decodeEncodedString: `#` + hex of one BER element; the value is its content octets.
std::string decode_encoded_string(std::string_view hex)
{
  if (hex.size() % 2 != 0) fail("failed to decode BER encoding: encoding/hex: odd length hex string");
  std::string der;
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int h = hex_value(hex[i]), l = hex_value(hex[i + 1]);
    if (h < 0 || l < 0) fail("failed to decode BER encoding: encoding/hex: invalid byte");
    der += static_cast<char>(h * 16 + l);
  }
  auto u = [&](std::size_t k) { return static_cast<unsigned char>(der[k]); };
  std::size_t pos = 0;
  auto need = [&](std::size_t n) {
    if (pos + n > der.size()) fail("failed to decode BER encoding: unexpected EOF");
  };
  need(1);
  if ((u(pos++) & 0x1F) == 0x1F) { // high tag number form
    for (;;) {
      need(1);
      if ((u(pos++) & 0x80) == 0) break;
    }
  }
  need(1);
  std::size_t len = u(pos++);
  if (len == 0x80) return der.substr(pos); // indefinite length: content runs to the end
  if (len & 0x80) {
    std::size_t n = len & 0x7F;
    if (n > sizeof(std::size_t)) fail("failed to decode BER encoding: length too long");
    need(n);
    len = 0;
    for (std::size_t k = 0; k < n; ++k) len = (len << 8) | u(pos++);
  }
  need(len);
  return der.substr(pos, len);
}

void set_value(DnAttribute& attr, std::string_view s)
{
  if (!s.empty() && s[0] == '#')
    attr.value = decode_encoded_string(s.substr(1));
  else
    attr.value = decode_string(s);
}

bool is_go_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

} // namespace

std::vector<Rdn> parse_dn(std::string_view str)
{
  std::vector<Rdn> dn;
  {
    // strings.TrimSpace(str) == "" (unicode.IsSpace)
    bool blank = true;
    for (const auto& r : go_runes(str)) {
      char32_t c = r.value;
      bool space = c < 0x80 ? is_go_space(static_cast<unsigned char>(c))
                            : (c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
                               c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000);
      if (!space) {
        blank = false;
        break;
      }
    }
    if (blank) return dn;
  }
  Rdn rdn;
  DnAttribute attr;
  bool escaping = false;
  std::size_t start = 0;
  auto append = [&](bool end) {
    rdn.push_back(std::move(attr));
    attr = DnAttribute{};
    if (end) {
      dn.push_back(std::move(rdn));
      rdn = Rdn{};
    }
  };
  for (std::size_t i = 0; i < str.size(); ++i) {
    char c = str[i];
    if (escaping) {
      escaping = false;
    } else if (c == '\\') {
      escaping = true;
    } else if (c == '=' && attr.type.empty()) {
      attr.type = decode_string(str.substr(start, i - start));
      start = i + 1;
    } else if (c == ',' || c == '+' || c == ';') {
      if (attr.type.empty()) fail("incomplete type, value pair");
      set_value(attr, str.substr(start, i - start));
      start = i + 1;
      append(c == ',' || c == ';');
    }
  }
  if (attr.type.empty()) fail("DN ended with incomplete type, value pair");
  set_value(attr, str.substr(start));
  append(true);
  return dn;
}

DnMap parse_notation_dn(std::string_view name)
{
  const std::string quoted = go_quote(name);
  if (name.find("=#") != std::string_view::npos)
    fail("unsupported distinguished name (DN) " + quoted +
         ": notation does not support x509.subject identities containing \"=#\"");
  std::vector<Rdn> dn;
  try {
    dn = parse_dn(name);
  } catch (const Error& e) {
    fail("parsing distinguished name (DN) " + quoted + " failed with err: " + e.what() +
         ". A valid DN must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum, and follow RFC 4514 "
         "standard");
  }
  DnMap out;
  for (const auto& rdn : dn) {
    if (rdn.size() > 1)
      fail("distinguished name (DN) " + quoted +
           " has multi-valued RDN attributes, remove multi-valued RDN attributes as they are not supported");
    for (const auto& attribute : rdn) {
      // stateOrProvinceName: 'S' is an alias of 'ST' (notation-go PR #432).
      std::string type = attribute.type == "S" ? "ST" : attribute.type;
      if (dn_get(out, type).empty())
        out[type] = attribute.value;
      else
        fail("distinguished name (DN) " + quoted + " has duplicate RDN attribute for " + go_quote(type) +
             ", DN can only have unique RDN attributes");
    }
  }
  for (const char* field : {"C", "ST", "O"})
    if (dn_get(out, field).empty())
      fail("distinguished name (DN) " + quoted + " has no mandatory RDN attribute for " + go_quote(field) +
           ", it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum");
  return out;
}

std::string dn_get(const DnMap& dn, const std::string& type)
{
  auto it = dn.find(type);
  return it == dn.end() ? std::string() : it->second;
}

bool is_subset_dn(const DnMap& subset, const DnMap& dn)
{
  for (const auto& [key, value] : subset)
    if (value != dn_get(dn, key)) return false;
  return true;
}

namespace {

bool go_asn1_printable(unsigned char b)
{
  // encoding/asn1 isPrintable with rejectAsterisk and rejectAmpersand (as asn1.Marshal uses it).
  return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || (b >= '\'' && b <= ')') ||
         (b >= '+' && b <= '/') || b == ' ' || b == ':' || b == '=' || b == '?';
}

bool go_x509_printable(unsigned char b)
{
  // crypto/x509 parseASN1String accepts '*' and '&' in PrintableString.
  return go_asn1_printable(b) || b == '*' || b == '&';
}

/// encoding/asn1 Marshal of a Go string: PrintableString when every byte allows it, else
/// UTF8String; fails (returns false) for invalid UTF-8.
bool go_asn1_marshal_string(std::string_view value, std::string& der)
{
  unsigned char tag = 0x13;
  for (unsigned char c : value)
    if (c >= 0x80 || !go_asn1_printable(c)) {
      if (!valid_utf8(value)) return false;
      tag = 0x0C;
      break;
    }
  der.clear();
  der += static_cast<char>(tag);
  std::size_t len = value.size();
  if (len < 0x80) {
    der += static_cast<char>(len);
  } else {
    std::string bytes;
    for (std::size_t l = len; l > 0; l >>= 8) bytes.insert(bytes.begin(), static_cast<char>(l & 0xFF));
    der += static_cast<char>(0x80 | bytes.size());
    der += bytes;
  }
  der += value;
  return true;
}

/// crypto/x509 parseASN1String: the value Go keeps for an attribute; false when Go rejects it.
bool go_attribute_string(const ASN1_STRING* s, std::string& out)
{
  std::string_view raw(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
  out.assign(raw);
  switch (ASN1_STRING_type(s)) {
  case V_ASN1_T61STRING:
    return true;
  case V_ASN1_PRINTABLESTRING:
    for (unsigned char c : raw)
      if (!go_x509_printable(c)) return false;
    return true;
  case V_ASN1_UTF8STRING:
    return valid_utf8(raw);
  case V_ASN1_IA5STRING:
    for (unsigned char c : raw)
      if (c >= 0x80) return false;
    return true;
  case V_ASN1_NUMERICSTRING:
    for (unsigned char c : raw)
      if (!((c >= '0' && c <= '9') || c == ' ')) return false;
    return true;
  case V_ASN1_BMPSTRING: {
    if (raw.size() % 2 != 0) return false;
    std::string_view bmp = raw;
    if (bmp.size() >= 2 && bmp[bmp.size() - 1] == 0 && bmp[bmp.size() - 2] == 0) bmp.remove_suffix(2);
    out.clear();
    for (std::size_t i = 0; i < bmp.size(); i += 2) {
      char32_t u = (static_cast<unsigned char>(bmp[i]) << 8) | static_cast<unsigned char>(bmp[i + 1]);
      if (u >= 0xD800 && u < 0xDC00 && i + 3 < bmp.size()) {
        char32_t u2 = (static_cast<unsigned char>(bmp[i + 2]) << 8) | static_cast<unsigned char>(bmp[i + 3]);
        if (u2 >= 0xDC00 && u2 < 0xE000) {
          append_utf8(out, 0x10000 + ((u - 0xD800) << 10) + (u2 - 0xDC00));
          i += 2;
          continue;
        }
      }
      append_utf8(out, (u >= 0xD800 && u < 0xE000) ? k_rune_error : u);
    }
    return true;
  }
  default:
    return false;
  }
}

std::string oid_text(const ASN1_OBJECT* obj)
{
  char buf[256];
  int n = OBJ_obj2txt(buf, sizeof buf, obj, 1);
  if (n < 0) return "";
  if (static_cast<std::size_t>(n) < sizeof buf) return std::string(buf, static_cast<std::size_t>(n));
  std::string big(static_cast<std::size_t>(n) + 1, '\0');
  OBJ_obj2txt(big.data(), static_cast<int>(big.size()), obj, 1);
  big.resize(static_cast<std::size_t>(n));
  return big;
}

struct Atv {
  std::string oid;
  std::string value;
};

const char* go_type_name(const std::string& oid)
{
  static const std::array<std::pair<const char*, const char*>, 9> names{{
      {"2.5.4.6", "C"},
      {"2.5.4.10", "O"},
      {"2.5.4.11", "OU"},
      {"2.5.4.3", "CN"},
      {"2.5.4.5", "SERIALNUMBER"},
      {"2.5.4.7", "L"},
      {"2.5.4.8", "ST"},
      {"2.5.4.9", "STREET"},
      {"2.5.4.17", "POSTALCODE"},
  }};
  for (const auto& [o, n] : names)
    if (oid == o) return n;
  return nullptr;
}

std::string go_escape_value(std::string_view value)
{
  std::string out;
  for (const auto& r : go_runes(value)) {
    bool escape = false;
    switch (r.value) {
    case ',': case '+': case '"': case '\\': case '<': case '>': case ';':
      escape = true;
      break;
    case ' ':
      escape = r.offset == 0 || r.offset == value.size() - 1;
      break;
    case '#':
      escape = r.offset == 0;
      break;
    default:
      break;
    }
    if (escape) out += '\\';
    append_utf8(out, r.value);
  }
  return out;
}

} // namespace

GoName go_name(const X509_NAME* name)
{
  GoName result;
  std::vector<Atv> names;
  int count = X509_NAME_entry_count(name);
  for (int i = 0; i < count; ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    Atv atv;
    atv.oid = oid_text(X509_NAME_ENTRY_get_object(entry));
    if (!go_attribute_string(X509_NAME_ENTRY_get_data(entry), atv.value)) result.parsable = false;
    names.push_back(std::move(atv));
  }

  // Name.FillFromRDNSequence + Name.String: non-standard attributes first (each its own RDN),
  // then ToRDNSequence's C, ST, L, STREET, POSTALCODE, O, OU, CN, SERIALNUMBER; printed reversed.
  std::vector<std::vector<Atv>> rdns;
  std::vector<std::pair<std::string, std::vector<std::string>>> fields{
      {"2.5.4.6", {}}, {"2.5.4.8", {}}, {"2.5.4.7", {}}, {"2.5.4.9", {}}, {"2.5.4.17", {}}, {"2.5.4.10", {}}, {"2.5.4.11", {}}};
  std::string common_name, serial_number;
  for (const auto& atv : names) {
    if (!go_type_name(atv.oid)) {
      rdns.push_back({atv});
      continue;
    }
    if (atv.oid == "2.5.4.3") {
      common_name = atv.value;
    } else if (atv.oid == "2.5.4.5") {
      serial_number = atv.value;
    } else {
      for (auto& [oid, values] : fields)
        if (oid == atv.oid) values.push_back(atv.value);
    }
  }
  auto append_rdn = [&](const std::string& oid, const std::vector<std::string>& values) {
    if (values.empty()) return;
    std::vector<Atv> rdn;
    for (const auto& v : values) rdn.push_back({oid, v});
    rdns.push_back(std::move(rdn));
  };
  for (const auto& [oid, values] : fields) append_rdn(oid, values);
  if (!common_name.empty()) append_rdn("2.5.4.3", {common_name});
  if (!serial_number.empty()) append_rdn("2.5.4.5", {serial_number});

  std::string& s = result.text;
  for (std::size_t i = 0; i < rdns.size(); ++i) {
    const auto& rdn = rdns[rdns.size() - 1 - i];
    if (i > 0) s += ',';
    for (std::size_t j = 0; j < rdn.size(); ++j) {
      if (j > 0) s += '+';
      const Atv& atv = rdn[j];
      const char* type = go_type_name(atv.oid);
      if (!type) {
        std::string der;
        if (go_asn1_marshal_string(atv.value, der)) {
          s += atv.oid + "=#" + hex_encode(der);
          continue;
        }
        s += atv.oid;
      } else {
        s += type;
      }
      s += '=';
      s += go_escape_value(atv.value);
    }
  }
  return result;
}

std::string go_subject_string(X509* cert) { return go_name(X509_get_subject_name(cert)).text; }

std::string go_quote(std::string_view s)
{
  static const char* digits = "0123456789abcdef";
  std::string out = "\"";
  for (const auto& r : go_runes(s)) {
    char32_t c = r.value;
    if (c == k_rune_error && r.size == 1) {
      unsigned char b = static_cast<unsigned char>(s[r.offset]);
      out += "\\x";
      out += digits[b >> 4];
      out += digits[b & 0x0F];
      continue;
    }
    switch (c) {
    case '"': out += "\\\""; continue;
    case '\\': out += "\\\\"; continue;
    case '\a': out += "\\a"; continue;
    case '\b': out += "\\b"; continue;
    case '\f': out += "\\f"; continue;
    case '\n': out += "\\n"; continue;
    case '\r': out += "\\r"; continue;
    case '\t': out += "\\t"; continue;
    case '\v': out += "\\v"; continue;
    default: break;
    }
    if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += digits[c >> 4];
      out += digits[c & 0x0F];
      continue;
    }
    // Approximation of !unicode.IsPrint for the characters certificates and policies carry:
    // C1 controls, non-ASCII spaces, format characters, line/paragraph separators.
    bool unprintable = (c >= 0x80 && c <= 0xA0) || c == 0xAD || (c >= 0x2000 && c <= 0x200F) ||
                       (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0xFEFF;
    if (unprintable) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
      continue;
    }
    append_utf8(out, c);
  }
  out += '"';
  return out;
}

std::string go_quote_dn_maps(const std::vector<DnMap>& dns)
{
  std::string out = "[";
  for (std::size_t i = 0; i < dns.size(); ++i) {
    if (i > 0) out += ' ';
    out += "map[";
    bool first = true;
    for (const auto& [k, v] : dns[i]) {
      if (!first) out += ' ';
      first = false;
      out += go_quote(k) + ":" + go_quote(v);
    }
    out += ']';
  }
  out += ']';
  return out;
}

} // namespace ferry::verify

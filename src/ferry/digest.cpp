#include <ferry/digest.hpp>

#include <ferry/error.hpp>

#include <openssl/evp.h>

namespace ferry {

namespace {

std::size_t hex_length(std::string_view algorithm)
{
  if (algorithm == "sha256") return 64;
  if (algorithm == "sha512") return 128;
  return 0;
}

bool is_lower_hex(std::string_view s)
{
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string printable(std::string_view text)
{
  std::string out;
  for (char c : text.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > 80) out += "...";
  return out;
}

struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};

} // namespace

bool Digest::is_valid(std::string_view text) noexcept
{
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  auto alg = text.substr(0, colon);
  auto hex = text.substr(colon + 1);
  std::size_t len = hex_length(alg);
  return len != 0 && hex.size() == len && is_lower_hex(hex);
}

std::optional<CosignTag> parse_cosign_tag(std::string_view tag)
{
  auto dot = tag.rfind('.');
  auto dash = tag.find('-');
  if (dot == std::string_view::npos || dash == std::string_view::npos || dash > dot) return std::nullopt;
  std::string_view suffix = tag.substr(dot + 1);
  bool known = false;
  for (auto s : k_cosign_suffixes) known = known || s == suffix;
  if (!known) return std::nullopt;
  std::string digest = std::string(tag.substr(0, dash)) + ":" + std::string(tag.substr(dash + 1, dot - dash - 1));
  if (!Digest::is_valid(digest)) return std::nullopt;
  return CosignTag{Digest::parse(digest), std::string(suffix)};
}

Digest Digest::parse(std::string_view text)
{
  auto colon = text.find(':');
  if (colon == std::string_view::npos)
    throw Error(Errc::invalid_digest, "invalid digest \"" + printable(text) + "\": missing algorithm");
  auto alg = text.substr(0, colon);
  if (hex_length(alg) == 0)
    throw Error(Errc::invalid_digest,
                "invalid digest \"" + printable(text) + "\": unsupported algorithm \"" + printable(alg) + "\"");
  if (!is_valid(text))
    throw Error(Errc::invalid_digest, "invalid digest \"" + printable(text) + "\": malformed encoding");
  Digest d;
  d.m_algorithm = std::string(alg);
  d.m_hex = std::make_shared<const std::string>(text.substr(colon + 1));
  return d;
}

Digest Digest::of(std::string_view data, std::string_view algorithm)
{
  Hasher h(algorithm);
  h.update(data);
  return h.finish();
}

struct Hasher::Impl {
  std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree> ctx;
};

Hasher::Hasher(std::string_view algorithm) : m_impl(std::make_unique<Impl>()), m_algorithm(algorithm)
{
  const EVP_MD* md = nullptr;
  if (algorithm == "sha256") md = EVP_sha256();
  else if (algorithm == "sha512") md = EVP_sha512();
  else throw Error(Errc::invalid_digest, "unsupported digest algorithm \"" + printable(algorithm) + "\"");
  m_impl->ctx.reset(EVP_MD_CTX_new());
  if (!m_impl->ctx || EVP_DigestInit_ex(m_impl->ctx.get(), md, nullptr) != 1)
    throw Error(Errc::internal, "EVP_DigestInit_ex failed");
}

Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::update(const void* data, std::size_t n)
{
  if (n != 0 && EVP_DigestUpdate(m_impl->ctx.get(), data, n) != 1)
    throw Error(Errc::internal, "EVP_DigestUpdate failed");
}

Digest Hasher::finish()
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(m_impl->ctx.get(), md, &len) != 1) throw Error(Errc::internal, "EVP_DigestFinal_ex failed");
  static const char* k_hex = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    hex += k_hex[md[i] >> 4];
    hex += k_hex[md[i] & 15];
  }
  return Digest::parse(m_algorithm + ":" + hex);
}

VerifyingReader::VerifyingReader(std::unique_ptr<Reader> inner, Digest expected, std::uint64_t expected_size,
                                 std::string what)
  : m_inner(std::move(inner)), m_expected(std::move(expected)), m_expected_size(expected_size),
    m_what(std::move(what)), m_hasher(m_expected.algorithm())
{
}

VerifyingReader::VerifyingReader(std::unique_ptr<Reader> inner, Digest expected, std::uint64_t expected_size,
                                 std::string what, Hasher prefix, std::uint64_t prefix_size)
  : m_inner(std::move(inner)), m_expected(std::move(expected)), m_expected_size(expected_size),
    m_what(std::move(what)), m_hasher(std::move(prefix)), m_count(prefix_size)
{
}

std::size_t VerifyingReader::read(char* buf, std::size_t n)
{
  if (m_done) return 0;
  // Never read more than one byte past the expected size: enough to detect a longer body.
  std::uint64_t room = m_expected_size - m_count + 1;
  if (n > room) n = static_cast<std::size_t>(room);
  std::size_t k = m_inner->read(buf, n);
  m_count += k;
  if (m_count > m_expected_size)
    throw Error(Errc::size_exceeds_limit, m_what + ": more than the expected " + std::to_string(m_expected_size) + " bytes");
  if (k == 0) {
    m_done = true;
    if (m_count != m_expected_size)
      throw Error(Errc::digest_mismatch, m_what + ": got " + std::to_string(m_count) + " bytes, expected " +
                                             std::to_string(m_expected_size));
    Digest got = m_hasher.finish();
    if (got != m_expected)
      throw Error(Errc::digest_mismatch, m_what + ": content has digest " + got.str() + ", expected " + m_expected.str());
    return 0;
  }
  m_hasher.update(buf, k);
  return k;
}

} // namespace ferry

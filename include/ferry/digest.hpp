#pragma once
/// Content digests (image-spec v1.1 descriptor.md §Digests): `algorithm:encoded`,
/// sha256 and sha512, computed with OpenSSL EVP.
#include <ferry/util/reader.hpp>

#include <compare>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

class Digest {
public:
  Digest() = default;
  /// Parses and validates `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`.
  /// Throws Errc::invalid_digest naming the input.
  static Digest parse(std::string_view text);
  /// True when `text` is a valid digest of a supported algorithm.
  static bool is_valid(std::string_view text) noexcept;
  /// sha256 of bytes held in memory.
  static Digest of(std::string_view data, std::string_view algorithm = "sha256");

  const std::string& algorithm() const { return m_algorithm; }
  const std::string& hex() const { return m_hex ? *m_hex : empty_hex(); }
  std::string str() const { return m_algorithm + ":" + hex(); }
  bool empty() const { return hex().empty(); }
  /// "sha256-<hex>": the referrers tag schema name for this digest (distribution-spec v1.1).
  std::string fallback_tag() const { return m_algorithm + "-" + hex(); }
  /// cosign's tag for an attachment of this digest: "sha256-<hex>.sig" (`suffix` sig, att
  /// or sbom; cosign pkg/oci/remote), in the repository of the image it belongs to.
  std::string cosign_tag(std::string_view suffix) const { return fallback_tag() + "." + std::string(suffix); }
  /// A short form for messages: `sha256:0123456789ab`.
  std::string short_str() const { return m_algorithm + ":" + hex().substr(0, 12); }

  std::strong_ordering operator<=>(const Digest& other) const
  {
    if (auto c = m_algorithm <=> other.m_algorithm; c != 0) return c;
    if (m_hex == other.m_hex) return std::strong_ordering::equal;
    return hex() <=> other.hex();
  }
  bool operator==(const Digest& other) const
  {
    return m_algorithm == other.m_algorithm && (m_hex == other.m_hex || hex() == other.hex());
  }

private:
  static const std::string& empty_hex()
  {
    static const std::string empty;
    return empty;
  }
  std::string m_algorithm;
  /// Shared by every copy: a graph of 20,000 blobs copies each digest into maps, plans and
  /// queues many times over, and holds its 64 characters once (issue 18).
  std::shared_ptr<const std::string> m_hex;
};

/// cosign's tag-based attachments of an image: its signatures (`.sig`), attestations
/// (`.att`) and SBOM (`.sbom`), each an image manifest tagged `<alg>-<hex>.<suffix>`.
inline constexpr std::string_view k_cosign_suffixes[] = {"sig", "att", "sbom"};
struct CosignTag {
  Digest subject;
  std::string suffix;  ///< sig, att, sbom
};
/// Parses "sha256-<hex>.sig" (or .att, .sbom; sha512 too); nullopt for any other tag.
std::optional<CosignTag> parse_cosign_tag(std::string_view tag);

/// Streaming hasher.
class Hasher {
public:
  explicit Hasher(std::string_view algorithm = "sha256");
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(const void* data, std::size_t n);
  void update(std::string_view data) { update(data.data(), data.size()); }
  /// Finishes the hash; the hasher may not be updated afterwards.
  Digest finish();

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
  std::string m_algorithm;
};

/// Wraps a Reader, hashing what passes; at the end of the stream it checks that exactly
/// `expected_size` bytes with digest `expected` were read, throwing Errc::digest_mismatch
/// or Errc::size_exceeds_limit naming `what` (design §4: every fetched byte is checked).
class VerifyingReader : public Reader {
public:
  VerifyingReader(std::unique_ptr<Reader> inner, Digest expected, std::uint64_t expected_size,
                  std::string what);
  /// Continues a check: `prefix` has hashed the first `prefix_size` bytes of the content,
  /// `inner` gives the rest.
  VerifyingReader(std::unique_ptr<Reader> inner, Digest expected, std::uint64_t expected_size, std::string what,
                  Hasher prefix, std::uint64_t prefix_size);
  std::size_t read(char* buf, std::size_t n) override;
  /// True when this reader, untouched so far, checks exactly `digest` and `size` (a writer
  /// handed it need not hash the same bytes again).
  bool checks(const Digest& digest, std::uint64_t size) const
  {
    return m_count == 0 && !m_done && m_expected == digest && m_expected_size == size;
  }

private:
  std::unique_ptr<Reader> m_inner;
  Digest m_expected;
  std::uint64_t m_expected_size;
  std::string m_what;
  Hasher m_hasher;
  std::uint64_t m_count = 0;
  bool m_done = false;
};

} // namespace ferry

template <> struct std::hash<ferry::Digest> {
  std::size_t operator()(const ferry::Digest& d) const noexcept { return std::hash<std::string>{}(d.hex()); }
};

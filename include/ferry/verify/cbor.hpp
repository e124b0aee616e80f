#pragma once
/// A small CBOR (RFC 8949) decoder and encoder for COSE_Sign1 envelopes
/// (../shared/notation/SPEC.md §3). Decoding follows go-cose's decoding mode, which
/// notation-go uses: definite lengths only (indefinite-length items are rejected),
/// duplicate map keys rejected, tags kept with their numbers, depth and size bounded.
/// Every decoded item keeps the span of its own encoding in the input, so the exact
/// bytes of the protected-header bstr are available for the Sig_structure.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::verify::cbor {

/// The CBOR major types (RFC 8949 §3.1), plus the simple/float split of major type 7.
enum class Type {
  unsigned_int,  ///< major 0
  negative_int,  ///< major 1: value is -1 - arg
  bytes,         ///< major 2
  text,          ///< major 3
  array,         ///< major 4
  map,           ///< major 5
  tag,           ///< major 6: arg is the tag number, items[0] the tagged item
  simple,        ///< major 7 simple values (false=20, true=21, null=22, undefined=23, ...)
  floating,      ///< major 7 half/single/double
};

struct Entry;

/// One decoded data item.
struct Item {
  Type type = Type::unsigned_int;
  std::uint64_t arg = 0;       ///< integer magnitude, tag number or simple value
  double float_value = 0;      ///< Type::floating
  std::string content;         ///< bytes / text content
  std::vector<Item> items;     ///< array elements; the tagged item of a tag
  std::vector<Entry> entries;  ///< map entries in encoded order
  std::string_view raw;        ///< this item's complete encoding (a view into the input)

  bool is_int() const { return type == Type::unsigned_int || type == Type::negative_int; }
  /// The integer value when it fits in int64.
  std::optional<std::int64_t> as_int() const;
  bool is_null() const { return type == Type::simple && arg == 22; }
  /// Map lookup by integer label / text label; nullptr when absent or not a map.
  const Item* find(std::int64_t label) const;
  const Item* find(std::string_view label) const;
};

/// One map entry (a struct rather than std::pair, which may not hold the incomplete Item).
struct Entry {
  Item key;
  Item value;
};

/// Decoding bounds.
struct Limits {
  int max_depth = 32;  ///< fxamacker/cbor default MaxNestedLevels
  std::size_t max_items = 1u << 20;
};

/// Decodes exactly one data item from `data` (trailing bytes are an error). Throws
/// ferry::Error(Errc::invalid_argument) with a "cbor: ..." reason. The returned item's
/// `raw` views point into `data`, which must outlive it.
Item decode(std::string_view data, const Limits& limits = {});

/// True when `item` or anything nested inside it is a tag.
bool contains_tag(const Item& item);

/// Encoding helpers (shortest-form heads, RFC 8949 §4.2.1).
std::string encode_head(int major, std::uint64_t arg);
std::string encode_uint(std::uint64_t v);
std::string encode_int(std::int64_t v);
std::string encode_bytes(std::string_view b);
std::string encode_text(std::string_view t);
/// An array / map head followed by the given already-encoded elements.
std::string encode_array(const std::vector<std::string>& encoded_items);
std::string encode_map(const std::vector<std::pair<std::string, std::string>>& encoded_entries);
std::string encode_tag(std::uint64_t tag, std::string_view encoded_item);

} // namespace ferry::verify::cbor

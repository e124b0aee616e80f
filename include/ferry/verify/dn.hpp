#pragma once
/// Distinguished names the way notation-go handles trusted identities
/// (../shared/notation/SPEC.md §5.2 "Trusted identity DN rules", §9 item 7):
/// RFC 4514 strings parsed like go-ldap v3.4.11 `ParseDN`, certificate names rendered like
/// Go's `pkix.Name.String()`, and notation-go's `internal/pkix` rules on top of both.
#include <openssl/x509.h>

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::verify {

struct DnAttribute {
  std::string type;
  std::string value;
};
/// One relative distinguished name; more than one attribute means a multi-valued RDN (`a=1+b=2`).
using Rdn = std::vector<DnAttribute>;

/// A DN as notation-go keeps it: attribute type → value (one value per type; "S" stored as "ST").
/// As with a Go map, a missing type reads as "" (see `dn_get`).
using DnMap = std::map<std::string, std::string>;

/// Parses an RFC 4514 string exactly like go-ldap v3.4.11 `ParseDN` (the version notation-go
/// pins): `,` / `;` end an RDN, `+` joins a multi-valued RDN, `\` escapes one character or two
/// hex digits, unescaped leading/trailing spaces of types and values are dropped, types are not
/// validated, a value starting with `#` is hex BER. A blank string is an empty DN.
/// Throws ferry::Error(Errc::invalid_argument) with go-ldap's message.
std::vector<Rdn> parse_dn(std::string_view dn);

/// notation-go `pkix.ParseDistinguishedName`: rejects any `=#`, a go-ldap parse error,
/// multi-valued RDNs and duplicate attribute types; maps `S` to `ST`; requires non-empty C, ST
/// and O. Throws ferry::Error(Errc::invalid_argument) with notation's message (which quotes
/// `dn` as given, leading space included).
/// Reference: notation-go internal/pkix/pkix.go.
DnMap parse_notation_dn(std::string_view dn);

/// Value of `type` in `dn`, "" when absent (Go map semantics).
std::string dn_get(const DnMap& dn, const std::string& type);

/// notation-go `pkix.IsSubsetDN`: every attribute of `subset` has the same value (exact,
/// case-sensitive) in `dn`.
bool is_subset_dn(const DnMap& subset, const DnMap& dn);

/// A name rendered like Go's `pkix.Name.String()` for a certificate parsed by crypto/x509.
struct GoName {
  std::string text;
  /// False when crypto/x509 would have refused the name (an attribute value that is not one of
  /// Printable/UTF8/IA5/T61/BMP/NumericString, or whose content is invalid for its type); `text`
  /// is then a best effort.
  bool parsable = true;
};

/// Renders `name` like Go: the nine attribute types Go knows are regrouped in the order
/// SERIALNUMBER, CN, OU, O, POSTALCODE, STREET, L, ST, C (all values of one type form one
/// multi-valued RDN joined with `+`; only the last CN and SERIALNUMBER survive), followed by every
/// other attribute, last first, as `dotted.oid=#<hex of its value re-encoded as DER
/// PrintableString or UTF8String>`. Values are escaped as Go does (`,+"\<>;` anywhere, a leading
/// or trailing space, a leading `#`).
/// Reference: Go crypto/x509/pkix Name.String, RDNSequence.String, Name.FillFromRDNSequence.
GoName go_name(const X509_NAME* name);

/// Go's `strconv.Quote` (the `%q` verb) for a string.
std::string go_quote(std::string_view s);

/// Go's `%q` rendering of a `[]map[string]string`, e.g. `[map["C":"US" "O":"Org"]]`.
std::string go_quote_dn_maps(const std::vector<DnMap>& dns);

} // namespace ferry::verify

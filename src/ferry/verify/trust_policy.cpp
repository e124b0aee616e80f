#include <ferry/verify/trust_policy.hpp>

#include <ferry/error.hpp>
#include <ferry/reference.hpp>
#include <ferry/verify/dn.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <sys/stat.h>

// Reference for everything in this file: ../shared/notation/SPEC.md §5.2 and §6 (level table),
// which digest ngo:verifier/trustpolicy/{trustpolicy.go,oci.go}; messages are notation-go's.

namespace ferry::verify {

namespace {

using Json = nlohmann::ordered_json;

constexpr const char* k_trust_policy_link = "https://notaryproject.dev/docs/quickstart/#create-a-trust-policy";
constexpr const char* k_wildcard = "*";
constexpr const char* k_x509_subject = "x509.subject";

/// A policy statement as Go's encoding/json leaves it (before validation).
struct RawStatement {
  std::string name;
  std::string level;
  std::vector<std::pair<std::string, std::string>> overrides; ///< document order
  std::string verify_timestamp;
  std::vector<std::string> trust_stores;
  std::vector<std::string> trusted_identities;
  std::vector<std::string> registry_scopes;
};

struct RawDocument {
  std::string version;
  std::vector<RawStatement> statements;
};

struct Malformed {
  std::string what;
};

bool ascii_iequal(std::string_view a, std::string_view b)
{
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

/// Go's encoding/json matches object keys to struct fields case-insensitively; when several
/// keys match one field the last one assigned wins.
const Json* field(const Json& object, std::string_view name)
{
  const Json* found = nullptr;
  for (auto it = object.begin(); it != object.end(); ++it)
    if (ascii_iequal(it.key(), name)) found = &it.value();
  return found;
}

/// JSON null leaves a Go string unchanged (""), anything but a string is a type error.
std::string as_string(const Json* j, const std::string& what)
{
  if (!j || j->is_null()) return {};
  if (!j->is_string()) throw Malformed{what + " must be a string"};
  return j->get<std::string>();
}

std::vector<std::string> as_strings(const Json* j, const std::string& what)
{
  std::vector<std::string> out;
  if (!j || j->is_null()) return out;
  if (!j->is_array()) throw Malformed{what + " must be an array of strings"};
  for (const auto& e : *j) out.push_back(as_string(&e, what + " entries"));
  return out;
}

bool is_object_or_null(const Json* j) { return !j || j->is_null() || j->is_object(); }

RawStatement read_statement(const Json& j)
{
  RawStatement s;
  if (j.is_null()) return s;
  if (!j.is_object()) throw Malformed{"a trust policy statement must be an object"};
  s.name = as_string(field(j, "name"), "name");
  s.registry_scopes = as_strings(field(j, "registryScopes"), "registryScopes");
  s.trust_stores = as_strings(field(j, "trustStores"), "trustStores");
  s.trusted_identities = as_strings(field(j, "trustedIdentities"), "trustedIdentities");
  const Json* sv = field(j, "signatureVerification");
  if (!is_object_or_null(sv)) throw Malformed{"signatureVerification must be an object"};
  if (sv && sv->is_object()) {
    s.level = as_string(field(*sv, "level"), "level");
    s.verify_timestamp = as_string(field(*sv, "verifyTimestamp"), "verifyTimestamp");
    const Json* ov = field(*sv, "override");
    if (!is_object_or_null(ov)) throw Malformed{"override must be an object"};
    if (ov && ov->is_object())
      for (auto it = ov->begin(); it != ov->end(); ++it)
        s.overrides.emplace_back(it.key(), as_string(&it.value(), "override values"));
  }
  return s;
}

RawDocument read_document(std::string_view text)
{
  Json j;
  try {
    // Like Go's json.Decoder.Decode: one JSON value is read, whatever follows is not looked at.
    std::istringstream in{std::string(text)};
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw Malformed{e.what()};
  }
  RawDocument doc;
  if (j.is_null()) return doc;
  if (!j.is_object()) throw Malformed{"the document must be a JSON object"};
  doc.version = as_string(field(j, "version"), "version");
  const Json* statements = field(j, "trustPolicies");
  if (statements && !statements->is_null()) {
    if (!statements->is_array()) throw Malformed{"trustPolicies must be an array"};
    for (const auto& e : *statements) doc.statements.push_back(read_statement(e));
  }
  return doc;
}

struct Invalid {
  std::string reason;
};

std::string q(std::string_view s) { return go_quote(s); }

const std::vector<std::string>& validation_types()
{
  static const std::vector<std::string> v{"integrity", "authenticity", "authenticTimestamp", "expiry", "revocation"};
  return v;
}
const std::vector<std::string>& validation_actions()
{
  static const std::vector<std::string> v{"enforce", "log", "skip"};
  return v;
}
std::string q_list(const std::vector<std::string>& v)
{
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? " " : "") + q(v[i]);
  return out + "]";
}

VerificationLevel base_level(Level level)
{
  VerificationLevel v;
  v.level = level;
  switch (level) {
  case Level::strict:
    break;
  case Level::permissive:
    v.authentic_timestamp = v.expiry = v.revocation = Action::log;
    break;
  case Level::audit:
    v.authenticity = v.authentic_timestamp = v.expiry = v.revocation = Action::log;
    break;
  case Level::skip:
    v.integrity = v.authenticity = v.authentic_timestamp = v.expiry = v.revocation = Action::skip;
    break;
  }
  return v;
}

/// ngo GetVerificationLevel; throws Invalid with the bare reason.
VerificationLevel verification_level(const RawStatement& s)
{
  if (s.level.empty()) throw Invalid{"signature verification level is empty or missing in the trust policy statement"};
  static const std::vector<std::pair<std::string, Level>> levels{
      {"strict", Level::strict}, {"permissive", Level::permissive}, {"audit", Level::audit}, {"skip", Level::skip}};
  auto it = std::find_if(levels.begin(), levels.end(), [&](const auto& l) { return l.first == s.level; });
  if (it == levels.end()) throw Invalid{"invalid signature verification level " + q(s.level)};
  VerificationLevel v = base_level(it->second);
  if (s.overrides.empty()) return v;
  if (v.level == Level::skip)
    throw Invalid{"signature verification level " + q(s.level) + " can't be used to customize signature verification"};
  for (const auto& [key, value] : s.overrides) {
    const auto& types = validation_types();
    if (std::find(types.begin(), types.end(), key) == types.end())
      throw Invalid{"verification type " + q(key) + " in custom signature verification is not supported, supported values are " +
                    q_list(types)};
    const auto& actions = validation_actions();
    if (std::find(actions.begin(), actions.end(), value) == actions.end())
      throw Invalid{"verification action " + q(value) +
                    " in custom signature verification is not supported, supported values are " + q_list(actions)};
    if (key == "integrity") throw Invalid{q(key) + " verification can not be overridden in custom signature verification"};
    if (key != "revocation" && value == "skip")
      throw Invalid{q(key) + " verification can not be skipped in custom signature verification"};
    Action action = value == "enforce" ? Action::enforce : value == "log" ? Action::log : Action::skip;
    if (key == "authenticity") v.authenticity = action;
    if (key == "authenticTimestamp") v.authentic_timestamp = action;
    if (key == "expiry") v.expiry = action;
    if (key == "revocation") v.revocation = action;
  }
  return v;
}

bool valid_store_type(const std::string& t) { return t == "ca" || t == "signingAuthority" || t == "tsa"; }

/// ngo internal/file IsValidFileName: ^[a-zA-Z0-9_.-]+$
bool valid_store_name(const std::string& n)
{
  if (n.empty()) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

struct ParsedIdentity {
  std::string raw;
  DnMap dn;
};

void validate_trusted_identities(const std::string& name, const std::vector<std::string>& ids)
{
  if (ids.size() > 1 && std::find(ids.begin(), ids.end(), k_wildcard) != ids.end())
    throw Invalid{"trust policy statement " + q(name) +
                  " uses a wildcard trusted identity '*', a wildcard identity cannot be used in conjunction with other values"};
  std::vector<ParsedIdentity> parsed;
  for (const auto& identity : ids) {
    if (identity.empty()) throw Invalid{"trust policy statement " + q(name) + " has an empty trusted identity"};
    if (identity == k_wildcard) continue;
    auto colon = identity.find(':');
    if (colon == std::string::npos)
      throw Invalid{"trust policy statement " + q(name) + " has trusted identity " + q(identity) + " missing separator"};
    if (identity.substr(0, colon) != k_x509_subject) continue; // other prefixes belong to plugins
    std::string value = identity.substr(colon + 1);
    if (value.empty())
      throw Invalid{"trust policy statement " + q(name) + " has trusted identity " + q(identity) + " without an identity value"};
    try {
      parsed.push_back({identity, parse_notation_dn(value)});
    } catch (const Error& e) {
      throw Invalid{"trust policy statement " + q(name) + " has trusted identity " + q(identity) +
                    " with invalid identity value: " + e.what()};
    }
  }
  for (std::size_t i = 0; i < parsed.size(); ++i)
    for (std::size_t j = 0; j < parsed.size(); ++j)
      if (i != j && is_subset_dn(parsed[i].dn, parsed[j].dn))
        throw Invalid{"trust policy statement " + q(name) + " has overlapping x509 trustedIdentities, " + q(parsed[i].raw) +
                      " overlaps with " + q(parsed[j].raw)};
}

/// ngo validatePolicyCore; returns the statement's verification level.
VerificationLevel validate_core(const RawStatement& s)
{
  if (s.name.empty()) throw Invalid{"a trust policy statement is missing a name, every statement requires a name"};
  VerificationLevel level;
  try {
    level = verification_level(s);
  } catch (const Invalid& e) {
    throw Invalid{"trust policy statement " + q(s.name) + " has invalid signatureVerification: " + e.reason};
  }
  if (!s.verify_timestamp.empty() && s.verify_timestamp != "always" && s.verify_timestamp != "afterCertExpiry")
    throw Invalid{"trust policy statement " + q(s.name) +
                  " has invalid signatureVerification: verifyTimestamp must be \"always\" or \"afterCertExpiry\", but got " +
                  q(s.verify_timestamp)};
  if (level.level == Level::skip) {
    if (!s.trust_stores.empty() || !s.trusted_identities.empty())
      throw Invalid{"trust policy statement " + q(s.name) +
                    " is set to skip signature verification but configured with trust stores and/or trusted identities, "
                    "remove them if signature verification needs to be skipped"};
    return level;
  }
  if (s.trust_stores.empty() || s.trusted_identities.empty())
    throw Invalid{"trust policy statement " + q(s.name) +
                  " is either missing trust stores or trusted identities, both must be specified"};
  for (const auto& store : s.trust_stores) {
    auto colon = store.find(':');
    if (colon == std::string::npos)
      throw Invalid{"trust policy statement " + q(s.name) + " has malformed trust store value " + q(store) +
                    ". The required format is <TrustStoreType>:<TrustStoreName>"};
    std::string type = store.substr(0, colon), named = store.substr(colon + 1);
    if (!valid_store_type(type))
      throw Invalid{"trust policy statement " + q(s.name) + " uses an unsupported trust store type " + q(type) +
                    " in trust store value " + q(store)};
    if (!valid_store_name(named))
      throw Invalid{"trust policy statement " + q(s.name) + " uses an unsupported trust store name " + q(named) +
                    " in trust store value " + q(store) + ". Named store name needs to follow [a-zA-Z0-9_.-]+ format"};
  }
  validate_trusted_identities(s.name, s.trusted_identities);
  return level;
}

bool alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

/// ngo oci.go domainRegexp, without backtracking:
/// label(.label)*(:[0-9]+)? where label = [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9].
bool valid_scope_domain(std::string_view d)
{
  auto colon = d.find(':');
  std::string_view host = d.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view port = d.substr(colon + 1);
    if (port.empty() || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
  }
  if (host.empty()) return false;
  std::size_t start = 0;
  for (;;) {
    auto dot = host.find('.', start);
    std::string_view label = host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || !alnum(label.front()) || !alnum(label.back())) return false;
    if (!std::all_of(label.begin(), label.end(), [](char c) { return alnum(c) || c == '-'; })) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

/// ngo oci.go repositoryRegexp, without backtracking: '/'-separated components of [a-z0-9]+
/// joined by separators ".", "_", "__" or any run of '-' (the regex's `[-]*` also allows none).
bool valid_scope_repository(std::string_view r)
{
  std::size_t start = 0;
  for (;;) {
    auto slash = r.find('/', start);
    std::string_view comp = r.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (comp.empty() || !lower_alnum(comp.front()) || !lower_alnum(comp.back())) return false;
    for (std::size_t i = 0; i < comp.size();) {
      if (lower_alnum(comp[i])) {
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < comp.size() && !lower_alnum(comp[j])) ++j;
      std::string_view sep = comp.substr(i, j - i);
      bool ok = sep == "." || sep == "_" || sep == "__" ||
                std::all_of(sep.begin(), sep.end(), [](char c) { return c == '-'; });
      if (!ok) return false;
      i = j;
    }
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

/// ngo oci.go validateRegistryScopeFormat.
void validate_scope_format(const std::string& scope)
{
  const std::string ensure =
      "make sure it is a fully qualified repository without the scheme, protocol or tag. For example "
      "domain.com/my/repository or a local scope like local/myOCILayout";
  if (scope.size() > 1 && scope.find('*') != std::string::npos)
    throw Invalid{"registry scope " + q(scope) + " with wild card(s) is not valid, " + ensure};
  auto slash = scope.find('/');
  bool ok = slash != std::string::npos && slash > 0 && slash + 1 < scope.size() &&
            valid_scope_domain(std::string_view(scope).substr(0, slash)) &&
            valid_scope_repository(std::string_view(scope).substr(slash + 1));
  if (!ok) throw Invalid{"registry scope " + q(scope) + " is not valid, " + ensure};
}

void validate_registry_scopes(const std::vector<RawStatement>& statements)
{
  std::vector<std::string> order;
  std::map<std::string, int> count;
  for (const auto& s : statements) {
    if (s.registry_scopes.empty())
      throw Invalid{"oci trust policy statement " + q(s.name) +
                    " has zero registry scopes, it must specify registry scopes with at least one value"};
    if (s.registry_scopes.size() > 1 &&
        std::find(s.registry_scopes.begin(), s.registry_scopes.end(), k_wildcard) != s.registry_scopes.end())
      throw Invalid{"oci trust policy statement " + q(s.name) +
                    " uses wildcard registry scope '*', a wildcard scope cannot be used in conjunction with other scope values"};
    for (const auto& scope : s.registry_scopes) {
      if (scope != k_wildcard) validate_scope_format(scope);
      if (count[scope]++ == 0) order.push_back(scope);
    }
  }
  // notation-go walks a Go map here (random order); ferry reports the first in document order.
  for (const auto& scope : order)
    if (count[scope] > 1)
      throw Invalid{"registry scope " + q(scope) +
                    " is present in multiple oci trust policy statements, one registry scope value can only be associated "
                    "with one statement"};
}

/// ferry's addition to notation's checks: scopes of different statements that are equal once
/// normalised (design §8) would let the spelling of a name choose the statement.
void validate_normalised_scopes(const std::vector<TrustPolicyStatement>& statements)
{
  struct Seen {
    const TrustPolicyStatement* statement;
    const std::string* written;
  };
  std::map<std::string, Seen> seen;
  for (const auto& s : statements)
    for (std::size_t i = 0; i < s.registry_scopes.size(); ++i) {
      if (s.registry_scopes[i] == k_wildcard) continue;
      auto [it, inserted] = seen.try_emplace(s.normalised_scopes[i], Seen{&s, &s.registry_scopes[i]});
      if (inserted || it->second.statement == &s) continue;
      throw Invalid{"registry scopes " + q(*it->second.written) + " (statement " + q(it->second.statement->name) + ") and " +
                    q(s.registry_scopes[i]) + " (statement " + q(s.name) + ") name the same repository " + q(it->first) +
                    " once normalised (host lowercased, default port dropped, docker.io/library/ expanded), one "
                    "repository can only be associated with one statement"};
    }
}

} // namespace

TrustPolicyDocument TrustPolicyDocument::parse(std::string_view json, const std::string& source)
{
  RawDocument raw;
  try {
    raw = read_document(json);
  } catch (const Malformed& m) {
    throw Error(Errc::invalid_argument, source + ": malformed trust policy (" + m.what + "). To create a trust policy, see: " +
                                            k_trust_policy_link);
  }
  TrustPolicyDocument doc;
  try {
    // ngo:verifier/trustpolicy/oci.go (*OCIDocument).Validate, in its order.
    if (raw.version.empty()) throw Invalid{"oci trust policy document has empty version, version must be specified"};
    if (raw.version != "1.0") throw Invalid{"oci trust policy document uses unsupported version " + q(raw.version)};
    if (raw.statements.empty()) throw Invalid{"oci trust policy document can not have zero trust policy statements"};
    std::set<std::string> names;
    for (const auto& s : raw.statements) {
      if (names.count(s.name))
        throw Invalid{"multiple oci trust policy statements use the same name " + q(s.name) +
                      ", statement names must be unique"};
      TrustPolicyStatement st;
      try {
        st.verification = validate_core(s);
      } catch (const Invalid& e) {
        throw Invalid{"oci trust policy: " + e.reason};
      }
      names.insert(s.name);
      st.name = s.name;
      st.registry_scopes = s.registry_scopes;
      for (const auto& scope : s.registry_scopes)
        st.normalised_scopes.push_back(scope == k_wildcard ? scope : Reference::normalise_scope(scope));
      st.verify_timestamp = s.verify_timestamp.empty() ? "always" : s.verify_timestamp;
      for (const auto& store : s.trust_stores) {
        auto colon = store.find(':');
        st.trust_stores.emplace_back(store.substr(0, colon), store.substr(colon + 1));
      }
      st.trusted_identities = s.trusted_identities;
      doc.m_statements.push_back(std::move(st));
    }
    validate_registry_scopes(raw.statements);
    validate_normalised_scopes(doc.m_statements);
  } catch (const Invalid& e) {
    throw Error(Errc::invalid_argument, source + ": " + e.reason);
  }
  return doc;
}

TrustPolicyDocument TrustPolicyDocument::load(const std::filesystem::path& file)
{
  const std::string source = file.string();
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      throw Error(Errc::invalid_argument,
                  source + ": trust policy is not present. To create a trust policy, see: " + k_trust_policy_link);
    throw Error(Errc::io, source + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode))
    throw Error(Errc::invalid_argument,
                source + ": trust policy is not a regular file (symlinks are not supported). To create a trust policy, see: " +
                    k_trust_policy_link);
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(Errc::io, source + ": cannot open the trust policy: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(Errc::io, source + ": cannot read the trust policy");
  return parse(text.str(), source);
}

const TrustPolicyStatement* TrustPolicyDocument::applicable(const std::string& scope) const
{
  const std::string key = Reference::normalise_scope(scope);
  const TrustPolicyStatement* wildcard = nullptr;
  const TrustPolicyStatement* exact = nullptr;
  for (const auto& s : m_statements) {
    const auto& scopes = s.normalised_scopes;
    if (std::find(scopes.begin(), scopes.end(), k_wildcard) != scopes.end())
      wildcard = &s;
    else if (std::find(scopes.begin(), scopes.end(), key) != scopes.end())
      exact = &s;
  }
  return exact ? exact : wildcard;
}

const char* level_name(Level level)
{
  switch (level) {
  case Level::strict: return "strict";
  case Level::permissive: return "permissive";
  case Level::audit: return "audit";
  case Level::skip: return "skip";
  }
  return "?";
}

const char* action_name(Action action)
{
  switch (action) {
  case Action::enforce: return "enforce";
  case Action::log: return "log";
  case Action::skip: return "skip";
  }
  return "?";
}

std::optional<std::string> trusted_identity_failure(const std::string& policy_name,
                                                    const std::vector<std::string>& trusted_identities, X509* leaf)
{
  if (std::find(trusted_identities.begin(), trusted_identities.end(), k_wildcard) != trusted_identities.end())
    return std::nullopt;
  std::vector<DnMap> identities;
  for (const auto& identity : trusted_identities) {
    auto colon = identity.find(':');
    if (colon == std::string::npos)
      return "trust policy statement " + q(policy_name) + " has trusted identity " + q(identity) + " missing separator";
    if (identity.substr(0, colon) != k_x509_subject) continue; // other prefixes belong to plugins
    std::string value = identity.substr(colon + 1);
    if (value.empty())
      return "trust policy statement " + q(policy_name) + " has trusted identity " + q(identity) + " without an identity value";
    try {
      identities.push_back(parse_notation_dn(value));
    } catch (const Error& e) {
      return std::string(e.what());
    }
  }
  if (identities.empty()) return "no x509 trusted identities are configured in the trust policy " + q(policy_name);
  if (!leaf) return std::string("no signing certificate to match the X.509 trusted identities against");

  GoName subject = go_name(X509_get_subject_name(leaf));
  DnMap leaf_dn;
  try {
    if (!subject.parsable)
      throw Error(Errc::invalid_argument,
                  "x509: invalid RDNSequence: invalid attribute value (not a string type Go accepts) in " + q(subject.text));
    leaf_dn = parse_notation_dn(subject.text);
  } catch (const Error& e) {
    return "error while parsing the certificate subject from the digital signature. error : " + q(e.what());
  }
  for (const auto& identity : identities)
    if (is_subset_dn(identity, leaf_dn)) return std::nullopt;
  return "signing certificate from the digital signature does not match the X.509 trusted identities " +
         go_quote_dn_maps(identities) + " defined in the trust policy " + q(policy_name);
}

bool trusted_identity_matches(const std::vector<std::string>& trusted_identities, X509* leaf)
{
  return !trusted_identity_failure("", trusted_identities, leaf).has_value();
}

} // namespace ferry::verify

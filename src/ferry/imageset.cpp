// Image sets (issue 16): the plain list and skopeo sync's YAML, expanded through the tags list.
#include <ferry/imageset.hpp>

#include <ferry/error.hpp>
#include <ferry/util/file.hpp>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>

namespace ferry {

namespace {

/// An image-set file is read whole; this is far beyond any real one.
constexpr std::size_t k_max_file = std::size_t{16} << 20;

// ---- semver (Masterminds/semver v3, as skopeo's images-by-semver uses it) ----

bool parse_number(std::string_view text, std::uint64_t& out)
{
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

bool is_digits(std::string_view s)
{
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_x(std::string_view s) { return s == "x" || s == "X" || s == "*"; }

// Pre-release precedence: identifiers compared left to right, numbers numerically and below
// alphanumerics, a missing identifier below a present one (semver 2.0.0 §11).
int compare_prerelease_part(std::string_view a, std::string_view b)
{
  if (a == b) return 0;
  if (a.empty()) return -1;
  if (b.empty()) return 1;
  std::uint64_t na = 0, nb = 0;
  bool da = parse_number(a, na), db = parse_number(b, nb);
  if (da && db) return na < nb ? -1 : 1;
  if (da) return -1;
  if (db) return 1;
  return a < b ? -1 : 1;
}

std::vector<std::string_view> split_dots(std::string_view s)
{
  std::vector<std::string_view> out;
  for (;;) {
    auto dot = s.find('.');
    out.push_back(s.substr(0, dot));
    if (dot == std::string_view::npos) return out;
    s.remove_prefix(dot + 1);
  }
}

int compare_prerelease(std::string_view a, std::string_view b)
{
  if (a == b) return 0;
  if (a.empty()) return 1;  // a release is above its pre-releases
  if (b.empty()) return -1;
  auto pa = split_dots(a), pb = split_dots(b);
  for (std::size_t i = 0; i < std::max(pa.size(), pb.size()); ++i) {
    int d = compare_prerelease_part(i < pa.size() ? pa[i] : std::string_view(), i < pb.size() ? pb[i] : std::string_view());
    if (d) return d;
  }
  return 0;
}

// The version grammar (a `v`, up to three dot-separated parts, -pre, +build); in constraints
// the parts may also be x, X or *.
const std::string k_version_re = R"(v?([0-9xX*]+)(\.[0-9xX*]+)?(\.[0-9xX*]+)?(-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)";
const std::string k_op_re = R"((!=|>=|=>|<=|=<|~>|=|>|<|~|\^|))";

const std::regex& version_regex()
{
  static const std::regex re(R"(^v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$)");
  return re;
}

} // namespace

std::optional<SemverVersion> SemverVersion::parse(std::string_view text)
{
  if (text.size() > 256) return std::nullopt;
  std::match_results<std::string_view::const_iterator> m;
  if (!std::regex_match(text.begin(), text.end(), m, version_regex())) return std::nullopt;
  SemverVersion v;
  if (!parse_number(std::string_view(&*m[1].first, static_cast<std::size_t>(m[1].length())), v.major)) return std::nullopt;
  if (m[2].matched && !parse_number(std::string_view(&*m[2].first, static_cast<std::size_t>(m[2].length())), v.minor))
    return std::nullopt;
  if (m[3].matched && !parse_number(std::string_view(&*m[3].first, static_cast<std::size_t>(m[3].length())), v.patch))
    return std::nullopt;
  if (m[4].matched) {
    v.prerelease = m[4].str();
    // A numeric pre-release identifier has no leading zero (semver 2.0.0 §9).
    for (auto part : split_dots(v.prerelease))
      if (is_digits(part) && part.size() > 1 && part.front() == '0') return std::nullopt;
  }
  return v;
}

int SemverVersion::compare(const SemverVersion& o) const
{
  if (major != o.major) return major < o.major ? -1 : 1;
  if (minor != o.minor) return minor < o.minor ? -1 : 1;
  if (patch != o.patch) return patch < o.patch ? -1 : 1;
  return compare_prerelease(prerelease, o.prerelease);
}

namespace {

using Term = SemverConstraint::Term;

SemverConstraint::Term parse_term(const std::string& text, const std::string& whole)
{
  static const std::regex re("^\\s*" + k_op_re + "\\s*" + k_version_re + "\\s*$");
  std::smatch m;
  if (!std::regex_match(text, m, re)) throw Error(Errc::invalid_argument, "improper constraint: " + whole);
  Term t;
  t.op = m[1].str();
  std::string major = m[2].str(), minor = m[3].matched ? m[3].str().substr(1) : "",
              patch = m[4].matched ? m[4].str().substr(1) : "", pre = m[5].matched ? m[5].str() : "";
  std::string version;
  if (is_x(major)) {
    version = "0.0.0" + pre;
    t.dirty = true;
  } else if (minor.empty() || is_x(minor)) {
    version = major + ".0.0" + pre;
    t.dirty = t.minor_dirty = true;
  } else if (patch.empty() || is_x(patch)) {
    version = major + "." + minor + ".0" + pre;
    t.dirty = t.patch_dirty = true;
  } else {
    version = major + "." + minor + "." + patch + pre;
  }
  auto v = SemverVersion::parse(version);
  if (!v) throw Error(Errc::invalid_argument, "improper constraint: " + whole);
  t.version = *v;
  return t;
}

// Every term but != refuses a pre-release version unless the term names a pre-release
// (Masterminds/semver issue 21: pre-releases only when asked for).
bool prerelease_refused(const SemverVersion& v, const Term& c) { return !v.prerelease.empty() && c.version.prerelease.empty(); }

bool check_tilde(const SemverVersion& v, const Term& c)
{
  if (prerelease_refused(v, c)) return false;
  if (v.compare(c.version) < 0) return false;
  const auto& k = c.version;
  if (k.major == 0 && k.minor == 0 && k.patch == 0 && !c.minor_dirty && !c.patch_dirty) return true;  // ~0.0.0: any
  if (v.major != k.major) return false;
  if (v.minor != k.minor && !c.minor_dirty) return false;
  return true;
}

bool check_term(const SemverVersion& v, const Term& c)
{
  const auto& k = c.version;
  const std::string& op = c.op;
  if (op == "!=") {
    if (c.dirty) {
      if (prerelease_refused(v, c)) return false;
      if (k.major != v.major) return true;
      if (c.minor_dirty) return false;
      if (k.minor != v.minor) return true;
      if (c.patch_dirty) return compare_prerelease(v.prerelease, k.prerelease) != 0;
    }
    return v.compare(k) != 0;
  }
  if (op == "" || op == "=") {
    if (prerelease_refused(v, c)) return false;
    if (c.dirty) return check_tilde(v, c);
    return v.compare(k) == 0;
  }
  if (op == "~" || op == "~>") return check_tilde(v, c);
  if (prerelease_refused(v, c)) return false;
  if (op == ">") {
    if (!c.dirty) return v.compare(k) > 0;
    if (v.major != k.major) return v.major > k.major;
    if (c.minor_dirty) return false;  // >11 wants 12 or more
    if (c.patch_dirty) return v.minor > k.minor;
    return v.compare(k) > 0;
  }
  if (op == "<") return v.compare(k) < 0;
  if (op == ">=" || op == "=>") return v.compare(k) >= 0;
  if (op == "<=" || op == "=<") {
    if (!c.dirty) return v.compare(k) <= 0;
    if (v.major > k.major) return false;
    if (v.major == k.major && v.minor > k.minor && !c.minor_dirty) return false;
    return true;
  }
  if (op == "^") {
    if (v.compare(k) < 0) return false;
    if (k.major > 0 || c.minor_dirty) return v.major == k.major;
    if (v.major > 0) return false;
    if (k.minor > 0 || c.patch_dirty) return v.minor == k.minor;
    if (v.minor > 0) return false;
    return v.patch == k.patch;
  }
  return false;
}

} // namespace

SemverConstraint SemverConstraint::parse(const std::string& whole)
{
  if (whole.size() > 1024) throw Error(Errc::invalid_argument, "improper constraint: longer than 1024 characters");
  // A hyphen range `A - B` is `>= A, <= B`.
  static const std::regex range("\\s*(" + k_version_re + ")\\s+-\\s+(" + k_version_re + ")\\s*");
  std::string text;
  {
    std::string rest = whole;
    std::smatch m;
    while (std::regex_search(rest, m, range)) {
      text += m.prefix().str() + ">= " + m[1].str() + ", <= " + m[7].str();
      rest = m.suffix().str();
    }
    text += rest;
  }
  static const std::regex valid("^(\\s*" + k_op_re + "\\s*" + k_version_re + "\\s*)((?:\\s+|,\\s*)" + k_op_re + "\\s*" +
                                k_version_re + "\\s*)*$");
  static const std::regex find(k_op_re + "\\s*" + k_version_re);
  SemverConstraint out;
  std::size_t start = 0;
  for (;;) {
    auto bar = text.find("||", start);
    std::string segment = text.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    if (!std::regex_match(segment, valid)) throw Error(Errc::invalid_argument, "improper constraint: " + whole);
    std::vector<Term> all;
    for (auto it = std::sregex_iterator(segment.begin(), segment.end(), find); it != std::sregex_iterator(); ++it)
      all.push_back(parse_term(it->str(), whole));
    if (all.empty()) throw Error(Errc::invalid_argument, "improper constraint: " + whole);
    out.any_of.push_back(std::move(all));
    if (bar == std::string::npos) break;
    start = bar + 2;
  }
  return out;
}

bool SemverConstraint::check(const SemverVersion& version) const
{
  for (const auto& all : any_of)
    if (std::all_of(all.begin(), all.end(), [&](const Term& t) { return check_term(version, t); })) return true;
  return false;
}

bool SemverConstraint::matches(std::string_view tag) const
{
  auto v = SemverVersion::parse(tag);
  return v && check(*v);
}

namespace {

// ---- the tag regex ----

/// skopeo compiles images-by-tag-regex with Go's regexp (RE2 syntax) and selects a tag when
/// the regex matches anywhere in it (MatchString: unanchored, so anchor with ^…$ for a whole
/// tag). Here it is std::regex ECMAScript, searched the same way. Where the two differ: RE2
/// has no backreferences or lookaround (ECMAScript accepts them), and ECMAScript has no
/// (?flags) groups, \p{…} classes, [[:alpha:]] outside brackets or (?P<name>…): a leading
/// `(?i)` (the common one) is taken as case-insensitive; the others do not compile here.
std::regex compile_tag_regex(const std::string& pattern)
{
  std::string body = pattern;
  auto flags = std::regex::ECMAScript;
  if (body.rfind("(?i)", 0) == 0) {
    body = body.substr(4);
    flags |= std::regex::icase;
  }
  return std::regex(body, flags);
}

// ---- YAML ----

std::size_t line_of(const YAML::Node& node, std::size_t fallback)
{
  auto mark = node.Mark();
  return mark.line >= 0 ? static_cast<std::size_t>(mark.line) + 1 : fallback;
}

[[noreturn]] void fail(const std::string& file, std::size_t line, const std::string& what)
{
  throw Error(Errc::invalid_argument, file + ":" + std::to_string(line) + ": " + what);
}

std::string scalar(const YAML::Node& node, const std::string& file, std::size_t line, const std::string& what)
{
  if (!node.IsScalar()) fail(file, line, what + " must be a string");
  return node.Scalar();
}

/// The keys of a mapping in file order, each once (YAML forbids a key twice; skopeo's
/// yaml.v3 refuses it too).
std::vector<std::pair<YAML::Node, YAML::Node>> entries_of(const YAML::Node& map, const std::string& file,
                                                          std::size_t line, const std::string& what)
{
  if (!map.IsMap()) fail(file, line, what + " must be a mapping");
  std::vector<std::pair<YAML::Node, YAML::Node>> out;
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    std::size_t l = line_of(it->first, line);
    std::string key = scalar(it->first, file, l, "a key of " + what);
    if (!seen.insert(key).second) fail(file, l, what + ": key \"" + key + "\" given twice");
    out.emplace_back(it->first, it->second);
  }
  return out;
}

Reference repository_reference(const std::string& registry, const std::string& repo, const std::string& file, std::size_t line)
{
  Reference r;
  try {
    r = Reference::parse(registry + "/" + repo);
  } catch (const Error& e) {
    fail(file, line, "\"" + registry + "/" + repo + "\" is not a repository: " + e.what());
  }
  if (!r.tag.empty() || r.digest) fail(file, line, "\"" + repo + "\" names an image, not a repository (give tags under it)");
  return r;
}

void parse_yaml(ImageSet& set, const YAML::Node& root)
{
  const std::string& file = set.file;
  for (const auto& [reg_key, reg_value] : entries_of(root, file, 1, "the image set")) {
    std::size_t reg_line = line_of(reg_key, 1);
    ImageSetRegistry registry;
    registry.registry = reg_key.Scalar();
    registry.line = reg_line;
    registry.host = repository_reference(registry.registry, "x", file, reg_line).registry;
    if (registry.registry.empty()) fail(file, reg_line, "an empty registry name");
    if (reg_value.IsNull()) {  // skopeo: "No images specified for registry", not an error
      set.registries.push_back(std::move(registry));
      continue;
    }
    for (const auto& [key_node, value] : entries_of(reg_value, file, reg_line, registry.registry)) {
      std::size_t key_line = line_of(key_node, reg_line);
      const std::string key = key_node.Scalar();
      const YAML::Node section = value;
      auto repos = [&](const std::string& what) {
        return section.IsNull() ? std::vector<std::pair<YAML::Node, YAML::Node>>{}
                                : entries_of(section, file, key_line, registry.registry + " " + what);
      };
      if (key == "images") {
        for (const auto& [repo_node, tags] : repos("images")) {
          ImageSetEntry e;
          e.line = line_of(repo_node, key_line);
          Reference r = repository_reference(registry.registry, repo_node.Scalar(), file, e.line);
          e.registry = r.registry;
          e.repository = r.repository;
          if (!tags.IsNull() && !tags.IsSequence())
            fail(file, e.line, registry.registry + "/" + repo_node.Scalar() + ": images takes a list of tags or digests");
          if (tags.IsNull() || tags.size() == 0) {
            e.rule = ImageSetEntry::Rule::all_tags;  // an empty list: every tag (skopeo)
          } else {
            e.rule = ImageSetEntry::Rule::tags;
            for (const auto& t : tags) {
              std::size_t l = line_of(t, e.line);
              std::string tag = scalar(t, file, l, "a tag");
              // skopeo tries a digest first, then a tag.
              bool ok = tag.find(':') != std::string::npos ? Digest::is_valid(tag) : Reference::is_valid_tag(tag);
              if (!ok) fail(file, l, "\"" + tag + "\" is not a valid tag or digest");
              e.tags.push_back(tag);
            }
          }
          set.entries.push_back(std::move(e));
        }
      } else if (key == "images-by-tag-regex" || key == "images-by-semver") {
        bool regex = key == "images-by-tag-regex";
        for (const auto& [repo_node, pattern_node] : repos(key)) {
          ImageSetEntry e;
          e.line = line_of(repo_node, key_line);
          Reference r = repository_reference(registry.registry, repo_node.Scalar(), file, e.line);
          e.registry = r.registry;
          e.repository = r.repository;
          std::size_t l = line_of(pattern_node, e.line);
          e.pattern = scalar(pattern_node, file, l, regex ? "a tag regex" : "a semver constraint");
          if (regex) {
            e.rule = ImageSetEntry::Rule::tag_regex;
            try {
              compile_tag_regex(e.pattern);
            } catch (const std::regex_error& x) {
              fail(file, l, "tag regex \"" + e.pattern + "\" does not compile: " + x.what());
            }
          } else {
            e.rule = ImageSetEntry::Rule::semver;
            try {
              SemverConstraint::parse(e.pattern);
            } catch (const Error& x) {
              fail(file, l, "semver constraint \"" + e.pattern + "\" does not parse: " + x.what());
            }
          }
          set.entries.push_back(std::move(e));
        }
      } else if (key == "credentials") {
        for (const auto& [k, v] : entries_of(value, file, key_line, registry.registry + " credentials")) {
          std::size_t l = line_of(k, key_line);
          if (k.Scalar() == "username")
            registry.username = scalar(v, file, l, "username");
          else if (k.Scalar() == "password")
            registry.password = scalar(v, file, l, "password");
          else
            fail(file, l, "unknown key \"" + k.Scalar() + "\" in credentials (username, password)");
        }
      } else if (key == "tls-verify") {
        // YAML 1.2 booleans, as yaml.v3 reads them into a bool.
        std::string v = scalar(value, file, key_line, "tls-verify");
        if (v == "true" || v == "True" || v == "TRUE")
          registry.tls_verify = true;
        else if (v == "false" || v == "False" || v == "FALSE")
          registry.tls_verify = false;
        else
          fail(file, key_line, "tls-verify must be true or false, not \"" + v + "\"");
      } else if (key == "cert-dir") {
        registry.cert_dir = scalar(value, file, key_line, "cert-dir");
      } else {
        fail(file, key_line,
             "unknown key \"" + key + "\" under " + registry.registry +
                 " (skopeo sync keys: images, images-by-tag-regex, images-by-semver, credentials, tls-verify, cert-dir)");
      }
    }
    set.registries.push_back(std::move(registry));
  }
}

void parse_list(ImageSet& set, const std::string& bytes)
{
  std::istringstream in(bytes);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (auto hash = line.find('#'); hash != std::string::npos) line = line.substr(0, hash);
    auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    auto e = line.find_last_not_of(" \t\r");
    ImageSetEntry entry;
    entry.rule = ImageSetEntry::Rule::reference;
    entry.line = n;
    std::string text = line.substr(b, e - b + 1);
    try {
      entry.reference = Reference::parse(text);
    } catch (const Error& x) {
      throw Error(x.code(), set.file + ":" + std::to_string(n) + ": " + x.what());
    }
    entry.registry = entry.reference->registry;
    entry.repository = entry.reference->repository;
    set.entries.push_back(std::move(entry));
  }
}

/// A file that does not parse as YAML but has a `key:` line was meant to be YAML.
bool looks_like_yaml(const std::string& bytes)
{
  std::istringstream in(bytes);
  for (std::string line; std::getline(in, line);) {
    if (auto hash = line.find('#'); hash != std::string::npos) line = line.substr(0, hash);
    auto e = line.find_last_not_of(" \t\r");
    if (e == std::string::npos) continue;
    line.resize(e + 1);
    if (line.back() == ':' || line.find(": ") != std::string::npos) return true;
  }
  return false;
}

const char* rule_name(ImageSetEntry::Rule rule)
{
  switch (rule) {
  case ImageSetEntry::Rule::reference: return "reference";
  case ImageSetEntry::Rule::tags: return "tags";
  case ImageSetEntry::Rule::all_tags: return "all-tags";
  case ImageSetEntry::Rule::tag_regex: return "tag-regex";
  case ImageSetEntry::Rule::semver: return "semver";
  }
  return "?";
}

} // namespace

ImageSet ImageSet::parse(const std::string& bytes, const std::string& file)
{
  ImageSet set;
  set.file = file;
  set.digest = Digest::of(bytes);
  if (bytes.size() > k_max_file) throw Error(Errc::invalid_argument, file + ": larger than 16 MiB");
  YAML::Node root;
  try {
    root = YAML::Load(bytes);
  } catch (const YAML::Exception& e) {
    if (looks_like_yaml(bytes))
      fail(file, e.mark.line >= 0 ? static_cast<std::size_t>(e.mark.line) + 1 : 1, "not valid YAML: " + e.msg);
    parse_list(set, bytes);
    return set;
  }
  if (root.IsMap()) {
    set.yaml = true;
    parse_yaml(set, root);
  } else {
    parse_list(set, bytes);
  }
  return set;
}

ImageSet ImageSet::load(const std::filesystem::path& file)
{
  return parse(read_user_file(file, k_max_file, "images file", Errc::invalid_argument), file.string());
}

std::vector<Reference> ImageSetExpansion::references() const
{
  std::vector<Reference> out;
  std::set<std::string> seen;
  for (const auto& item : items)
    for (const auto& r : item.references)
      if (seen.insert(r.str()).second) out.push_back(r);
  return out;
}

std::string ImageSetExpansion::record_json() const
{
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& item : items) {
    const auto& e = set->entries.at(item.entry);
    nlohmann::json j = {{"line", e.line}, {"rule", rule_name(e.rule)}, {"registry", e.registry}, {"repository", e.repository}};
    if (e.rule == ImageSetEntry::Rule::tag_regex || e.rule == ImageSetEntry::Rule::semver) j["pattern"] = e.pattern;
    if (e.rule == ImageSetEntry::Rule::tags) j["tags"] = e.tags;
    if (e.rule == ImageSetEntry::Rule::all_tags || e.rule == ImageSetEntry::Rule::tag_regex ||
        e.rule == ImageSetEntry::Rule::semver)
      j["listed"] = item.listed;
    nlohmann::json refs = nlohmann::json::array();
    for (const auto& r : item.references) refs.push_back(r.str());
    j["references"] = refs;
    entries.push_back(j);
  }
  // Credentials, tls-verify and cert-dir are how the references were reached, not what was
  // chosen: never recorded.
  nlohmann::json doc = {{"file", set->file},
                        {"digest", set->digest.str()},
                        {"format", set->yaml ? "skopeo-sync-yaml" : "list"},
                        {"entries", entries}};
  return doc.dump();
}

ImageSetExpansion expand(const ImageSet& set, const RepositoryOpener& open, const Logger& log)
{
  ImageSetExpansion out;
  out.set = &set;
  for (std::size_t i = 0; i < set.entries.size(); ++i) {
    const auto& e = set.entries[i];
    ImageSetExpansion::Item item;
    item.entry = i;
    std::string where = set.file + ":" + std::to_string(e.line);
    Reference repo_ref;
    repo_ref.registry = e.registry;
    repo_ref.repository = e.repository;
    switch (e.rule) {
    case ImageSetEntry::Rule::reference: item.references.push_back(*e.reference); break;
    case ImageSetEntry::Rule::tags:
      for (const auto& t : e.tags) {
        Reference r = repo_ref;
        if (t.find(':') != std::string::npos)
          r.digest = Digest::parse(t);
        else
          r.tag = t;
        item.references.push_back(std::move(r));
      }
      break;
    case ImageSetEntry::Rule::all_tags:
    case ImageSetEntry::Rule::tag_regex:
    case ImageSetEntry::Rule::semver: {
      auto repo = open(e.registry, e.repository);
      std::optional<std::vector<std::string>> tags;
      try {
        tags = repo->list_tags();
      } catch (...) {
        rethrow_with_context(where);
      }
      if (!tags)
        throw Error(Errc::not_found, where + ": cannot list the tags of " + repo_ref.name() +
                                         " (the registry refused the tags list, or it has more than " +
                                         std::to_string(remote::k_max_listed_tags) + " tags)");
      item.listed = tags->size();
      std::optional<std::regex> regex;
      std::optional<SemverConstraint> constraint;
      if (e.rule == ImageSetEntry::Rule::tag_regex) regex = compile_tag_regex(e.pattern);
      if (e.rule == ImageSetEntry::Rule::semver) constraint = SemverConstraint::parse(e.pattern);
      for (const auto& t : *tags) {
        if (!Reference::is_valid_tag(t)) continue;  // skopeo logs and skips such a listed tag
        if (regex && !std::regex_search(t, *regex)) continue;
        if (constraint && !constraint->matches(t)) continue;
        Reference r = repo_ref;
        r.tag = t;
        item.references.push_back(std::move(r));
      }
      break;
    }
    }
    std::sort(item.references.begin(), item.references.end(),
              [](const Reference& a, const Reference& b) { return a.str() < b.str(); });
    item.references.erase(std::unique(item.references.begin(), item.references.end(),
                                      [](const Reference& a, const Reference& b) { return a.str() == b.str(); }),
                          item.references.end());
    if (log && e.rule != ImageSetEntry::Rule::reference) {
      std::string pattern = e.rule == ImageSetEntry::Rule::tags ? std::to_string(e.tags.size()) + " given"
                            : e.pattern.empty()                 ? "every tag"
                                                                : "\"" + e.pattern + "\"";
      std::string line = where + ": " + rule_name(e.rule) + " " + pattern + " in " + repo_ref.name() + ": " +
                         std::to_string(item.references.size()) + (item.references.size() == 1 ? " tag" : " tags");
      if (e.rule != ImageSetEntry::Rule::tags) line += " of " + std::to_string(item.listed) + " listed";
      if (item.references.empty()) line += " (matches no tag)";
      log(line);
    }
    out.items.push_back(std::move(item));
  }
  return out;
}

} // namespace ferry

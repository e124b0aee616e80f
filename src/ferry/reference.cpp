#include <ferry/reference.hpp>

#include <ferry/error.hpp>

#include <algorithm>
#include <regex>

namespace ferry {

namespace {

const std::regex& domain_re()
{
  // domain-component ('.' domain-component)* [':' port], or a bracketed IPv6 address.
  static const std::regex re(R"(^((?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$)");
  return re;
}

const std::regex& path_component_re()
{
  static const std::regex re(R"(^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$)");
  return re;
}

const std::regex& tag_re()
{
  static const std::regex re(R"(^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$)");
  return re;
}

[[noreturn]] void bad(const std::string& text, const std::string& why)
{
  throw Error(Errc::invalid_reference, "invalid reference \"" + text + "\": " + why);
}

bool valid_path(const std::string& path)
{
  if (path.empty()) return false;
  std::size_t start = 0;
  for (;;) {
    auto slash = path.find('/', start);
    std::string comp = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!std::regex_match(comp, path_component_re())) return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

// Splits "a/b/c" into (domain, remainder) the way docker's normalisation does.
std::pair<std::string, std::string> split_domain(const std::string& name)
{
  auto slash = name.find('/');
  if (slash == std::string::npos) return {"", name};
  std::string first = name.substr(0, slash);
  if (first.find('.') == std::string::npos && first.find(':') == std::string::npos && first != "localhost" &&
      std::none_of(first.begin(), first.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
    return {"", name};
  return {first, name.substr(slash + 1)};
}

} // namespace

Reference Reference::parse(const std::string& text)
{
  if (text.empty()) bad(text, "empty");
  if (text.size() > 4096) bad(text.substr(0, 64) + "...", "too long");
  Reference r;
  std::string rest = text;
  if (auto at = rest.find('@'); at != std::string::npos) {
    try {
      r.digest = Digest::parse(rest.substr(at + 1));
    } catch (const Error& e) {
      bad(text, e.what());
    }
    rest = rest.substr(0, at);
  }
  // A tag is after the last ':' that follows the last '/'.
  auto last_slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && (last_slash == std::string::npos || colon > last_slash)) {
    r.tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (!std::regex_match(r.tag, tag_re())) bad(text, "invalid tag \"" + r.tag + "\"");
  }
  auto [domain, path] = split_domain(rest);
  if (!domain.empty() && !std::regex_match(domain, domain_re())) bad(text, "invalid registry \"" + domain + "\"");
  if (domain.empty() || domain == "index.docker.io" || domain == "registry-1.docker.io") domain = "docker.io";
  if (domain == "docker.io" && path.find('/') == std::string::npos) path = "library/" + path;
  if (!valid_path(path))
    bad(text, "invalid repository \"" + path + "\" (lowercase letters, digits and separators . _ __ - only)");
  if (domain.size() + 1 + path.size() > 255) bad(text, "repository name longer than 255 characters");
  r.registry = domain;
  r.repository = path;
  return r;
}

bool Reference::is_valid_repository(const std::string& repo) { return valid_path(repo) && repo.size() <= 255; }

bool Reference::is_valid_tag(const std::string& tag) { return std::regex_match(tag, tag_re()); }

std::string Reference::ref_or_default() const
{
  if (!tag.empty()) return tag;
  if (digest) return digest->str();
  return "latest";
}

std::string Reference::str() const
{
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->str();
  return s;
}

std::string Reference::endpoint_host() const { return registry == "docker.io" ? "registry-1.docker.io" : registry; }

std::string Reference::normalise_scope(std::string_view registry_slash_repository)
{
  const auto slash = registry_slash_repository.find('/');
  std::string host(registry_slash_repository.substr(0, slash));
  std::string path(slash == std::string_view::npos ? std::string_view{} : registry_slash_repository.substr(slash + 1));

  std::transform(host.begin(), host.end(), host.begin(), [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; });
  // The port follows the last ':' of a name, or the ']' of an IPv6 literal ("[::1]:5000").
  std::size_t colon = std::string::npos;
  if (!host.empty() && host.front() == '[') {
    if (auto close = host.find(']'); close != std::string::npos && close + 1 < host.size() && host[close + 1] == ':')
      colon = close + 1;
  } else {
    colon = host.find(':');
  }
  if (colon != std::string::npos) {
    std::string port = host.substr(colon + 1);
    if (!port.empty() && std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      port.erase(0, std::min(port.find_first_not_of('0'), port.size() - 1));
      host.resize(colon);
      if (port != "443" && port != "80") host += ":" + port;
    }
  }
  if (host == "index.docker.io" || host == "registry-1.docker.io") host = "docker.io";
  if (host == "docker.io" && !path.empty() && path.find('/') == std::string::npos) path = "library/" + path;
  return slash == std::string_view::npos ? host : host + "/" + path;
}

std::string Reference::scope() const { return normalise_scope(name()); }

Target Target::parse(const std::string& text)
{
  Target t;
  auto slash = text.find('/');
  t.registry = text.substr(0, slash);
  if (slash != std::string::npos) t.ns = text.substr(slash + 1);
  while (!t.ns.empty() && t.ns.back() == '/') t.ns.pop_back();
  if (t.registry.empty() || !std::regex_match(t.registry, domain_re()))
    throw Error(Errc::invalid_reference, "invalid push target \"" + text + "\": want host[:port][/namespace]");
  if (!t.ns.empty() && !valid_path(t.ns))
    throw Error(Errc::invalid_reference, "invalid push target \"" + text + "\": invalid namespace \"" + t.ns + "\"");
  return t;
}

} // namespace ferry

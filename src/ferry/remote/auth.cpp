#include <ferry/util/text.hpp>
#include <ferry/remote/auth.hpp>

#include <ferry/error.hpp>
#include <ferry/util/base64.hpp>
#include <ferry/util/json.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>

namespace ferry::remote {

namespace {

constexpr std::size_t k_token_reply_limit = std::size_t{1} << 20;
constexpr std::size_t k_max_tokens_per_host = 256;
constexpr long k_default_token_lifetime_s = 60; // token.md: "defaults to 60 seconds"

bool is_tchar(char c)
{
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token68_char(char c)
{
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-._~+/").find(c) != std::string_view::npos;
}


/// "scheme://authority" of a URL, lower-cased; empty when it has none.
std::string scheme_and_authority(const std::string& url)
{
  auto sep = url.find("://");
  if (sep == std::string::npos) return {};
  auto end = url.find_first_of("/?#", sep + 3);
  std::string out = url.substr(0, end == std::string::npos ? url.size() : end);
  return to_lower(out);
}

std::string url_scheme(const std::string& url)
{
  auto sep = url.find("://");
  return sep == std::string::npos ? std::string() : to_lower(url.substr(0, sep));
}

std::string url_path(const std::string& url)
{
  auto sep = url.find("://");
  std::size_t start = sep == std::string::npos ? 0 : url.find('/', sep + 3);
  if (start == std::string::npos) return "/";
  auto end = url.find_first_of("?#", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string without_query(const std::string& url)
{
  return url.substr(0, url.find('?'));
}

std::string percent_encode(std::string_view text)
{
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += k_hex[u >> 4];
      out += k_hex[u & 0x0f];
    }
  }
  return out;
}

std::vector<std::string> split_scopes(const std::string& scope)
{
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < scope.size()) {
    auto j = scope.find(' ', i);
    if (j == std::string::npos) j = scope.size();
    if (j > i) out.push_back(scope.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

/// "repository:a:pull,push repository:b:pull" -> sorted {"repository:a:pull", …}.
std::vector<std::string> scope_grants(const std::string& scope)
{
  std::vector<std::string> out;
  for (const auto& item : split_scopes(scope)) {
    auto colon = item.rfind(':');
    if (colon == std::string::npos) {
      out.push_back(item);
      continue;
    }
    std::string resource = item.substr(0, colon + 1);
    std::string actions = item.substr(colon + 1);
    std::size_t i = 0;
    while (i <= actions.size()) {
      auto j = actions.find(',', i);
      if (j == std::string::npos) j = actions.size();
      if (j > i) out.push_back(resource + actions.substr(i, j - i));
      i = j + 1;
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string basic_authorization(const Credential& credential)
{
  return "Basic " + base64_encode(credential.username + ":" + credential.password);
}

std::string source_of(const Credential& credential)
{
  if (!credential.source.empty()) return credential.source;
  return credential.empty() ? "anonymous" : "unknown source";
}

[[noreturn]] void authentication_failed(const std::string& host, const Credential& credential)
{
  throw Error(Errc::unauthorized, host + ": authentication failed (credentials from " + source_of(credential) + ")");
}


} // namespace

std::vector<Challenge> parse_www_authenticate(std::string_view h)
{
  std::vector<Challenge> out;
  const std::size_t n = h.size();
  std::size_t i = 0;
  bool in_challenge = false; // params may attach to out.back()

  auto skip_ws = [&] {
    while (i < n && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  auto read_token = [&] {
    std::size_t b = i;
    while (i < n && is_tchar(h[i])) ++i;
    return h.substr(b, i - b);
  };
  auto read_quoted = [&] { // at '"'
    std::string value;
    ++i;
    while (i < n) {
      char c = h[i];
      if (c == '\\' && i + 1 < n) {
        value += h[i + 1];
        i += 2;
      } else if (c == '"') {
        ++i;
        break;
      } else {
        value += c;
        ++i;
      }
    }
    return value;
  };
  auto skip_to_comma = [&] {
    while (i < n && h[i] != ',') {
      if (h[i] == '"') read_quoted();
      else ++i;
    }
  };

  for (;;) {
    while (i < n && (h[i] == ' ' || h[i] == '\t' || h[i] == ',')) ++i;
    if (i >= n) break;
    std::string_view token = read_token();
    if (token.empty()) { // garbage where a scheme or parameter name should be
      if (h[i] == '"') read_quoted();
      else ++i;
      skip_to_comma();
      continue;
    }
    std::size_t after_token = i;
    skip_ws();
    if (i < n && h[i] == '=') { // auth-param
      ++i;
      skip_ws();
      std::string value;
      if (i < n && h[i] == '"') value = read_quoted();
      else value = std::string(read_token());
      if (in_challenge) out.back().params.emplace(to_lower(token), std::move(value));
      skip_ws();
      if (i < n && h[i] != ',') skip_to_comma();
      continue;
    }
    // A new challenge; `token` is its scheme.
    i = after_token;
    out.push_back(Challenge{to_lower(token), {}, {}});
    in_challenge = true;
    if (i < n && (h[i] == ' ' || h[i] == '\t')) {
      skip_ws();
      std::size_t b = i;
      while (i < n && is_token68_char(h[i])) ++i;
      std::size_t end68 = i;
      while (i < n && h[i] == '=') ++i;
      std::size_t after = i;
      skip_ws();
      if (end68 > b && (i >= n || h[i] == ',')) {
        out.back().token68 = std::string(h.substr(b, after - b));
        in_challenge = false; // token68 and auth-params exclude each other
        continue;
      }
      i = b; // auth-params follow
    }
  }
  return out;
}

std::string url_host(const std::string& url)
{
  std::string base = scheme_and_authority(url);
  auto sep = base.find("://");
  std::string authority = sep == std::string::npos ? base : base.substr(sep + 3);
  auto at = authority.rfind('@');
  if (at != std::string::npos) authority = authority.substr(at + 1);
  return authority;
}

std::string derive_scope(const std::string& method, const std::string& url)
{
  std::string path = url_path(url);
  if (path.rfind("/v2/", 0) != 0) return {};
  std::string rest = path.substr(4);
  std::size_t best = std::string::npos;
  for (const char* keyword : {"/manifests/", "/blobs/", "/tags/", "/referrers/"}) {
    auto pos = rest.rfind(keyword);
    if (pos != std::string::npos && (best == std::string::npos || pos > best)) best = pos;
  }
  if (best == std::string::npos || best == 0) return {};
  std::string name = rest.substr(0, best);
  std::string actions = (method == "GET" || method == "HEAD") ? "pull" : method == "DELETE" ? "delete" : "pull,push";
  return "repository:" + name + ":" + actions;
}

AuthClient::AuthClient(HttpClient& inner, CredentialLookup lookup) : m_inner(inner), m_lookup(std::move(lookup)) {}

std::string AuthClient::cached_token(const std::string& host, const std::string& scope)
{
  std::lock_guard lock(m_mutex);
  auto it = m_hosts.find(host);
  if (it == m_hosts.end()) return {};
  auto now = std::chrono::steady_clock::now();
  std::vector<std::string> needed = scope_grants(scope);
  // Newest first: a recent token is the likeliest to be valid and the widest.
  for (auto cached_it = it->second.tokens.rbegin(); cached_it != it->second.tokens.rend(); ++cached_it) {
    const CachedToken& cached = *cached_it;
    if (cached.expires <= now) continue;
    if (cached.scope == scope) return cached.token;
    if (!needed.empty() && std::includes(cached.grants.begin(), cached.grants.end(), needed.begin(), needed.end()))
      return cached.token;
  }
  return {};
}

void AuthClient::store_token(const std::string& host, const std::string& scope, std::string token, long expires_in_s)
{
  long lifetime = expires_in_s > 0 ? expires_in_s : k_default_token_lifetime_s;
  auto now = std::chrono::steady_clock::now();
  // Renew a little early so a token does not expire between check and use.
  auto expires = now + std::chrono::seconds(lifetime - std::min<long>(10, lifetime / 4));
  std::lock_guard lock(m_mutex);
  auto& tokens = m_hosts[host].tokens;
  std::erase_if(tokens, [&](const CachedToken& t) { return t.expires <= now || t.scope == scope; });
  if (tokens.size() >= k_max_tokens_per_host) tokens.erase(tokens.begin());
  tokens.push_back(CachedToken{scope, scope_grants(scope), std::move(token), expires});
}

void AuthClient::forget_token(const std::string& host, const std::string& token)
{
  std::lock_guard lock(m_mutex);
  auto it = m_hosts.find(host);
  if (it == m_hosts.end()) return;
  std::erase_if(it->second.tokens, [&](const CachedToken& t) { return t.token == token; });
}

bool AuthClient::uses_basic(const std::string& host)
{
  std::lock_guard lock(m_mutex);
  auto it = m_hosts.find(host);
  return it != m_hosts.end() && it->second.basic;
}

void AuthClient::set_basic(const std::string& host)
{
  std::lock_guard lock(m_mutex);
  m_hosts[host].basic = true;
}

std::string AuthClient::fetch_token(const std::string& host, const std::string& registry_url,
                                    const Challenge& challenge, const std::string& scope,
                                    const Credential& credential, long& expires_in_s)
{
  auto realm_it = challenge.params.find("realm");
  if (realm_it == challenge.params.end() || realm_it->second.empty())
    throw Error(Errc::unauthorized, host + ": Bearer challenge without a realm");
  const std::string& realm = realm_it->second;
  std::string realm_scheme = url_scheme(realm);
  if (realm_scheme != "https" && realm_scheme != "http")
    throw Error(Errc::unauthorized, host + ": token realm is not an http(s) URL: " + without_query(realm));
  std::string realm_host = url_host(realm);
  if (realm_scheme == "http" && url_scheme(registry_url) == "https" && !credential.empty())
    throw Error(Errc::unauthorized, host + ": refusing to send credentials to the plain-http token realm " +
                                        without_query(realm));

  std::string service;
  if (auto it = challenge.params.find("service"); it != challenge.params.end()) service = it->second;
  std::vector<std::string> scopes = split_scopes(scope);

  HttpRequest token_request;
  token_request.headers.add("Accept", "application/json");
  if (!credential.identity_token.empty()) {
    // Reference: distribution docs/spec/auth/oauth.md (refresh token grant).
    std::string form = "grant_type=refresh_token&refresh_token=" + percent_encode(credential.identity_token) +
                       "&client_id=ferry";
    if (!service.empty()) form += "&service=" + percent_encode(service);
    if (!scope.empty()) form += "&scope=" + percent_encode(scope);
    token_request.method = "POST";
    token_request.url = realm;
    token_request.headers.add("Content-Type", "application/x-www-form-urlencoded");
    token_request.body_size = form.size();
    token_request.body = body_from_string(std::move(form));
  } else {
    // Reference: distribution docs/spec/auth/token.md (GET with Basic or anonymous).
    std::string query;
    auto add = [&](const char* name, const std::string& value) {
      query += query.empty() ? "" : "&";
      query += name;
      query += '=';
      query += percent_encode(value);
    };
    if (!service.empty()) add("service", service);
    for (const auto& s : scopes) add("scope", s);
    if (!credential.username.empty()) add("account", credential.username);
    token_request.method = "GET";
    token_request.url = realm;
    if (!query.empty()) token_request.url += (realm.find('?') == std::string::npos ? "?" : "&") + query;
    if (!credential.username.empty() || !credential.password.empty())
      token_request.headers.add("Authorization", basic_authorization(credential));
  }

  HttpResponse reply = m_inner.send(token_request);
  std::string text;
  try {
    text = reply.read_body(k_token_reply_limit);
  } catch (...) {
    rethrow_with_context(host + ": token request to " + realm_host);
  }
  if (reply.status != 200) {
    Errc code = reply.status >= 500 || reply.status == 429 ? Errc::network : Errc::unauthorized;
    throw Error(code, host + ": token request to " + realm_host + " failed: HTTP " + std::to_string(reply.status) +
                          " (credentials from " + source_of(credential) + ")");
  }
  std::string token;
  expires_in_s = 0;
  try {
    if (json_depth(text) > 16) throw std::runtime_error("nested too deeply");
    auto doc = nlohmann::json::parse(text);
    if (!doc.is_object()) throw std::runtime_error("not a JSON object");
    for (const char* key : {"token", "access_token"}) {
      auto it = doc.find(key);
      if (it != doc.end() && it->is_string() && !it->get_ref<const std::string&>().empty()) {
        token = it->get<std::string>();
        break;
      }
    }
    if (auto it = doc.find("expires_in"); it != doc.end() && it->is_number_integer())
      expires_in_s = static_cast<long>(std::clamp<std::int64_t>(it->get<std::int64_t>(), 0, 86400 * 365));
  } catch (const std::exception& e) {
    throw Error(Errc::unauthorized, host + ": token reply from " + realm_host + " is not valid JSON: " + e.what());
  }
  if (token.empty()) throw Error(Errc::unauthorized, host + ": token reply from " + realm_host + " carries no token");
  return token;
}

HttpResponse AuthClient::send(const HttpRequest& request)
{
  if (request.headers.get("Authorization")) return m_inner.send(request);

  const std::string host = url_host(request.url);
  const std::string derived_scope = derive_scope(request.method, request.url);
  const bool replayable = !request.body || request.body_replayable;

  HttpRequest attempt = request;
  std::string sent_bearer;
  bool sent_basic = false;
  if (uses_basic(host)) {
    Credential credential = m_lookup(host);
    if (!credential.username.empty() || !credential.password.empty()) {
      attempt.headers.set("Authorization", basic_authorization(credential));
      sent_basic = true;
    }
  } else if (std::string token = cached_token(host, derived_scope); !token.empty()) {
    attempt.headers.set("Authorization", "Bearer " + token);
    sent_bearer = token;
  }

  HttpResponse response = m_inner.send(attempt);
  if (response.status != 401) return response;
  // A 401 from a redirect target on another origin is not this registry's challenge.
  if (!response.effective_url.empty() &&
      scheme_and_authority(response.effective_url) != scheme_and_authority(request.url))
    return response;

  std::vector<Challenge> challenges;
  for (const auto& value : response.headers.get_all("WWW-Authenticate")) {
    auto parsed = parse_www_authenticate(value);
    challenges.insert(challenges.end(), parsed.begin(), parsed.end());
  }
  const Challenge* bearer = nullptr;
  const Challenge* basic = nullptr;
  for (const auto& c : challenges) {
    if (c.scheme == "bearer" && !bearer && c.params.count("realm")) bearer = &c;
    if (c.scheme == "basic" && !basic) basic = &c;
  }
  if (!bearer && !basic) return response;

  Credential credential = m_lookup(host);
  if (!sent_bearer.empty()) forget_token(host, sent_bearer);

  if (bearer) {
    std::string token;
    if (!credential.registry_token.empty()) {
      if (sent_bearer == credential.registry_token) authentication_failed(host, credential);
      token = credential.registry_token;
    } else {
      std::string scope = derived_scope;
      if (auto it = bearer->params.find("scope"); it != bearer->params.end() && !it->second.empty())
        scope = it->second;
      long expires_in_s = 0;
      token = fetch_token(host, request.url, *bearer, scope, credential, expires_in_s);
      // Later requests find it when their derived scope is covered by the granted one.
      store_token(host, scope, token, expires_in_s);
    }
    if (!replayable) return response;
    discard_body(response);
    attempt.headers.set("Authorization", "Bearer " + token);
    response = m_inner.send(attempt);
    if (response.status == 401) {
      forget_token(host, token);
      authentication_failed(host, credential);
    }
    return response;
  }

  // Basic
  if (credential.username.empty() && credential.password.empty())
    throw Error(Errc::unauthorized, host + ": authentication required, and there are no credentials for it (" +
                                        source_of(credential) + ")");
  if (sent_basic) authentication_failed(host, credential);
  set_basic(host);
  if (!replayable) return response;
  discard_body(response);
  attempt.headers.set("Authorization", basic_authorization(credential));
  response = m_inner.send(attempt);
  if (response.status == 401) authentication_failed(host, credential);
  return response;
}

} // namespace ferry::remote

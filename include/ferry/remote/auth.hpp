#pragma once
/// Registry authentication: WWW-Authenticate parsing, Basic and Bearer token flows.
#include <ferry/remote/http_client.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::remote {

/// One challenge of a WWW-Authenticate header.
struct Challenge {
  /// Lower-cased: "basic", "bearer", …
  std::string scheme;
  /// auth-params; names lower-cased, values unquoted and unescaped. First one wins when a
  /// name repeats.
  std::map<std::string, std::string> params;
  /// The token68 form (`Negotiate abc==`), if the challenge used it instead of params.
  std::string token68;
};

/// Parses a WWW-Authenticate value: one or more comma-separated challenges, each a scheme
/// followed by a token68 or auth-params (token or quoted-string with backslash escapes).
/// Scheme and parameter names are case-insensitive. Malformed parts are skipped; never
/// throws on any input. Reference: RFC 9110 §11.2, §11.6.1 (was RFC 7235 §2.1, §4.1).
std::vector<Challenge> parse_www_authenticate(std::string_view header);

/// Credentials for one registry host.
struct Credential {
  std::string username;
  std::string password;
  /// OAuth2 refresh token (docker config `identitytoken`, helper Username `<token>`):
  /// exchanged at the token realm with grant_type=refresh_token.
  std::string identity_token;
  /// A ready bearer token for the registry (docker config `registrytoken`).
  std::string registry_token;
  /// Where these came from, for error messages: "docker config /root/.docker/config.json",
  /// "--username", "docker-credential-pass", "anonymous". Never a secret.
  std::string source;

  /// True when there is nothing to authenticate with (anonymous).
  bool empty() const
  {
    return username.empty() && password.empty() && identity_token.empty() && registry_token.empty();
  }
};

/// Finds the credential for a registry host ("host" or "host:port" as in the URL).
using CredentialLookup = std::function<Credential(const std::string& host)>;

/// The token scope implied by a registry API URL: `repository:<name>:pull` for GET/HEAD,
/// `repository:<name>:delete` for DELETE (as distribution's token access rules), else
/// `repository:<name>:pull,push`, for paths `/v2/<name>/(manifests|blobs|tags|referrers)/…`;
/// empty for other URLs. Reference: distribution docs/spec/auth/scope.md.
std::string derive_scope(const std::string& method, const std::string& url);

/// "host[:port]" of an absolute URL, lower-cased (the key for credentials and tokens).
std::string url_host(const std::string& url);

/// Authenticates requests to registries (distribution docs/spec/auth/token.md).
///
/// Sends the request; on a 401 from the request's own host it reads the challenge:
/// - `Basic`: resends with the host's username and password (Errc::unauthorized naming
///   the host when there are none). Later requests to that host carry Basic at once.
/// - `Bearer realm,service,scope`: gets a token from the realm — GET with `service`,
///   `scope` (repeated per scope) and `account`, with Basic credentials when the host has
///   some, anonymous otherwise; with an identity token a POST form
///   `grant_type=refresh_token` (docs/spec/auth/oauth.md) — reads `token` or
///   `access_token` from the JSON reply and resends with `Authorization: Bearer`. The
///   scope is the challenge's, or derive_scope() when it has none. Tokens are cached per
///   host and scope set until shortly before `expires_in` (default 60 s) and sent
///   proactively by later requests whose derived scope they cover, so each scope costs one
///   401 round trip. A `registrytoken` credential is used as the bearer token directly.
/// A 401 after fresh credentials throws Errc::unauthorized
/// "<host>: authentication failed (credentials from <source>)". 403 and every other
/// status are returned. A request whose body cannot be replayed gets its 401 returned
/// (the token is cached for the caller's next attempt).
///
/// Credentials go only where they belong (design §8): the host's credential only in
/// requests to that host and to the token realm its challenge names (which may be
/// another host, as the spec allows; the realm request never carries the registry's
/// Authorization header), tokens only to the host they were issued for; credentials are
/// not sent to a plain-http realm for an https registry. A request that already has an
/// Authorization header is passed through untouched. Thread-safe if `inner` and the
/// lookup are.
class AuthClient : public HttpClient {
public:
  AuthClient(HttpClient& inner, CredentialLookup lookup);

  HttpResponse send(const HttpRequest& request) override;

private:
  struct CachedToken {
    std::string scope;                   // as requested, space-separated
    std::vector<std::string> grants;     // "type:name:action", sorted
    std::string token;
    std::chrono::steady_clock::time_point expires;
  };
  struct HostState {
    bool basic = false;
    std::vector<CachedToken> tokens;
  };

  std::string cached_token(const std::string& host, const std::string& scope);
  void store_token(const std::string& host, const std::string& scope, std::string token, long expires_in_s);
  void forget_token(const std::string& host, const std::string& token);
  bool uses_basic(const std::string& host);
  void set_basic(const std::string& host);
  /// Fetches a token from the challenge's realm; returns it and sets `expires_in_s`.
  std::string fetch_token(const std::string& host, const std::string& registry_url, const Challenge& challenge,
                          const std::string& scope, const Credential& credential, long& expires_in_s);

  HttpClient& m_inner;
  CredentialLookup m_lookup;
  std::mutex m_mutex;
  std::map<std::string, HostState> m_hosts;
};

} // namespace ferry::remote

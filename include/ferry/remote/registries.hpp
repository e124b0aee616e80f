#pragma once
/// The HTTP stack for talking to registries, built once per command from its options:
/// libcurl transport → retries → auth (credentials from flags or docker config).
#include <ferry/remote/auth.hpp>
#include <ferry/remote/credentials.hpp>
#include <ferry/remote/curl_http_client.hpp>
#include <ferry/remote/repository.hpp>
#include <ferry/remote/retry.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace ferry::remote {

/// Settings of one registry (an image set's `tls-verify`, `cert-dir`, `credentials`: issue 16),
/// over the command's flags for that registry only.
struct HostOptions {
  /// false: TLS without certificate verification, and plain HTTP accepted when the registry
  /// does not speak TLS (as containers/image's insecure registries: https is tried first).
  /// true: verified TLS even with --insecure. Unset: the flags decide.
  std::optional<bool> tls_verify;
  /// containers/image's certificate directory: every `*.crt` is a CA certificate trusted for
  /// this registry (instead of the system's), a `NAME.cert` with its `NAME.key` a client
  /// certificate.
  std::string cert_dir;
  /// Credentials for this registry only (never handed to another host); empty: as the flags
  /// and docker config say.
  std::string username;
  std::string password;
};

struct RegistryOptions {
  bool plain_http = false;  ///< http:// instead of https:// for every registry
  bool insecure = false;    ///< TLS without certificate verification
  std::string ca_file;
  std::optional<std::string> config_path;
  std::string username;
  std::string password;
  RetryOptions retry;
  /// `--timeout`: the longest a connection, a response that sends nothing, or a
  /// `Retry-After` may hold ferry up (seconds); unset: the transport's defaults.
  std::optional<long> timeout_s;
  /// Per registry: keyed by host[:port] as in a reference (Reference::registry).
  std::map<std::string, HostOptions> hosts;
};

/// Credentials (from flags, the docker config or its helpers) are handed out only for the
/// hosts of registries opened here: a host the protocol leads to (a redirect, a `Location`, a
/// `Link`) that asks for credentials gets none (design §8).
class Registries {
public:
  explicit Registries(RegistryOptions options);
  ~Registries();
  /// A repository on `registry` (host[:port] as in a reference; docker.io is reached at
  /// registry-1.docker.io).
  std::shared_ptr<Repository> open(const std::string& registry, const std::string& repository);
  HttpClient& http() { return *m_auth; }
  /// The transport with retries and no registry credentials (for CRL downloads).
  HttpClient& transport() { return *m_retry; }

private:
  class Router;
  /// The scheme for `host` (https, or http when asked or when an insecure registry does not
  /// speak TLS), found once per host.
  std::string scheme_for(const std::string& registry, const std::string& host);

  RegistryOptions m_options;
  std::unique_ptr<Router> m_transport;
  std::unique_ptr<RetryingHttpClient> m_retry;
  std::unique_ptr<CredentialStore> m_credentials;
  std::unique_ptr<AuthClient> m_auth;
  std::mutex m_mutex;
  std::set<std::string> m_hosts;  ///< url_host() of every registry opened
  std::map<std::string, std::string> m_schemes;  ///< host -> "http://" or "https://"
};

} // namespace ferry::remote

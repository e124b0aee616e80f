#pragma once
/// The HTTP stack for talking to registries, built once per command from its options:
/// libcurl transport → retries → auth (credentials from flags or docker config).
#include <ferry/remote/auth.hpp>
#include <ferry/remote/credentials.hpp>
#include <ferry/remote/curl_http_client.hpp>
#include <ferry/remote/repository.hpp>
#include <ferry/remote/retry.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace ferry::remote {

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
};

/// Credentials (from flags, the docker config or its helpers) are handed out only for the
/// hosts of registries opened here: a host the protocol leads to (a redirect, a `Location`, a
/// `Link`) that asks for credentials gets none (design §8).
class Registries {
public:
  explicit Registries(RegistryOptions options);
  /// A repository on `registry` (host[:port] as in a reference; docker.io is reached at
  /// registry-1.docker.io).
  std::shared_ptr<Repository> open(const std::string& registry, const std::string& repository);
  HttpClient& http() { return *m_auth; }
  /// The transport with retries and no registry credentials (for CRL downloads).
  HttpClient& transport() { return *m_retry; }

private:
  RegistryOptions m_options;
  std::unique_ptr<CurlHttpClient> m_transport;
  std::unique_ptr<RetryingHttpClient> m_retry;
  std::unique_ptr<CredentialStore> m_credentials;
  std::unique_ptr<AuthClient> m_auth;
  std::mutex m_mutex;
  std::set<std::string> m_hosts;  ///< url_host() of every registry opened
};

} // namespace ferry::remote

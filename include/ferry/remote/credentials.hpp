#pragma once
/// Registry credentials from the command line, docker's config.json and credential helpers.
#include <ferry/remote/auth.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::remote {

struct CredentialOptions {
  /// `--registry-config FILE`; unset: `$DOCKER_CONFIG/config.json`, then
  /// `$HOME/.docker/config.json` (either may be missing).
  std::optional<std::string> config_path;
  /// `-u/--username` and the password read by `--password-stdin`.
  std::string username;
  std::string password;
  /// Limit for one `docker-credential-<name> get` run.
  std::chrono::milliseconds helper_timeout{60000};
};

/// The key docker uses for a registry: scheme and path stripped, lower-cased, and every
/// spelling of Docker Hub (`https://index.docker.io/v1/`, `index.docker.io`,
/// `registry-1.docker.io`, `registry.hub.docker.com`) mapped to `docker.io`.
std::string normalize_registry_host(std::string_view host_or_url);

/// Looks up credentials per registry host, as docker and oras do.
///
/// Precedence:
/// 1. An explicit `username` (from `-u` / `--password-stdin`) wins for **every** host:
///    the command line names one identity for the whole run.
/// 2. `credHelpers[<host>]` in config.json, else `credsStore`: runs
///    `docker-credential-<name> get` (found on PATH; no shell) with the server URL on stdin
///    (`https://index.docker.io/v1/` for Docker Hub, else the host) and reads
///    `{"Username","Secret"}`; Username `<token>` means Secret is an identity token. A
///    helper answering "credentials not found" means: go on to 3. Output is bounded and
///    the run times out. Reference: docker/docker-credential-helpers client protocol.
/// 3. `auths[<host>]`: `auth` (base64 `user:pass`), else `username`/`password`, plus
///    `identitytoken` and `registrytoken`. Keys may be hosts or URLs (normalised as
///    normalize_registry_host; an exact key match is preferred).
/// 4. Anonymous (an empty Credential with source "anonymous").
/// Results are cached per host; `lookup` is thread-safe (helpers run one at a time).
class CredentialStore {
public:
  /// Reads the config file. Throws Errc::not_found naming an explicitly given file that
  /// does not exist, Errc::io naming a file that cannot be read or is not valid JSON.
  explicit CredentialStore(CredentialOptions options);

  /// Credential for `host` ("host[:port]" as in the URL). Throws Errc::io naming the
  /// helper or config entry when a helper fails or an `auth` entry is malformed, and
  /// Errc::not_found when a configured helper program is not on PATH.
  Credential lookup(const std::string& host);

  /// `lookup` as a CredentialLookup for AuthClient; the store must outlive it.
  CredentialLookup lookup_function();

  /// The config.json that was read; empty when none.
  const std::string& config_path() const { return m_config_path; }

private:
  struct AuthEntry {
    std::string raw_key;
    std::string auth;
    std::string username;
    std::string password;
    std::string identity_token;
    std::string registry_token;
  };

  Credential compute(const std::string& host);
  std::optional<Credential> from_auths(const std::string& host);
  std::optional<Credential> from_helper(const std::string& helper, const std::string& host);

  CredentialOptions m_options;
  std::string m_config_path;
  std::vector<AuthEntry> m_auths;
  std::map<std::string, std::string> m_cred_helpers; // normalised host -> helper name
  std::string m_creds_store;
  std::mutex m_mutex;
  std::map<std::string, Credential> m_cache;
};

/// What a credential helper answered.
struct HelperCredential {
  bool found = false;
  std::string username;
  std::string secret;
};

/// Runs `docker-credential-<helper> get` with `server_url` on stdin (posix_spawnp, no
/// shell, stdout/stderr bounded to 1 MiB, killed after `timeout`). Throws Errc::not_found
/// when the program is not on PATH, Errc::io when it fails, times out or answers
/// something that is not the expected JSON.
HelperCredential run_credential_helper(const std::string& helper, const std::string& server_url,
                                       std::chrono::milliseconds timeout);

} // namespace ferry::remote

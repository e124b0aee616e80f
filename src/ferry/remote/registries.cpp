#include <ferry/remote/registries.hpp>

#include <algorithm>
#include <chrono>

namespace ferry::remote {

Registries::Registries(RegistryOptions options) : m_options(std::move(options))
{
  TransportOptions transport;
  transport.plain_http = m_options.plain_http;
  transport.insecure = m_options.insecure;
  transport.ca_file = m_options.ca_file;
  if (m_options.timeout_s) {
    long t = std::max(1L, *m_options.timeout_s);
    transport.low_speed_time_s = t;
    transport.connect_timeout_s = std::min(transport.connect_timeout_s, t);
    m_options.retry.max_retry_after =
        std::min<std::chrono::milliseconds>(m_options.retry.max_retry_after, std::chrono::seconds(t));
  }
  m_transport = std::make_unique<CurlHttpClient>(transport);
  m_retry = std::make_unique<RetryingHttpClient>(*m_transport, m_options.retry);
  CredentialOptions creds;
  creds.config_path = m_options.config_path;
  creds.username = m_options.username;
  creds.password = m_options.password;
  m_credentials = std::make_unique<CredentialStore>(creds);
  CredentialLookup lookup = m_credentials->lookup_function();
  m_auth = std::make_unique<AuthClient>(*m_retry, [this, lookup](const std::string& host) {
    {
      std::lock_guard lock(m_mutex);
      if (m_hosts.count(host)) return lookup(host);
    }
    Credential none;
    none.source = "anonymous: " + host + " is not a registry ferry was asked to use";
    return none;
  });
}

std::shared_ptr<Repository> Registries::open(const std::string& registry, const std::string& repository)
{
  std::string host = registry == "docker.io" ? "registry-1.docker.io" : registry;
  std::string scheme = m_options.plain_http ? "http://" : "https://";
  {
    std::lock_guard lock(m_mutex);
    m_hosts.insert(url_host(scheme + host));
  }
  return std::make_shared<Repository>(*m_auth, scheme + host, repository);
}

} // namespace ferry::remote

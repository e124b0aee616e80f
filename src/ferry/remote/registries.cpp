#include <ferry/remote/registries.hpp>

#include <ferry/error.hpp>
#include <ferry/util/file.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ferry::remote {

namespace {

std::string endpoint_host(const std::string& registry) { return registry == "docker.io" ? "registry-1.docker.io" : registry; }

std::string read_text(const std::filesystem::path& path, const std::string& what)
{
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  if (!in || !(out << in.rdbuf())) throw Error(Errc::not_found, path.string() + ": cannot read the " + what);
  return out.str();
}

/// containers/image's certificate directory (docker/certs.d): `*.crt` CA certificates,
/// `NAME.cert` + `NAME.key` a client certificate (the first pair in name order).
void apply_cert_dir(TransportOptions& transport, const std::string& dir)
{
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) files.push_back(it->path());
  if (ec) throw Error(Errc::not_found, dir + ": cannot read the cert-dir: " + ec.message());
  std::sort(files.begin(), files.end());
  std::string pem;
  for (const auto& f : files) {
    if (f.extension() == ".crt") pem += read_text(f, "CA certificate") + "\n";
    if (f.extension() == ".cert" && transport.client_cert.empty()) {
      auto key = f;
      key.replace_extension(".key");
      if (!std::filesystem::exists(key))
        throw Error(Errc::not_found, f.string() + ": client certificate without its key " + key.string());
      transport.client_cert = f.string();
      transport.client_key = key.string();
    }
  }
  if (!pem.empty()) {
    // CAINFO_BLOB replaces --ca-file: keep what it trusts too.
    if (!transport.ca_file.empty()) pem = read_text(transport.ca_file, "--ca-file") + "\n" + pem;
    transport.ca_pem = std::move(pem);
  }
}

} // namespace

/// Sends each request with the transport settings of its URL's host: the flags' for every
/// host, an image set's tls-verify and cert-dir for its registry. A redirect is followed by
/// the transport the request started on (containers/image also keeps one client per registry).
class Registries::Router : public HttpClient {
public:
  Router(const TransportOptions& base, const std::map<std::string, HostOptions>& hosts)
      : m_default(std::make_unique<CurlHttpClient>(base))
  {
    for (const auto& [registry, h] : hosts) {
      if (!h.tls_verify && h.cert_dir.empty()) continue;
      TransportOptions t = base;
      if (h.tls_verify) t.insecure = !*h.tls_verify;
      if (!h.cert_dir.empty()) apply_cert_dir(t, h.cert_dir);
      m_hosts.emplace(endpoint_host(registry), std::make_unique<CurlHttpClient>(t));
    }
  }
  HttpResponse send(const HttpRequest& request) override
  {
    if (!m_hosts.empty())
      if (auto it = m_hosts.find(url_host(request.url)); it != m_hosts.end()) return it->second->send(request);
    return m_default->send(request);
  }

private:
  std::unique_ptr<CurlHttpClient> m_default;
  std::map<std::string, std::unique_ptr<CurlHttpClient>> m_hosts;
};

Registries::~Registries() = default;

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
  m_transport = std::make_unique<Router>(transport, m_options.hosts);
  m_retry = std::make_unique<RetryingHttpClient>(*m_transport, m_options.retry);
  CredentialOptions creds;
  creds.config_path = m_options.config_path;
  creds.username = m_options.username;
  creds.password = m_options.password;
  m_credentials = std::make_unique<CredentialStore>(creds);
  CredentialLookup lookup = m_credentials->lookup_function();
  // An image set's credentials belong to their registry alone (design §8).
  std::map<std::string, Credential> own;
  for (const auto& [registry, h] : m_options.hosts) {
    if (h.username.empty() && h.password.empty()) continue;
    Credential c;
    c.username = h.username;
    c.password = h.password;
    c.source = "the image set's credentials for " + registry;
    own[endpoint_host(registry)] = c;
  }
  m_auth = std::make_unique<AuthClient>(*m_retry, [this, lookup, own](const std::string& host) {
    {
      std::lock_guard lock(m_mutex);
      if (m_hosts.count(host)) {
        if (auto it = own.find(host); it != own.end()) return it->second;
        return lookup(host);
      }
    }
    Credential none;
    none.source = "anonymous: " + host + " is not a registry ferry was asked to use";
    return none;
  });
}

std::string Registries::scheme_for(const std::string& registry, const std::string& host)
{
  if (m_options.plain_http) return "http://";
  auto h = m_options.hosts.find(registry);
  if (h == m_options.hosts.end() || !h->second.tls_verify || *h->second.tls_verify) return "https://";
  {
    std::lock_guard lock(m_mutex);
    if (auto it = m_schemes.find(host); it != m_schemes.end()) return it->second;
  }
  // tls-verify: false is containers/image's insecure registry: https (unverified) first, and
  // plain http when the registry does not speak TLS at all.
  std::string scheme = "https://";
  try {
    HttpRequest ping;
    ping.url = "https://" + host + "/v2/";
    ping.follow_redirects = false;
    auto resp = m_transport->send(ping);
    discard_body(resp);
  } catch (const Error& e) {
    if (e.code() != Errc::network) throw;
    scheme = "http://";
  }
  std::lock_guard lock(m_mutex);
  m_schemes[host] = scheme;
  return scheme;
}

std::shared_ptr<Repository> Registries::open(const std::string& registry, const std::string& repository)
{
  std::string host = endpoint_host(registry);
  std::string scheme = scheme_for(registry, host);
  {
    std::lock_guard lock(m_mutex);
    m_hosts.insert(url_host(scheme + host));
  }
  return std::make_shared<Repository>(*m_auth, scheme + host, repository);
}

} // namespace ferry::remote

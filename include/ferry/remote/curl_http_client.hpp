#pragma once
/// The libcurl implementation of HttpClient: streaming bodies, manual redirects,
/// connection reuse across requests.
#include <ferry/remote/http_client.hpp>

#include <memory>
#include <string>

namespace ferry::remote {

/// Transport settings shared by every request of one client (design §2 registry options).
struct TransportOptions {
  /// Not used by the transport (URLs carry their scheme); kept so the CLI can fill one struct.
  bool plain_http = false;
  /// TLS without certificate or host name verification (`--insecure`).
  bool insecure = false;
  /// PEM bundle of CA certificates to trust instead of the system store (`--ca-file`).
  std::string ca_file;
  /// PEM CA certificates trusted instead of the system store and of ca_file (libcurl's
  /// CAINFO_BLOB overrides CAINFO): an image set's `cert-dir`.
  std::string ca_pem;
  /// A client certificate and its key (PEM files), for registries that ask for one.
  std::string client_cert;
  std::string client_key;
  long connect_timeout_s = 30;
  /// A transfer moving less than 1 byte/s for this long fails with Errc::network
  /// (time spent paused because the caller reads slowly does not count).
  long low_speed_time_s = 60;
  std::string user_agent = "ferry/0.1";
};

/// HttpClient over libcurl (HTTP/1.1).
///
/// - `send` returns as soon as the final status line and headers have arrived; the
///   response body is a Reader that drives the transfer as it is read, through a bounded
///   buffer (about 1 MiB: the transfer is paused while the buffer is full), so memory does
///   not depend on body size. A transfer that fails mid-body throws Errc::network from
///   `read`. Dropping the body early aborts the transfer (its connection is closed).
/// - Redirects (301, 302, 303, 307, 308) are followed by hand, at most 10: 307/308 resend
///   the method and body (reopened from the factory), 301/302/303 turn a non-GET/HEAD into
///   a GET without body. `Authorization` is dropped for good once a redirect leads to a
///   different scheme, host or port than the original URL (design §8). Only http and https
///   targets are followed. Reference: RFC 9110 §15.4.
/// - Transport failures throw `Error(Errc::network, "<METHOD> <url>: <curl error>")` (the
///   URL's query is elided in messages: pre-signed URLs carry signatures there).
/// - Thread-safe: any number of threads may call `send` and read bodies at once. Each
///   in-flight request uses its own easy + multi handle pair taken from a pool, so a
///   connection is reused by the next request that takes the same pair; DNS and TLS
///   sessions are shared through one share handle. (libcurl's shared connection cache is
///   documented as not safe across threads, and one multi handle for all requests would
///   force an event-loop thread that deadlocks when one request's upload body streams
///   from another request's response body.)
/// - Response bodies may outlive the client.
class CurlHttpClient : public HttpClient {
public:
  explicit CurlHttpClient(TransportOptions options = {});
  ~CurlHttpClient() override;
  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  HttpResponse send(const HttpRequest& request) override;

  struct Impl;

private:
  std::shared_ptr<Impl> m_impl;
};

/// Resolves `location` (absolute, scheme-relative, absolute-path or relative) against the
/// absolute URL `base`, as for a `Location` header (RFC 3986 §5.2). Throws
/// Errc::network when the result is not a valid URL.
std::string resolve_url(const std::string& base, const std::string& location);

/// "scheme://host:port" of an absolute URL, lower-cased, with the scheme's default port
/// filled in: two URLs with the same origin may share credentials (RFC 6454).
std::string url_origin(const std::string& url);

/// The URL with its query string replaced by "?…", for error messages.
std::string redact_url(const std::string& url);

} // namespace ferry::remote

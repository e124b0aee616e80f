#pragma once
/// The HTTP seam: one interface, a libcurl implementation, wrappers for auth and
/// retries, and a scripted fake for unit tests (tests/unit/fake_http_client.hpp).
#include <ferry/util/reader.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferry::remote {

/// Header list with case-insensitive lookup (names kept as sent).
struct HttpHeaders {
  std::vector<std::pair<std::string, std::string>> items;

  void add(std::string name, std::string value) { items.emplace_back(std::move(name), std::move(value)); }
  /// Replaces every header of this name with one value.
  void set(const std::string& name, std::string value);
  /// First value of the header, if any.
  std::optional<std::string> get(const std::string& name) const;
  std::vector<std::string> get_all(const std::string& name) const;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  HttpHeaders headers;
  /// Opens the request body afresh (so the request can be replayed after a 401 or a
  /// retry); empty for no body.
  std::function<std::unique_ptr<Reader>()> body;
  /// Body length when known (sent as Content-Length); required with `body` for PUT/PATCH.
  std::optional<std::uint64_t> body_size;
  /// False when `body` can be opened only once (e.g. it streams from another transfer):
  /// wrappers then never send the request a second time (no retry, no replay after a 401,
  /// no 307/308 redirect with the body). A request without a body is always replayable.
  bool body_replayable = true;
  /// Follow 3xx redirects. Credentials (Authorization) are dropped when a redirect leaves
  /// the original host (design §8).
  bool follow_redirects = true;
  /// HEAD-like requests set this; the response body is then empty.
  bool no_body = false;
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;
  /// Streaming body; never null (an empty reader when there is no body).
  std::unique_ptr<Reader> body;
  /// URL of the final response after redirects.
  std::string effective_url;

  /// Reads the whole body (bounded; throws Errc::size_exceeds_limit beyond `limit`).
  std::string read_body(std::size_t limit = 4 << 20);
};

/// Sends one request. Throws Errc::network on transport failure (no status); any HTTP
/// status, including 4xx/5xx, is returned as a response.
class HttpClient {
public:
  virtual ~HttpClient() = default;
  virtual HttpResponse send(const HttpRequest& request) = 0;
};

/// Reads and drops up to 64 KiB of a response body so the connection can be reused; errors
/// do not matter here.
void discard_body(HttpResponse& response);

/// Convenience: a request body from bytes held in memory.
std::function<std::unique_ptr<Reader>()> body_from_string(std::string data);

} // namespace ferry::remote

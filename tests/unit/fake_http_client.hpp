#pragma once
/// A scripted HttpClient for unit tests: a handler answers, every request is recorded.
#include <ferry/remote/http_client.hpp>
#include <ferry/util/reader.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ferry::remote {

/// A response with a body held in memory.
inline HttpResponse make_response(int status, std::string body = {}, HttpHeaders headers = {})
{
  HttpResponse response;
  response.status = status;
  response.headers = std::move(headers);
  response.body = std::make_unique<StringReader>(std::move(body));
  return response;
}

/// Records each request (method, URL, headers and the factory, plus the body bytes read
/// from the factory into `bodies`) and answers with `handler` (404 when unset). Fills in
/// `effective_url` (the request URL) and an empty body when the handler leaves them out.
/// Thread-safe: records are guarded by `mutex`; the handler runs outside the lock.
struct FakeHttpClient : HttpClient {
  std::function<HttpResponse(const HttpRequest&)> handler;
  std::vector<HttpRequest> requests;
  std::vector<std::string> bodies;
  /// Set false to leave body factories unopened (for bodies that open only once).
  bool read_bodies = true;
  mutable std::mutex mutex;

  HttpResponse send(const HttpRequest& request) override
  {
    std::string body;
    if (read_bodies && request.body) {
      if (auto reader = request.body()) body = read_all(*reader, std::size_t{256} << 20, "fake request body");
    }
    {
      std::lock_guard lock(mutex);
      requests.push_back(request);
      bodies.push_back(std::move(body));
    }
    HttpResponse response = handler ? handler(request) : make_response(404);
    if (response.effective_url.empty()) response.effective_url = request.url;
    if (!response.body) response.body = std::make_unique<StringReader>(std::string());
    return response;
  }

  std::size_t count() const
  {
    std::lock_guard lock(mutex);
    return requests.size();
  }

  /// A copy of request `i` (thread-safe).
  HttpRequest request(std::size_t i) const
  {
    std::lock_guard lock(mutex);
    return requests.at(i);
  }

  std::string body(std::size_t i) const
  {
    std::lock_guard lock(mutex);
    return bodies.at(i);
  }

  void clear()
  {
    std::lock_guard lock(mutex);
    requests.clear();
    bodies.clear();
  }
};

} // namespace ferry::remote

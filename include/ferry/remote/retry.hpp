#pragma once
/// Retries of transient failures around any HttpClient (design §4 Remote).
#include <ferry/remote/http_client.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace ferry::remote {

struct RetryOptions {
  /// Attempts in all, including the first (at least 1).
  int max_attempts = 5;
  /// Backoff before retry n (1-based) is min(max_delay, base_delay * 2^(n-1)), of which a
  /// random half is jitter ("equal jitter").
  std::chrono::milliseconds base_delay{200};
  std::chrono::milliseconds max_delay{10000};
  /// A `Retry-After` (seconds form) replaces the backoff, capped at this.
  std::chrono::milliseconds max_retry_after{30000};
  /// Waits between attempts; default std::this_thread::sleep_for. Tests inject a recorder.
  std::function<void(std::chrono::milliseconds)> sleep;
};

/// Sends through `inner` and retries what is likely transient: an Errc::network exception
/// (no response: connection refused or reset, timeout) and statuses 429, 500, 502, 503 and
/// 504 — as long as the request can be sent again (no body, or `body_replayable`).
/// Honours `Retry-After` in its delay-seconds form (RFC 9110 §10.2.3; the HTTP-date form
/// falls back to backoff). When attempts run out the last response is returned (or the
/// last exception rethrown). A body that fails mid-stream after `send` returned is not
/// retried here (callers resume with a Range request). Thread-safe if `inner` is.
class RetryingHttpClient : public HttpClient {
public:
  RetryingHttpClient(HttpClient& inner, RetryOptions options = {});
  RetryingHttpClient(std::shared_ptr<HttpClient> inner, RetryOptions options = {});

  HttpResponse send(const HttpRequest& request) override;

private:
  std::shared_ptr<HttpClient> m_owned;
  HttpClient& m_inner;
  RetryOptions m_options;
};

/// True for the statuses RetryingHttpClient retries: 429, 500, 502, 503, 504.
bool is_retryable_status(int status);

/// Parses a `Retry-After` value in delay-seconds form ("120"); nullopt for anything else.
std::optional<std::chrono::seconds> parse_retry_after(const std::string& value);

} // namespace ferry::remote

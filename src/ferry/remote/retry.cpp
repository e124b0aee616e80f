#include <ferry/remote/retry.hpp>

#include <ferry/error.hpp>

#include <algorithm>
#include <random>
#include <thread>

namespace ferry::remote {

namespace {

std::chrono::milliseconds backoff(const RetryOptions& options, int retry)
{
  // retry is 1 for the first retry.
  auto delay = options.base_delay;
  for (int i = 1; i < retry && delay < options.max_delay; ++i) delay *= 2;
  delay = std::min(delay, options.max_delay);
  thread_local std::minstd_rand rng(std::random_device{}());
  auto half = delay.count() / 2;
  std::uniform_int_distribution<long long> jitter(0, half);
  return std::chrono::milliseconds(delay.count() - half + jitter(rng));
}

} // namespace

bool is_retryable_status(int status)
{
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

std::optional<std::chrono::seconds> parse_retry_after(const std::string& value)
{
  std::size_t b = value.find_first_not_of(" \t");
  std::size_t e = value.find_last_not_of(" \t");
  if (b == std::string::npos) return std::nullopt;
  long long seconds = 0;
  for (std::size_t i = b; i <= e; ++i) {
    char c = value[i];
    if (c < '0' || c > '9') return std::nullopt;
    seconds = seconds * 10 + (c - '0');
    if (seconds > 1000000) seconds = 1000000; // saturate; capped by the caller anyway
  }
  return std::chrono::seconds(seconds);
}

RetryingHttpClient::RetryingHttpClient(HttpClient& inner, RetryOptions options)
    : m_inner(inner), m_options(std::move(options))
{
  if (!m_options.sleep) m_options.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  m_options.max_attempts = std::max(1, m_options.max_attempts);
}

RetryingHttpClient::RetryingHttpClient(std::shared_ptr<HttpClient> inner, RetryOptions options)
    : m_owned(std::move(inner)), m_inner(*m_owned), m_options(std::move(options))
{
  if (!m_options.sleep) m_options.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  m_options.max_attempts = std::max(1, m_options.max_attempts);
}

HttpResponse RetryingHttpClient::send(const HttpRequest& request)
{
  const bool replayable = !request.body || request.body_replayable;
  for (int attempt = 1;; ++attempt) {
    const bool last = !replayable || attempt >= m_options.max_attempts;
    HttpResponse response;
    try {
      response = m_inner.send(request);
    } catch (const Error& e) {
      if (e.code() != Errc::network || last) throw;
      m_options.sleep(backoff(m_options, attempt));
      continue;
    }
    if (!is_retryable_status(response.status) || last) return response;

    std::chrono::milliseconds delay = backoff(m_options, attempt);
    if (auto header = response.headers.get("Retry-After")) {
      if (auto seconds = parse_retry_after(*header))
        delay = std::min<std::chrono::milliseconds>(*seconds, m_options.max_retry_after);
    }
    discard_body(response);
    m_options.sleep(delay);
  }
}

} // namespace ferry::remote

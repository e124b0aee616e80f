#include <ferry/util/text.hpp>
#include <ferry/remote/curl_http_client.hpp>

#include <ferry/error.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <mutex>
#include <strings.h>
#include <vector>

namespace ferry::remote {

namespace {

struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using CurlEasyPtr = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlMultiDeleter {
  void operator()(CURLM* handle) const { curl_multi_cleanup(handle); }
};
using CurlMultiPtr = std::unique_ptr<CURLM, CurlMultiDeleter>;

struct CurlShareDeleter {
  void operator()(CURLSH* handle) const { curl_share_cleanup(handle); }
};
using CurlSharePtr = std::unique_ptr<CURLSH, CurlShareDeleter>;

struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlSlistPtr = std::unique_ptr<curl_slist, CurlSlistDeleter>;

struct CurlUrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
using CurlUrlPtr = std::unique_ptr<CURLU, CurlUrlDeleter>;

struct CurlStringDeleter {
  void operator()(char* text) const { curl_free(text); }
};
using CurlStringPtr = std::unique_ptr<char, CurlStringDeleter>;

/// The response buffer: the transfer pauses when this much is waiting to be read.
constexpr std::size_t k_body_buffer = std::size_t{1} << 20;
/// Redirect bodies up to this size are drained so the connection can be reused.
constexpr std::size_t k_redirect_drain_limit = std::size_t{64} << 10;
constexpr int k_max_redirects = 10;
constexpr std::size_t k_max_idle_handles = 32;
constexpr int k_poll_timeout_ms = 1000;

void global_init()
{
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK)
    throw Error(Errc::internal, std::string("libcurl initialisation failed: ") + curl_easy_strerror(result));
}


bool iequals(std::string_view a, std::string_view b)
{
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

void erase_header(HttpHeaders& headers, std::string_view name)
{
  std::erase_if(headers.items, [&](const auto& kv) { return iequals(kv.first, name); });
}

std::string_view trim(std::string_view text)
{
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n'))
    text.remove_suffix(1);
  return text;
}

CurlUrlPtr parse_url(const std::string& url)
{
  global_init();
  CurlUrlPtr handle(curl_url());
  if (!handle) throw Error(Errc::internal, "out of memory");
  if (curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK)
    throw Error(Errc::invalid_argument, redact_url(url) + ": malformed URL");
  return handle;
}

std::string url_part(CURLU* handle, CURLUPart part, unsigned flags = 0)
{
  char* out = nullptr;
  if (curl_url_get(handle, part, &out, flags) != CURLUE_OK) return {};
  CurlStringPtr owned(out);
  return std::string(out);
}

struct HandlePair {
  CurlMultiPtr multi;
  CurlEasyPtr easy; // destroyed first; never inside `multi` while idle
};

} // namespace

std::string redact_url(const std::string& url)
{
  auto q = url.find('?');
  if (q == std::string::npos) return url;
  return url.substr(0, q) + "?...";
}

std::string resolve_url(const std::string& base, const std::string& location)
{
  CurlUrlPtr handle = parse_url(base);
  // With a URL already set, curl_url_set resolves the new one relative to it.
  if (curl_url_set(handle.get(), CURLUPART_URL, location.c_str(), 0) != CURLUE_OK)
    throw Error(Errc::network, redact_url(base) + ": malformed redirect location " + redact_url(location));
  std::string out = url_part(handle.get(), CURLUPART_URL);
  if (out.empty()) throw Error(Errc::network, redact_url(base) + ": malformed redirect location " + redact_url(location));
  return out;
}

std::string url_origin(const std::string& url)
{
  CurlUrlPtr handle = parse_url(url);
  std::string scheme = to_lower(url_part(handle.get(), CURLUPART_SCHEME));
  std::string host = to_lower(url_part(handle.get(), CURLUPART_HOST));
  std::string port = url_part(handle.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  return scheme + "://" + host + ":" + port;
}

struct CurlHttpClient::Impl {
  TransportOptions options;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> share_locks;
  CurlSharePtr share;
  std::mutex idle_mutex;
  std::vector<std::unique_ptr<HandlePair>> idle;

  std::unique_ptr<HandlePair> acquire()
  {
    {
      std::lock_guard lock(idle_mutex);
      if (!idle.empty()) {
        auto pair = std::move(idle.back());
        idle.pop_back();
        return pair;
      }
    }
    auto pair = std::make_unique<HandlePair>();
    pair->multi.reset(curl_multi_init());
    pair->easy.reset(curl_easy_init());
    if (!pair->multi || !pair->easy) throw Error(Errc::internal, "libcurl: cannot create a handle");
    return pair;
  }

  void release(std::unique_ptr<HandlePair> pair) noexcept
  {
    std::lock_guard lock(idle_mutex);
    if (idle.size() >= k_max_idle_handles) return;
    try {
      idle.push_back(std::move(pair));
    } catch (const std::bad_alloc&) {
      // The pair is freed instead of pooled.
    }
  }
};

namespace {

void share_lock(CURL*, curl_lock_data data, curl_lock_access, void* user)
{
  static_cast<CurlHttpClient::Impl*>(user)->share_locks[static_cast<std::size_t>(data)].lock();
}

void share_unlock(CURL*, curl_lock_data data, void* user)
{
  static_cast<CurlHttpClient::Impl*>(user)->share_locks[static_cast<std::size_t>(data)].unlock();
}

/// One request/response exchange on one easy handle driven by its own multi handle.
class Transfer {
public:
  Transfer(std::shared_ptr<CurlHttpClient::Impl> impl, const HttpRequest& request)
      : m_impl(std::move(impl)), m_method(request.method), m_url(request.url)
  {
  }

  ~Transfer() { release(); }

  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  void start(const HttpRequest& request)
  {
    m_pair = m_impl->acquire();
    CURL* easy = m_pair->easy.get();
    const TransportOptions& options = m_impl->options;
    curl_easy_reset(easy);
    m_errbuf[0] = '\0';

    bool has_body = static_cast<bool>(request.body);
    if (has_body) {
      m_upload = request.body();
      if (!m_upload) has_body = false;
    }
    m_upload_size = has_body ? request.body_size : std::optional<std::uint64_t>(0);

    setopt(CURLOPT_URL, m_url.c_str());
    setopt(CURLOPT_SHARE, m_impl->share.get());
    setopt(CURLOPT_NOSIGNAL, 1L);
    setopt(CURLOPT_ERRORBUFFER, m_errbuf.data());
    setopt(CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    setopt(CURLOPT_PROTOCOLS_STR, "http,https");
    setopt(CURLOPT_USERAGENT, options.user_agent.c_str());
    setopt(CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
    setopt(CURLOPT_LOW_SPEED_LIMIT, 1L);
    setopt(CURLOPT_LOW_SPEED_TIME, options.low_speed_time_s);
    setopt(CURLOPT_TCP_KEEPALIVE, 1L);
    // Fewer, larger socket reads. A hint only: libcurl 7.88 refuses to change the size of a
    // receive buffer it still holds (a handle reused after a failed transfer, e.g. a name that
    // did not resolve), and that must not hide the real error.
    curl_easy_setopt(m_pair->easy.get(), CURLOPT_BUFFERSIZE, 128L * 1024);
    setopt(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    setopt(CURLOPT_FOLLOWLOCATION, 0L);
    setopt(CURLOPT_HEADERFUNCTION, &Transfer::on_header);
    setopt(CURLOPT_HEADERDATA, this);
    setopt(CURLOPT_WRITEFUNCTION, &Transfer::on_write);
    setopt(CURLOPT_WRITEDATA, this);
    setopt(CURLOPT_READFUNCTION, &Transfer::on_read);
    setopt(CURLOPT_READDATA, this);
    if (options.insecure) {
      setopt(CURLOPT_SSL_VERIFYPEER, 0L);
      setopt(CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (!options.ca_file.empty()) setopt(CURLOPT_CAINFO, options.ca_file.c_str());
    if (!options.ca_pem.empty()) {
      curl_blob blob{const_cast<char*>(options.ca_pem.data()), options.ca_pem.size(), CURL_BLOB_COPY};
      setopt(CURLOPT_CAINFO_BLOB, &blob);
    }
    if (!options.client_cert.empty()) setopt(CURLOPT_SSLCERT, options.client_cert.c_str());
    if (!options.client_key.empty()) setopt(CURLOPT_SSLKEY, options.client_key.c_str());

    const std::string& method = request.method;
    curl_off_t size = has_body ? (request.body_size ? static_cast<curl_off_t>(*request.body_size) : -1) : 0;
    bool is_post = false;
    if (request.no_body || method == "HEAD") {
      setopt(CURLOPT_NOBODY, 1L);
    } else if (method == "GET" && !has_body) {
      setopt(CURLOPT_HTTPGET, 1L);
    } else if (method == "POST") {
      is_post = true;
      setopt(CURLOPT_POST, 1L);
      if (!has_body) setopt(CURLOPT_POSTFIELDS, "");
      setopt(CURLOPT_POSTFIELDSIZE_LARGE, size); // -1: chunked
    } else if (has_body || method == "PUT" || method == "PATCH") {
      setopt(CURLOPT_UPLOAD, 1L);
      setopt(CURLOPT_INFILESIZE_LARGE, size); // -1: chunked
      if (method != "PUT") setopt(CURLOPT_CUSTOMREQUEST, method.c_str());
    } else {
      setopt(CURLOPT_CUSTOMREQUEST, method.c_str());
    }

    auto append = [&](const std::string& line) {
      curl_slist* head = curl_slist_append(m_header_list.get(), line.c_str());
      if (!head) throw Error(Errc::internal, "out of memory");
      if (!m_header_list) m_header_list.reset(head);
    };
    for (const auto& [name, value] : request.headers.items) {
      if (name.find_first_of("\r\n:") != std::string::npos || value.find_first_of("\r\n") != std::string::npos)
        throw Error(Errc::invalid_argument, m_method + " " + redact_url(m_url) + ": invalid header " + name);
      append(value.empty() ? name + ";" : name + ": " + value);
    }
    // curl would add a form Content-Type to every POST; send none unless asked.
    if (is_post && !request.headers.get("Content-Type")) append("Content-Type:");
    if (m_header_list) setopt(CURLOPT_HTTPHEADER, m_header_list.get());

    CURLMcode mc = curl_multi_add_handle(m_pair->multi.get(), easy);
    if (mc != CURLM_OK) throw Error(Errc::network, context() + ": " + curl_multi_strerror(mc));
    m_in_multi = true;
  }

  /// Drives the transfer until the final status line and headers have arrived.
  void wait_headers()
  {
    drive_until([&] { return m_headers_complete; });
    if (m_headers_complete) return;
    // Finished without a complete header block.
    if (m_result != CURLE_OK || m_upload_error) throw_failure();
    if (m_final_code <= 0) throw Error(Errc::network, context() + ": no HTTP response");
    m_status = static_cast<int>(m_final_code);
    m_headers_complete = true;
  }

  int status() const { return m_status; }
  HttpHeaders& headers() { return m_headers; }
  const std::string& url() const { return m_url; }

  std::size_t read(char* out, std::size_t n)
  {
    if (n == 0) return 0;
    for (;;) {
      std::size_t avail = m_buf.size() - m_rpos;
      if (avail > 0) {
        std::size_t k = std::min(avail, n);
        std::memcpy(out, m_buf.data() + m_rpos, k);
        m_rpos += k;
        if (m_rpos == m_buf.size()) {
          m_buf.clear();
          m_rpos = 0;
        }
        if (m_paused && m_buf.size() - m_rpos <= k_body_buffer / 2) unpause();
        return k;
      }
      if (m_paused) {
        unpause();
        continue;
      }
      if (m_done) {
        if (m_result != CURLE_OK || m_upload_error) throw_failure();
        return 0;
      }
      drive_until([&] { return m_buf.size() > m_rpos || m_paused; });
    }
  }

  /// Reads and drops a small body so the connection stays reusable; gives up quietly.
  void discard()
  {
    try {
      std::array<char, 16384> sink{};
      std::size_t total = 0;
      while (total < k_redirect_drain_limit) {
        std::size_t k = read(sink.data(), sink.size());
        if (k == 0) return;
        total += k;
      }
    } catch (const std::exception&) {
      // The redirect target matters, not this body.
    }
  }

private:
  template <typename T>
  void setopt(CURLoption option, T value)
  {
    CURLcode rc = curl_easy_setopt(m_pair->easy.get(), option, value);
    if (rc != CURLE_OK)
      throw Error(Errc::internal, context() + ": libcurl option " + std::to_string(static_cast<int>(option)) +
                                      ": " + curl_easy_strerror(rc));
  }

  std::string context() const { return m_method + " " + redact_url(m_url); }

  // What the operator can do about a transport failure (issue 7: errors that say what to do).
  static std::string what_to_do(CURLcode rc, const std::string& message)
  {
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
      return " (the registry's TLS certificate is not trusted: give its CA certificate with --ca-file FILE, or "
             "--insecure to skip verification)";
    case CURLE_SSL_CACERT_BADFILE: return " (the --ca-file could not be read as PEM certificates)";
    case CURLE_SSL_CONNECT_ERROR:
      if (message.find("wrong version number") != std::string::npos)
        return " (the registry answered without TLS: for a plain-HTTP registry give --plain-http)";
      return " (the TLS handshake failed: check the address, or give the registry's CA with --ca-file FILE)";
    case CURLE_COULDNT_RESOLVE_HOST: return " (the host name does not resolve: check the registry's address)";
    case CURLE_COULDNT_CONNECT: return " (nothing answers there: check the registry's address and port)";
    case CURLE_OPERATION_TIMEDOUT: return " (the registry stopped sending: --timeout SECONDS sets the limit)";
    default: return "";
    }
  }

  template <typename Pred>
  void drive_until(Pred done_waiting)
  {
    CURLM* multi = m_pair->multi.get();
    while (!m_done) {
      int running = 0;
      CURLMcode mc = curl_multi_perform(multi, &running);
      if (mc != CURLM_OK) throw Error(Errc::network, context() + ": " + curl_multi_strerror(mc));
      int queued = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
        if (msg->msg == CURLMSG_DONE) {
          m_done = true;
          m_result = msg->data.result;
        }
      }
      if (m_done) {
        curl_easy_getinfo(m_pair->easy.get(), CURLINFO_RESPONSE_CODE, &m_final_code);
        // What is left of the body is in m_buf: the handles (and their connection)
        // can serve the next request while the caller still reads.
        release();
        return;
      }
      if (done_waiting()) return;
      mc = curl_multi_poll(multi, nullptr, 0, k_poll_timeout_ms, nullptr);
      if (mc != CURLM_OK) throw Error(Errc::network, context() + ": " + curl_multi_strerror(mc));
    }
  }

  void release() noexcept
  {
    if (!m_pair) return;
    if (m_in_multi) curl_multi_remove_handle(m_pair->multi.get(), m_pair->easy.get());
    m_in_multi = false;
    m_upload.reset();
    m_impl->release(std::move(m_pair));
  }

  void unpause()
  {
    m_paused = false;
    // May call on_write at once, which may pause again.
    CURLcode rc = curl_easy_pause(m_pair->easy.get(), CURLPAUSE_CONT);
    if (rc != CURLE_OK) throw Error(Errc::network, context() + ": " + curl_easy_strerror(rc));
  }

  [[noreturn]] void throw_failure()
  {
    if (m_upload_error) {
      try {
        std::rethrow_exception(m_upload_error);
      } catch (...) {
        rethrow_with_context(context() + ": request body");
      }
    }
    std::string message = m_errbuf[0] != '\0' ? std::string(m_errbuf.data()) : curl_easy_strerror(m_result);
    throw Error(Errc::network, context() + ": " + message + what_to_do(m_result, message));
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) noexcept
  {
    auto* self = static_cast<Transfer*>(user);
    std::size_t len = size * count;
    try {
      self->header_line(std::string_view(data, len));
    } catch (...) {
      return 0; // aborts the transfer
    }
    return len;
  }

  void header_line(std::string_view raw)
  {
    if (m_headers_complete) return; // trailers
    if (raw.size() >= 5 && raw.substr(0, 5) == "HTTP/") {
      // A new response (after 1xx interim ones): start over.
      m_headers.items.clear();
      m_status = 0;
      auto sp = raw.find(' ');
      if (sp != std::string_view::npos) {
        int code = 0;
        std::size_t i = sp + 1;
        for (int digits = 0; digits < 3 && i < raw.size() && raw[i] >= '0' && raw[i] <= '9'; ++digits, ++i)
          code = code * 10 + (raw[i] - '0');
        m_status = code;
      }
      return;
    }
    std::string_view line = raw;
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    if (line.empty()) {
      if (m_status >= 200) m_headers_complete = true;
      return;
    }
    if ((line.front() == ' ' || line.front() == '\t') && !m_headers.items.empty()) {
      auto& value = m_headers.items.back().second;
      value += ' ';
      value += trim(line);
      return;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return;
    m_headers.add(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  }

  static std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) noexcept
  {
    auto* self = static_cast<Transfer*>(user);
    std::size_t len = size * count;
    std::size_t avail = self->m_buf.size() - self->m_rpos;
    // Take all of a chunk or none of it: a paused chunk is delivered again on unpause.
    if (avail > 0 && avail + len > k_body_buffer) {
      self->m_paused = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    try {
      auto& buf = self->m_buf;
      if (self->m_rpos > 0 && buf.size() + len > buf.capacity()) {
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(self->m_rpos));
        self->m_rpos = 0;
      }
      buf.insert(buf.end(), data, data + len);
    } catch (...) {
      return 0; // CURLE_WRITE_ERROR
    }
    return len;
  }

  static std::size_t on_read(char* data, std::size_t size, std::size_t count, void* user) noexcept
  {
    auto* self = static_cast<Transfer*>(user);
    if (!self->m_upload) return 0;
    try {
      std::size_t want = size * count;
      if (self->m_upload_size) {
        std::uint64_t remaining = *self->m_upload_size - self->m_uploaded;
        if (remaining == 0) return 0;
        want = static_cast<std::size_t>(std::min<std::uint64_t>(want, remaining));
      }
      std::size_t n = self->m_upload->read(data, want);
      if (n == 0 && self->m_upload_size && self->m_uploaded < *self->m_upload_size)
        throw Error(Errc::io, "ended after " + std::to_string(self->m_uploaded) + " of " +
                                  std::to_string(*self->m_upload_size) + " bytes");
      self->m_uploaded += n;
      return n;
    } catch (...) {
      self->m_upload_error = std::current_exception();
      return CURL_READFUNC_ABORT;
    }
  }

  std::shared_ptr<CurlHttpClient::Impl> m_impl;
  std::unique_ptr<HandlePair> m_pair;
  bool m_in_multi = false;
  std::string m_method;
  std::string m_url;
  std::array<char, CURL_ERROR_SIZE> m_errbuf{};
  CurlSlistPtr m_header_list;

  std::unique_ptr<Reader> m_upload;
  std::optional<std::uint64_t> m_upload_size;
  std::uint64_t m_uploaded = 0;
  std::exception_ptr m_upload_error;

  int m_status = 0;
  HttpHeaders m_headers;
  bool m_headers_complete = false;

  std::vector<char> m_buf;
  std::size_t m_rpos = 0;
  bool m_paused = false;
  bool m_done = false;
  CURLcode m_result = CURLE_OK;
  long m_final_code = 0;
};

class TransferBodyReader : public Reader {
public:
  explicit TransferBodyReader(std::unique_ptr<Transfer> transfer) : m_transfer(std::move(transfer)) {}
  std::size_t read(char* buf, std::size_t n) override { return m_transfer->read(buf, n); }

private:
  std::unique_ptr<Transfer> m_transfer;
};

bool is_redirect(int status)
{
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

} // namespace

CurlHttpClient::CurlHttpClient(TransportOptions options) : m_impl(std::make_shared<Impl>())
{
  global_init();
  m_impl->options = std::move(options);
  m_impl->share.reset(curl_share_init());
  if (!m_impl->share) throw Error(Errc::internal, "libcurl: cannot create a share handle");
  CURLSH* share = m_impl->share.get();
  curl_share_setopt(share, CURLSHOPT_USERDATA, m_impl.get());
  curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &share_lock);
  curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &share_unlock);
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

CurlHttpClient::~CurlHttpClient() = default;

HttpResponse CurlHttpClient::send(const HttpRequest& request)
{
  HttpRequest current = request;
  const std::string origin = url_origin(request.url);
  bool drop_authorization = false;
  for (int hop = 0;; ++hop) {
    auto transfer = std::make_unique<Transfer>(m_impl, current);
    transfer->start(current);
    transfer->wait_headers();
    int status = transfer->status();
    std::optional<std::string> location = transfer->headers().get("Location");
    bool keep_method = status == 307 || status == 308;
    bool follow = current.follow_redirects && is_redirect(status) && location && !location->empty() &&
                  !(keep_method && current.body && !current.body_replayable);
    if (!follow) {
      HttpResponse response;
      response.status = status;
      response.headers = std::move(transfer->headers());
      response.effective_url = current.url;
      response.body = std::make_unique<TransferBodyReader>(std::move(transfer));
      return response;
    }
    if (hop == k_max_redirects)
      throw Error(Errc::network, request.method + " " + redact_url(request.url) + ": more than " +
                                     std::to_string(k_max_redirects) + " redirects");
    std::string next = resolve_url(current.url, *location);
    std::string next_origin = url_origin(next);
    if (next_origin.rfind("http://", 0) != 0 && next_origin.rfind("https://", 0) != 0)
      throw Error(Errc::network, current.method + " " + redact_url(current.url) + ": redirect to unsupported URL " +
                                     redact_url(next));
    transfer->discard();
    transfer.reset();

    if (!keep_method && current.method != "GET" && current.method != "HEAD") {
      current.method = "GET";
      current.body = nullptr;
      current.body_size.reset();
      erase_header(current.headers, "Content-Type");
      erase_header(current.headers, "Content-Length");
    }
    current.url = std::move(next);
    // Credentials never follow a redirect to another origin, even if a later hop
    // comes back (design §8).
    if (next_origin != origin) drop_authorization = true;
    if (drop_authorization) erase_header(current.headers, "Authorization");
  }
}

} // namespace ferry::remote

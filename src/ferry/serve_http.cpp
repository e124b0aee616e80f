// ferry serve, the HTTP half: libmicrohttpd (a thread pool, each thread on its own epoll;
// blobs from a file descriptor at their offset, sent with sendfile where the kernel can;
// TLS through GnuTLS), basic authentication against bcrypt hashes (libcrypt), bounds on
// connections, header sizes and idle clients, and one access log line per request.
#include <ferry/serve.hpp>

#include <ferry/digest.hpp>
#include <ferry/error.hpp>
#include <ferry/util/text.hpp>

#include <arpa/inet.h>
#include <crypt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cstdarg>
#include <cstring>
#include <mutex>

namespace ferry::serve {

namespace {

// One request's state, from its first call to its completion (the access log line).
struct Exchange {
  std::string method;
  std::string url;
  std::string client;
  unsigned status = 0;
  std::uint64_t bytes = 0;
};

// A blob read through the bundle's reader (a format with no one place for it): its bytes
// after `skip`, `length` of them.
struct ReaderBody {
  std::unique_ptr<Reader> reader;
  std::uint64_t skip = 0;
  std::uint64_t length = 0;
  std::uint64_t sent = 0;
  bool to_end = false;  ///< the range ends where the blob does
};

ssize_t read_body(void* cls, std::uint64_t pos, char* buf, std::size_t max)
{
  auto* body = static_cast<ReaderBody*>(cls);
  try {
    if (pos != body->sent) return MHD_CONTENT_READER_END_WITH_ERROR;  // only ever forward
    if (!body->reader) return MHD_CONTENT_READER_END_WITH_ERROR;
    while (body->skip > 0) {
      char scratch[1 << 14];
      std::size_t n = body->reader->read(scratch, static_cast<std::size_t>(std::min<std::uint64_t>(sizeof scratch, body->skip)));
      if (n == 0) return MHD_CONTENT_READER_END_WITH_ERROR;
      body->skip -= n;
    }
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(max, body->length - body->sent));
    if (want == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    std::size_t got = body->reader->read(buf, want);
    if (got == 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    body->sent += got;
    // The blob read to its end: the reader checks its digest there (throws on a mismatch),
    // before the last bytes are handed over.
    if (body->sent == body->length && body->to_end) {
      char probe;
      if (body->reader->read(&probe, 1) != 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return static_cast<ssize_t>(got);
  } catch (...) {
    return MHD_CONTENT_READER_END_WITH_ERROR;  // the connection is cut: the client never gets a whole wrong blob
  }
}

void free_body(void* cls) { delete static_cast<ReaderBody*>(cls); }

ssize_t no_body(void*, std::uint64_t, char*, std::size_t) { return MHD_CONTENT_READER_END_WITH_ERROR; }

// Header lines of one name are one list (RFC 9110 §5.3): skopeo sends an Accept line per
// media type.
enum MHD_Result collect(void* cls, enum MHD_ValueKind, const char* key, const char* value)
{
  auto* out = static_cast<std::map<std::string, std::string>*>(cls);
  if (!key) return MHD_YES;
  auto [it, fresh] = out->emplace(to_lower(key), value ? value : "");
  if (!fresh && value) it->second += ", " + std::string(value);
  return MHD_YES;
}

int hex_value(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding of the path and the query, in place, except `%00`: a NUL would end the
// C string the path is handed over as, and a shorter path than the client sent would be
// answered. Left as the three characters, it makes the path invalid, as it is.
std::size_t unescape(void*, MHD_Connection*, char* s)
{
  char* w = s;
  for (char* r = s; *r;) {
    int hi = r[0] == '%' ? hex_value(r[1]) : -1;
    int lo = hi >= 0 ? hex_value(r[2]) : -1;
    if (lo >= 0 && (hi | lo) != 0) {
      *w++ = static_cast<char>(hi << 4 | lo);
      r += 3;
    } else {
      *w++ = *r++;
    }
  }
  *w = '\0';
  return static_cast<std::size_t>(w - s);
}

enum MHD_Result collect_query(void* cls, enum MHD_ValueKind, const char* key, const char* value)
{
  auto* out = static_cast<std::map<std::string, std::string>*>(cls);
  if (key) (*out)[key] = value ? value : "";
  return MHD_YES;
}

std::string client_address(MHD_Connection* connection)
{
  const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (!info || !info->client_addr) return "-";
  char host[INET6_ADDRSTRLEN] = "-";
  const sockaddr* sa = info->client_addr;
  if (sa->sa_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, host, sizeof host);
  else if (sa->sa_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, host, sizeof host);
  return host;
}

} // namespace

std::map<std::string, std::string> parse_htpasswd(const std::string& content, const std::string& where)
{
  std::map<std::string, std::string> users;
  std::size_t line_no = 0, pos = 0;
  while (pos < content.size()) {
    auto end = content.find('\n', pos);
    std::string line = content.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? content.size() : end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    auto colon = line.find(':');
    std::string at = where + ":" + std::to_string(line_no);
    if (colon == std::string::npos || colon == 0) throw Error(Errc::invalid_argument, at + ": not a user:hash line");
    std::string hash = line.substr(colon + 1);
    if (hash.rfind("$2y$", 0) != 0 && hash.rfind("$2b$", 0) != 0 && hash.rfind("$2a$", 0) != 0)
      throw Error(Errc::invalid_argument, at + ": only bcrypt entries are accepted (htpasswd -B), as distribution accepts");
    users[line.substr(0, colon)] = hash;
  }
  if (users.empty()) throw Error(Errc::invalid_argument, where + ": no users");
  return users;
}

bool bcrypt_matches(const std::string& password, const std::string& hash)
{
  // crypt_rn (libxcrypt): no failure token to mistake for a hash, and no sanitizer
  // interceptor (AddressSanitizer's crypt_r one calls a null function with libxcrypt).
  crypt_data data{};
  const char* out = ::crypt_rn(password.c_str(), hash.c_str(), &data, static_cast<int>(sizeof data));
  if (!out || out[0] == '*') return false;
  std::size_t n = std::strlen(out);
  return n == hash.size() && CRYPTO_memcmp(out, hash.data(), n) == 0;
}

struct Server::Impl {
  Server* server = nullptr;
  MHD_Daemon* daemon = nullptr;
  // Passwords that matched, by user, as SHA-256 (bcrypt costs tens of milliseconds a check:
  // a client sends its credentials with every request).
  std::mutex mutex;
  std::map<std::string, std::string> good;

  bool authorized(MHD_Connection* connection)
  {
    const auto& users = server->m_options.users;
    if (users.empty()) return true;
    char* password = nullptr;
    char* user = MHD_basic_auth_get_username_password(connection, &password);
    bool ok = false;
    if (user && password) {
      auto it = users.find(user);
      if (it != users.end()) {
        std::string pass = password;
        std::string key = Digest::of(pass).str();
        {
          std::lock_guard<std::mutex> lock(mutex);
          auto g = good.find(user);
          ok = g != good.end() && g->second == key;
        }
        if (!ok && bcrypt_matches(pass, it->second)) {
          ok = true;
          std::lock_guard<std::mutex> lock(mutex);
          good[user] = key;
        }
      }
    }
    if (user) MHD_free(user);
    if (password) MHD_free(password);
    return ok;
  }

  static enum MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                                    const char*, const char*, std::size_t* upload_size, void** state)
  {
    auto* self = static_cast<Impl*>(cls);
    if (!*state) {  // headers in; the body (if any) is never read
      auto* ex = new Exchange;
      ex->method = method ? method : "";
      ex->url = url ? url : "";
      ex->client = client_address(connection);
      *state = ex;
      return MHD_YES;
    }
    auto* ex = static_cast<Exchange*>(*state);
    if (*upload_size != 0) {  // a write's body: answered UNSUPPORTED, its bytes dropped
      *upload_size = 0;
      return MHD_YES;
    }
    try {
      return self->answer(connection, *ex);
    } catch (const std::exception&) {
      return MHD_NO;  // the connection is closed
    }
  }

  enum MHD_Result answer(MHD_Connection* connection, Exchange& ex)
  {
    Response r;
    bool auth_failed = !authorized(connection);
    if (auth_failed) {
      r = error_response(401, "UNAUTHORIZED", "authentication required");
      r.headers.emplace_back("Docker-Distribution-API-Version", "registry/2.0");
    } else {
      Request request;
      request.method = ex.method;
      request.path = ex.url;
      MHD_get_connection_values(connection, MHD_HEADER_KIND, collect, &request.headers);
      MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, collect_query, &request.query);
      r = server->m_registry.handle(request);
    }
    MHD_Response* response = nullptr;
    if (r.blob && r.blob->file.fd.get() >= 0 && !r.head) {
      int fd = r.blob->file.fd.release();
      response = MHD_create_response_from_fd_at_offset64(r.blob->length, fd, r.blob->offset);
      if (!response) ::close(fd);
    } else if (r.blob && r.blob->reader && !r.head) {
      auto* body = new ReaderBody;
      try {
        body->reader = r.blob->reader->fetch(r.blob->desc);
      } catch (const std::exception&) {
        delete body;
        return MHD_NO;
      }
      body->skip = r.blob->skip;
      body->length = r.blob->length;
      body->to_end = r.blob->skip + r.blob->length == r.blob->desc.size;
      response = MHD_create_response_from_callback(r.blob->length, 1 << 16, read_body, body, free_body);
      if (!response) delete body;
    } else if (r.blob) {  // HEAD: the length, never read
      response = MHD_create_response_from_callback(r.blob->length, 1 << 12, no_body, nullptr, nullptr);
    } else {
      response = MHD_create_response_from_buffer(r.body.size(), r.body.data(), MHD_RESPMEM_MUST_COPY);
    }
    if (!response) return MHD_NO;
    for (const auto& [name, value] : r.headers) MHD_add_response_header(response, name.c_str(), value.c_str());
    ex.status = r.status;
    ex.bytes = r.head ? 0 : r.content_length();
    enum MHD_Result queued = auth_failed ? MHD_queue_basic_auth_fail_response(connection, "ferry", response)
                                         : MHD_queue_response(connection, r.status, response);
    MHD_destroy_response(response);
    return queued;
  }

  static void on_completed(void* cls, MHD_Connection*, void** state, enum MHD_RequestTerminationCode code)
  {
    auto* self = static_cast<Impl*>(cls);
    auto* ex = static_cast<Exchange*>(*state);
    if (!ex) return;
    *state = nullptr;
    if (self->server->m_options.access_log && ex->status != 0) {
      std::string line = ex->client + " \"" + escape_for_terminal(ex->method) + " " + escape_for_terminal(ex->url) + "\" " +
                         std::to_string(ex->status) + " " + std::to_string(ex->bytes);
      if (code != MHD_REQUEST_TERMINATED_COMPLETED_OK) line += " (cut)";
      self->server->m_options.access_log(line);
    }
    delete ex;
  }

  static void on_log(void* cls, const char* fmt, va_list ap)
  {
    auto* self = static_cast<Impl*>(cls);
    if (!self->server->m_options.access_log) return;
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    std::string text = buf;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    self->server->m_options.access_log("http: " + escape_for_terminal(text));
  }
};

Server::Server(const Registry& registry, ServerOptions options) : m_registry(registry), m_options(std::move(options)) {}

Server::~Server() { stop(); }

void Server::start()
{
  m_impl = std::make_unique<Impl>();
  m_impl->server = this;
  std::string where = m_options.host + ":" + std::to_string(m_options.port);

  // Room for every connection allowed (the soft limit is often 1024).
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    rlim_t want = static_cast<rlim_t>(m_options.max_connections) + 256;
    if (nofile.rlim_cur < want) {
      nofile.rlim_cur = std::min(want, nofile.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(m_options.port);
  std::string host = m_options.host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found); rc != 0)
    throw Error(Errc::invalid_argument, "--listen " + where + ": " + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
  sockaddr_storage address{};
  std::memcpy(&address, found->ai_addr, found->ai_addrlen);

  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  if (found->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
  bool tls = !m_options.tls_cert_pem.empty();
  if (tls) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
      throw Error(Errc::unsupported, "--tls-cert: this libmicrohttpd was built without TLS");
    flags |= MHD_USE_TLS;
  }
  std::vector<MHD_OptionItem> opts = {
      // First, so that every message of the daemon comes through it.
      {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&Impl::on_log), m_impl.get()},
      {MHD_OPTION_SOCK_ADDR, 0, &address},
      {MHD_OPTION_THREAD_POOL_SIZE, static_cast<intptr_t>(std::max(1u, m_options.threads)), nullptr},
      {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(m_options.max_connections), nullptr},
      {MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(m_options.timeout_s), nullptr},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(m_options.max_header_size), nullptr},
      {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, nullptr},
      {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&Impl::on_completed), m_impl.get()},
      {MHD_OPTION_UNESCAPE_CALLBACK, reinterpret_cast<intptr_t>(&unescape), nullptr},
  };
  if (tls) {
    opts.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char*>(m_options.tls_cert_pem.c_str())});
    opts.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char*>(m_options.tls_key_pem.c_str())});
  }
  opts.push_back({MHD_OPTION_END, 0, nullptr});
  m_impl->daemon = MHD_start_daemon(flags, m_options.port, nullptr, nullptr, &Impl::on_request, m_impl.get(),
                                    MHD_OPTION_ARRAY, opts.data(), MHD_OPTION_END);
  if (!m_impl->daemon)
    throw Error(Errc::io, "cannot listen on " + where + (tls ? " (or the TLS certificate and key were refused)" : "") +
                              ": the address is in use or not local");
  const MHD_DaemonInfo* info = MHD_get_daemon_info(m_impl->daemon, MHD_DAEMON_INFO_BIND_PORT);
  m_port = info ? info->port : m_options.port;
}

void Server::stop()
{
  if (m_impl && m_impl->daemon) {
    MHD_stop_daemon(m_impl->daemon);
    m_impl->daemon = nullptr;
  }
}

} // namespace ferry::serve

// CurlHttpClient against a small scripted HTTP/1.1 server on loopback (in-process).
#include <doctest/doctest.h>

#include <ferry/error.hpp>
#include <ferry/remote/curl_http_client.hpp>
#include <ferry/remote/registries.hpp>

#include <arpa/inet.h>
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace ferry;
using namespace ferry::remote;

namespace {

struct ServerRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers; // lower-cased names
  std::string body;
};

bool send_all(int fd, std::string_view data)
{
  while (!data.empty()) {
    ssize_t k = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (k <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(k));
  }
  return true;
}

std::string response_head(int status, std::size_t length, const std::string& extra = {})
{
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(length) + "\r\n" + extra +
         "\r\n";
}

/// Loopback server: one thread per connection, keep-alive, Content-Length bodies only.
/// `handler(request, fd)` writes the whole response itself and returns false to close.
class TestServer {
public:
  std::function<bool(const ServerRequest&, int fd)> handler;
  std::atomic<std::uint64_t> big_sent{0};

  TestServer()
  {
    m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(m_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(m_listen, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(m_listen, 16) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(m_listen, reinterpret_cast<sockaddr*>(&addr), &len);
    m_port = ntohs(addr.sin_port);
    m_accept = std::thread([this] { accept_loop(); });
  }

  ~TestServer()
  {
    m_stop = true;
    ::shutdown(m_listen, SHUT_RDWR);
    ::close(m_listen);
    m_accept.join();
    {
      std::lock_guard lock(m_mutex);
      for (int fd : m_fds) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : m_threads) t.join();
  }

  std::string url(const std::string& path, const std::string& host = "127.0.0.1") const
  {
    return "http://" + host + ":" + std::to_string(m_port) + path;
  }

  std::vector<ServerRequest> requests()
  {
    std::lock_guard lock(m_mutex);
    return m_requests;
  }
  int connections()
  {
    std::lock_guard lock(m_mutex);
    return static_cast<int>(m_fds.size());
  }

private:
  void accept_loop()
  {
    for (;;) {
      int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (m_stop) return;
        continue;
      }
      std::lock_guard lock(m_mutex);
      m_fds.push_back(fd);
      m_threads.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd)
  {
    std::string buf;
    char chunk[65536];
    for (;;) {
      std::size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t k = ::recv(fd, chunk, sizeof chunk, 0);
        if (k <= 0) return close_fd(fd);
        buf.append(chunk, static_cast<std::size_t>(k));
      }
      ServerRequest req;
      std::string head = buf.substr(0, end);
      buf.erase(0, end + 4);
      auto line_end = head.find("\r\n");
      std::string first = head.substr(0, line_end);
      auto sp1 = first.find(' ');
      auto sp2 = first.find(' ', sp1 + 1);
      req.method = first.substr(0, sp1);
      req.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
      std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
      while (pos < head.size()) {
        auto e = head.find("\r\n", pos);
        if (e == std::string::npos) e = head.size();
        std::string line = head.substr(pos, e - pos);
        auto colon = line.find(':');
        if (colon != std::string::npos) {
          std::string name = line.substr(0, colon);
          for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          std::string value = line.substr(colon + 1);
          value.erase(0, value.find_first_not_of(' '));
          req.headers[name] = value;
        }
        pos = e + 2;
      }
      if (req.headers.count("expect")) send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n");
      std::size_t length = req.headers.count("content-length") ? std::stoul(req.headers["content-length"]) : 0;
      while (buf.size() < length) {
        ssize_t k = ::recv(fd, chunk, sizeof chunk, 0);
        if (k <= 0) return close_fd(fd);
        buf.append(chunk, static_cast<std::size_t>(k));
      }
      req.body = buf.substr(0, length);
      buf.erase(0, length);
      {
        std::lock_guard lock(m_mutex);
        m_requests.push_back(req);
      }
      if (!handler(req, fd)) return close_fd(fd);
    }
  }

  void close_fd(int fd) { ::shutdown(fd, SHUT_RDWR); }

  int m_listen = -1;
  int m_port = 0;
  std::atomic<bool> m_stop{false};
  std::thread m_accept;
  std::mutex m_mutex;
  std::vector<int> m_fds;
  std::vector<std::thread> m_threads;
  std::vector<ServerRequest> m_requests;
};

constexpr std::size_t k_big = std::size_t{32} << 20;

char big_byte(std::size_t i) { return static_cast<char>((i * 131 + i / 4096) & 0xff); }

bool default_handler(TestServer& server, const ServerRequest& req, int fd)
{
  const std::string& t = req.target;
  if (t == "/big") {
    if (!send_all(fd, response_head(200, k_big))) return false;
    if (req.method == "HEAD") return true;
    std::string block(65536, '\0');
    for (std::size_t off = 0; off < k_big; off += block.size()) {
      for (std::size_t i = 0; i < block.size(); ++i) block[i] = big_byte(off + i);
      if (!send_all(fd, block)) return false;
      server.big_sent += block.size();
    }
    return true;
  }
  if (t == "/target") {
    std::string body = req.method + " " + (req.headers.count("authorization") ? req.headers.at("authorization") : "-");
    return send_all(fd, response_head(200, body.size(), "Content-Type: text/plain\r\n") + body);
  }
  if (t == "/echo") {
    std::string body = req.method + ":" + req.body;
    return send_all(fd, response_head(201, body.size()) + body);
  }
  if (t == "/redirect-rel") return send_all(fd, response_head(302, 4, "Location: target\r\n") + "moved");
  if (t == "/redirect-cross")
    return send_all(fd, response_head(307, 0, "Location: " + server.url("/target", "localhost") + "\r\n"));
  if (t == "/redirect-303") return send_all(fd, response_head(303, 0, "Location: /target\r\n"));
  if (t == "/put-307") return send_all(fd, response_head(307, 0, "Location: /echo\r\n"));
  if (t == "/loop") return send_all(fd, response_head(302, 0, "Location: /loop\r\n"));
  if (t == "/file-redirect") return send_all(fd, response_head(302, 0, "Location: file:///etc/passwd\r\n"));
  if (t == "/reset") {
    send_all(fd, response_head(200, 100000) + std::string(1000, 'x'));
    return false;
  }
  if (t == "/headers") {
    std::string body;
    for (const auto& [k, v] : req.headers) body += k + "=" + v + "\n";
    return send_all(fd, response_head(200, body.size(), "X-Multi: a\r\nX-Multi: b\r\n") + body);
  }
  return send_all(fd, response_head(404, 0));
}

HttpRequest request(const std::string& method, const std::string& url)
{
  HttpRequest r;
  r.method = method;
  r.url = url;
  return r;
}

} // namespace

TEST_CASE("curl: streams a large body with backpressure")
{
  TestServer server;
  server.handler = [&](const ServerRequest& r, int fd) { return default_handler(server, r, fd); };
  CurlHttpClient client;
  auto response = client.send(request("GET", server.url("/big")));
  CHECK(response.status == 200);
  CHECK(response.headers.get("content-length") == std::to_string(k_big));
  // Nobody reads: the transfer pauses, the server blocks well before the end.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(server.big_sent.load() < k_big);
  std::vector<char> buf(100000);
  std::size_t total = 0;
  bool same = true;
  for (;;) {
    std::size_t n = response.body->read(buf.data(), buf.size());
    if (n == 0) break;
    for (std::size_t i = 0; i < n && same; ++i) same = buf[i] == big_byte(total + i);
    total += n;
  }
  CHECK(total == k_big);
  CHECK(same);
  CHECK(response.effective_url == server.url("/big"));

  // HEAD: headers only; the connection is reused.
  auto head = client.send(request("HEAD", server.url("/big")));
  CHECK(head.status == 200);
  CHECK(head.read_body() == "");
  HttpRequest no_body = request("GET", server.url("/big"));
  no_body.no_body = true;
  CHECK(client.send(no_body).status == 200);
  CHECK(server.connections() == 1);
  auto reqs = server.requests();
  CHECK(reqs.back().method == "HEAD");
}

TEST_CASE("curl: request bodies, headers and methods")
{
  TestServer server;
  server.handler = [&](const ServerRequest& r, int fd) { return default_handler(server, r, fd); };
  CurlHttpClient client;

  HttpRequest put = request("PUT", server.url("/echo"));
  put.body = body_from_string("hello");
  put.body_size = 5;
  auto r1 = client.send(put);
  CHECK(r1.status == 201);
  CHECK(r1.read_body() == "PUT:hello");

  HttpRequest patch = request("PATCH", server.url("/echo"));
  patch.body = body_from_string("chunk");
  patch.body_size = 5;
  CHECK(client.send(patch).read_body() == "PATCH:chunk");

  HttpRequest post = request("POST", server.url("/headers"));
  post.headers.add("Accept", "application/vnd.oci.image.index.v1+json");
  post.headers.add("X-Empty", "");
  auto r2 = client.send(post);
  std::string seen = r2.read_body();
  CHECK(seen.find("content-length=0\n") != std::string::npos);
  CHECK(seen.find("content-type") == std::string::npos);
  CHECK(seen.find("accept=application/vnd.oci.image.index.v1+json\n") != std::string::npos);
  CHECK(seen.find("x-empty=\n") != std::string::npos);
  CHECK(seen.find("user-agent=ferry/0.1\n") != std::string::npos);
  CHECK(r2.headers.get_all("x-multi") == std::vector<std::string>{"a", "b"});

  HttpRequest del = request("DELETE", server.url("/echo"));
  CHECK(client.send(del).read_body() == "DELETE:");

  // A body shorter than its declared size is an error naming the request.
  HttpRequest short_put = request("PUT", server.url("/echo"));
  short_put.body = body_from_string("abc");
  short_put.body_size = 10;
  try {
    client.send(short_put).read_body();
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("PUT " + server.url("/echo")) == 0);
  }
}

TEST_CASE("curl: redirects")
{
  TestServer server;
  server.handler = [&](const ServerRequest& r, int fd) { return default_handler(server, r, fd); };
  CurlHttpClient client;

  HttpRequest rel = request("GET", server.url("/redirect-rel"));
  rel.headers.add("Authorization", "Bearer secret");
  auto r1 = client.send(rel);
  CHECK(r1.status == 200);
  CHECK(r1.read_body() == "GET Bearer secret"); // same origin keeps credentials
  CHECK(r1.effective_url == server.url("/target"));

  HttpRequest cross = request("GET", server.url("/redirect-cross"));
  cross.headers.add("Authorization", "Bearer secret");
  auto r2 = client.send(cross);
  CHECK(r2.status == 200);
  CHECK(r2.read_body() == "GET -"); // another host: dropped
  CHECK(r2.effective_url == server.url("/target", "localhost"));

  HttpRequest post = request("POST", server.url("/redirect-303"));
  post.body = body_from_string("data");
  post.body_size = 4;
  CHECK(client.send(post).read_body() == "GET -");

  HttpRequest put = request("PUT", server.url("/put-307"));
  put.body = body_from_string("again");
  put.body_size = 5;
  auto r3 = client.send(put);
  CHECK(r3.status == 201);
  CHECK(r3.read_body() == "PUT:again");

  HttpRequest one_shot = put;
  one_shot.body_replayable = false;
  CHECK(client.send(one_shot).status == 307);

  HttpRequest no_follow = request("GET", server.url("/redirect-rel"));
  no_follow.follow_redirects = false;
  auto r4 = client.send(no_follow);
  CHECK(r4.status == 302);
  CHECK(r4.headers.get("Location") == "target");

  CHECK_THROWS_AS(client.send(request("GET", server.url("/loop"))), Error);
  CHECK_THROWS_AS(client.send(request("GET", server.url("/file-redirect"))), Error);
}

TEST_CASE("curl: transport failures are Errc::network")
{
  TestServer server;
  server.handler = [&](const ServerRequest& r, int fd) { return default_handler(server, r, fd); };
  CurlHttpClient client;
  auto response = client.send(request("GET", server.url("/reset")));
  CHECK(response.status == 200);
  try {
    response.read_body();
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::network);
    CHECK(std::string(e.what()).find("GET " + server.url("/reset") + ": ") == 0);
  }

  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::string closed = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/v2/?token=abc";
  ::close(fd);
  try {
    client.send(request("GET", closed));
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::network);
    CHECK(std::string(e.what()).find("token=abc") == std::string::npos);
  }

  // A name that does not resolve (RFC 6761: .invalid never does), twice: the second request
  // reuses a handle the failed one left holding its receive buffer, and must still say why.
  for (int i = 0; i < 2; ++i) {
    try {
      client.send(request("GET", "http://ferry-test.invalid/v2/"));
      FAIL("no exception");
    } catch (const Error& e) {
      CHECK(e.code() == Errc::network);
      CHECK_MESSAGE(std::string(e.what()).find("resolve") != std::string::npos, e.what());
    }
  }
}

TEST_CASE("curl: concurrent requests from several threads")
{
  TestServer server;
  server.handler = [&](const ServerRequest& r, int fd) { return default_handler(server, r, fd); };
  CurlHttpClient client;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        HttpRequest put = request("PUT", server.url("/echo"));
        put.body = body_from_string(std::to_string(i));
        put.body_size = std::to_string(i).size();
        if (client.send(put).read_body() == "PUT:" + std::to_string(i)) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(ok == 40);
  CHECK(server.connections() <= 4);

  CHECK(resolve_url("https://a.example/v2/x/blobs/uploads/", "/v2/x/blobs/uploads/u1?_state=s") ==
        "https://a.example/v2/x/blobs/uploads/u1?_state=s");
  CHECK(resolve_url("https://a.example/v2/x/", "u2") == "https://a.example/v2/x/u2");
  CHECK(resolve_url("https://a.example/v2/", "//b.example/p") == "https://b.example/p");
  CHECK(url_origin("HTTPS://A.example/x") == "https://a.example:443");
  CHECK(url_origin("http://a.example:80/") == url_origin("http://a.example/"));
  CHECK(redact_url("https://s3/x?X-Amz-Signature=1") == "https://s3/x?...");
}

TEST_CASE("registries: credentials go only to the hosts of registries opened")
{
  // The registry asks for Basic auth; the other host (a Link, a Location, a redirect the
  // protocol might lead to) asks for it too, and must get nothing.
  std::mutex mutex;
  std::vector<std::string> other_auth;
  auto basic_server = [&](std::vector<std::string>* seen) {
    return [&mutex, seen](const ServerRequest& r, int fd) {
      bool has = r.headers.count("authorization") > 0;
      if (seen) {
        std::lock_guard lock(mutex);
        seen->push_back(has ? r.headers.at("authorization") : "-");
      }
      if (!has) return send_all(fd, response_head(401, 0, "WWW-Authenticate: Basic realm=\"x\"\r\n"));
      return send_all(fd, response_head(200, 2) + "ok");
    };
  };
  TestServer registry;
  registry.handler = basic_server(nullptr);
  TestServer other;
  other.handler = basic_server(&other_auth);

  RegistryOptions options;
  options.plain_http = true;
  options.username = "user";
  options.password = "secret";
  options.retry.max_attempts = 1;
  Registries registries(options);
  std::string host = registry.url("").substr(7);
  registries.open(host, "app");
  auto ok = registries.http().send(request("GET", registry.url("/v2/app/manifests/v1")));
  CHECK(ok.status == 200);
  try {
    registries.http().send(request("GET", other.url("/v2/app/referrers/x?page=2")));
    FAIL("no exception");
  } catch (const Error& e) {
    CHECK(e.code() == Errc::unauthorized);
    CHECK(std::string(e.what()).find("not a registry ferry was asked to use") != std::string::npos);
  }
  {
    std::lock_guard lock(mutex);
    CHECK(other_auth == std::vector<std::string>{"-"});
  }
}

TEST_CASE("registries: --timeout bounds a server that answers nothing")
{
  RegistryOptions options;
  options.plain_http = true;
  options.retry.max_attempts = 1;
  options.timeout_s = 1;
  Registries registries(options);
  TestServer silent;
  silent.handler = [](const ServerRequest&, int) {
    std::this_thread::sleep_for(std::chrono::seconds(4));
    return false;
  };
  auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(registries.http().send(request("GET", silent.url("/v2/"))), Error);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(4));
}

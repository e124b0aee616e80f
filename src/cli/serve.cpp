// ferry serve: bundles as a read-only registry (issue 17), verified before it listens.
#include "common.hpp"

#include <ferry/error.hpp>
#include <ferry/serve.hpp>
#include <ferry/util/file.hpp>

#include <csignal>
#include <cstdio>
#include <mutex>
#include <pthread.h>

namespace ferry::cli {

namespace {

// host:port, [v6]:port, or :port (every address).
std::pair<std::string, std::uint16_t> parse_listen(const std::string& text)
{
  auto colon = text.rfind(':');
  if (colon == std::string::npos || (text.find(']') != std::string::npos && colon < text.find(']')))
    throw Error(Errc::invalid_argument, "--listen \"" + text + "\": want HOST:PORT (127.0.0.1:5000; port 0 picks a free one)");
  std::string host = text.substr(0, colon), port = text.substr(colon + 1);
  unsigned long value = 0;
  try {
    std::size_t used = 0;
    value = std::stoul(port, &used);
    if (used != port.size() || value > 65535) throw std::out_of_range("port");
  } catch (const std::exception&) {
    throw Error(Errc::invalid_argument, "--listen \"" + text + "\": the port must be a number from 0 to 65535");
  }
  return {host, static_cast<std::uint16_t>(value)};
}

} // namespace

void register_serve(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto* cmd = app.add_subcommand("serve", "Serve verified bundles as a read-only OCI registry (with the referrers API)");
  struct State {
    std::vector<std::string> bundles;
    std::string listen = "127.0.0.1:5000";
    std::vector<std::string> maps;
    std::string cache_dir;
    std::string tls_cert, tls_key, htpasswd, access_log;
    unsigned max_connections = 1000;
    unsigned timeout = 30;
    unsigned threads = 4;
    std::size_t max_header_size = 32 * 1024;
    bool integrity_only = false;
    TrustFlags trust;
    LimitFlags limits;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("bundle", s->bundles,
                  "Bundles to serve (*.tar, *.tar.zst, *.tar.gz/*.tgz, a first volume NAME.001 or a layout directory); "
                  "several are merged by digest")
      ->required();
  cmd->add_option("--listen", s->listen, "Address to listen on, HOST:PORT (port 0: any free port, said in the startup line)")
      ->capture_default_str();
  cmd->add_option("--map", s->maps,
                  "Serve a source repository under another name (SRC_REPO=DST_REPO) or one tag of it "
                  "(SRC_REPO:TAG=DST_REPO:TAG), as push renames it (repeatable)");
  cmd->add_option("--cache-dir", s->cache_dir,
                  "Directory to extract the verified blobs of a compressed bundle (.tar.zst, .tar.gz) into, to serve "
                  "them from (a directory or a plain .tar is served in place)");
  auto* cert = cmd->add_option("--tls-cert", s->tls_cert, "Serve HTTPS with this certificate (PEM, the chain after it)")
                   ->check(CLI::ExistingFile);
  auto* key = cmd->add_option("--tls-key", s->tls_key, "The certificate's private key (PEM)")->check(CLI::ExistingFile);
  cert->needs(key);
  key->needs(cert);
  cmd->add_option("--htpasswd", s->htpasswd, "Require basic authentication against this htpasswd file (bcrypt, htpasswd -B)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--access-log", s->access_log, "Write the access log (a line per request) to this file instead of stderr");
  cmd->add_option("--max-connections", s->max_connections, "Connections served at once; more wait in the queue")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  cmd->add_option("--timeout", s->timeout, "Seconds a connection may stay idle or stall before it is closed")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
  cmd->add_option("--threads", s->threads, "Threads answering requests")->capture_default_str()->check(CLI::Range(1u, 64u));
  cmd->add_option("--max-header-size", s->max_header_size, "Bytes a request's line and headers may take (431 beyond)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 20));
  s->trust.add_to(*cmd);
  s->limits.add_to(*cmd, true);
  cmd->add_flag("--integrity-only", s->integrity_only, "Check digests and the graph only before serving; no trust material");
  cmd->callback([s, &global, &action] {
    action = [s, &global]() -> int {
      auto [host, port] = parse_listen(s->listen);
      std::vector<PushMap> maps;
      for (const auto& m : s->maps) maps.push_back(PushMap::parse(m));
      for (const auto& b : s->bundles) {
        BundleFormat format = format_from_path(b);
        s->trust.check(b, format, s->integrity_only);
        if ((format == BundleFormat::tar_zst || format == BundleFormat::tar_gz) && s->cache_dir.empty())
          throw Error(Errc::invalid_argument, b + ": a compressed bundle is served from its blobs extracted, verified, into "
                                                  "--cache-dir DIR (a directory or a plain .tar is served in place)");
      }
      serve::ServerOptions server_options;
      server_options.host = host;
      server_options.port = port;
      server_options.max_connections = s->max_connections;
      server_options.timeout_s = s->timeout;
      server_options.threads = s->threads;
      server_options.max_header_size = s->max_header_size;
      if (!s->tls_cert.empty()) {
        server_options.tls_cert_pem = read_user_file(s->tls_cert, 1 << 20, "certificate", Errc::size_exceeds_limit);
        server_options.tls_key_pem = read_user_file(s->tls_key, 1 << 20, "key", Errc::size_exceeds_limit);
      }
      if (!s->htpasswd.empty())
        server_options.users =
            serve::parse_htpasswd(read_user_file(s->htpasswd, 1 << 20, "htpasswd file", Errc::size_exceeds_limit), s->htpasswd);

      auto log = make_logger(global);
      // Each bundle opened once and verified: what is served is what this read hashed.
      std::vector<serve::ServedBundle> served;
      for (const auto& b : s->bundles) {
        BundleFormat format = format_from_path(b);
        std::shared_ptr<LayoutReader> bundle = LayoutReader::open(b, format, s->limits.options(ReadDepth::verify));
        auto opts = s->trust.build(bundle.get(), s->integrity_only);
        auto report = verify::verify_bundle(*bundle, opts);
        if (!report.verified) {
          err_line("ferry: error: %s: verification failed: %s; not serving", b.c_str(),
                   verification_failure(report).c_str());
          return 3;
        }
        log(b + ": verified (" + (s->integrity_only ? "integrity only, " : "") + counted(report.blobs, "blob") + ", " +
            human_bytes(report.bytes) + ")");
        serve::ServedBundle one{bundle, nullptr};
        if (!bundle->random_access()) {
          if (s->cache_dir.empty())
            throw Error(Errc::invalid_argument, b + ": a compressed bundle is served from its blobs extracted, verified, "
                                                    "into --cache-dir DIR");
          one.cache = serve::extract_to_cache(*bundle, s->cache_dir, s->limits.options(ReadDepth::structure), log);
        }
        served.push_back(std::move(one));
      }
      serve::Registry registry(std::move(served), maps);

      std::mutex log_mutex;
      std::FILE* access = stderr;
      std::unique_ptr<std::FILE, int (*)(std::FILE*)> access_file(nullptr, &std::fclose);
      if (!s->access_log.empty()) {
        access_file.reset(std::fopen(s->access_log.c_str(), "a"));
        if (!access_file) throw Error(Errc::io, s->access_log + ": cannot open the access log: " + std::strerror(errno));
        access = access_file.get();
      }
      // Every line, however long the server runs (not cut at --max-lines); the server has
      // escaped what the client sent (the request line) and what libmicrohttpd says.
      server_options.access_log = [&](const std::string& line) {
        std::lock_guard<std::mutex> lock(log_mutex);
        std::fputs((line + "\n").c_str(), access);
        std::fflush(access);
      };

      // SIGINT and SIGTERM are taken by this thread alone (sigwait), never by a server thread.
      sigset_t stop_signals;
      sigemptyset(&stop_signals);
      sigaddset(&stop_signals, SIGINT);
      sigaddset(&stop_signals, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
      std::signal(SIGPIPE, SIG_IGN);

      serve::Server server(registry, server_options);
      server.start();
      auto stats = registry.stats();
      std::string from;
      for (const auto& b : s->bundles) from += (from.empty() ? "" : ", ") + b;
      std::string shown_host = host.empty() ? "0.0.0.0" : host;
      err_line("ferry: serving %s (%s, %s) at %s://%s:%u/ from %s%s", counted(stats.repositories, "repository", "repositories").c_str(),
               counted(stats.manifests, "manifest").c_str(), counted(stats.blobs, "blob").c_str(),
               s->tls_cert.empty() ? "http" : "https", shown_host.c_str(), static_cast<unsigned>(server.port()), from.c_str(),
               s->cache_dir.empty() ? "" : ("; cache " + s->cache_dir).c_str());
      std::fflush(stderr);
      int signal = 0;
      sigwait(&stop_signals, &signal);
      server.stop();
      log(std::string("stopped (") + (signal == SIGINT ? "SIGINT" : "SIGTERM") + ")");
      return 0;
    };
  });
}

} // namespace ferry::cli

#pragma once
/// `ferry serve` (issue 17): verified bundles as a read-only OCI registry, the pull side of
/// distribution-spec v1.1 with the referrers API. Two halves: the registry (what is served,
/// decided from the bundles' one definition of roots, bundle.hpp, and answering parsed
/// requests: no I/O but reading the bundles) and the HTTP server (libmicrohttpd) that feeds it.
#include <ferry/bundle.hpp>
#include <ferry/graph.hpp>
#include <ferry/ops.hpp>
#include <ferry/store/layout.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ferry::serve {

/// One request, as the server parsed it. Header names are lower case.
struct Request {
  std::string method;
  std::string path;  ///< decoded URL path, without the query
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;
  std::string header(const std::string& name) const
  {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// Where a blob's bytes are sent from: a file descriptor of the bundle (or of the cache),
/// checked to be the file that was verified, with the range to send.
struct BlobBody {
  BlobFile file;
  std::uint64_t offset = 0;  ///< within the file, range applied
  std::uint64_t length = 0;
  /// A blob of a format without a place in one file (a volume set): read through the
  /// bundle's reader instead (each read checked as the reader checks it).
  LayoutReader* reader = nullptr;
  Descriptor desc;
  std::uint64_t skip = 0;  ///< with `reader`: bytes of the blob before the range
};

struct Response {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// A blob GET: the body comes from here (`body` is empty).
  std::optional<BlobBody> blob;
  /// HEAD: headers (Content-Length included) and no body.
  bool head = false;
  std::uint64_t content_length() const { return blob ? blob->length : body.size(); }
};

/// One bundle to serve, verified and opened.
struct ServedBundle {
  std::shared_ptr<LayoutReader> reader;
  /// Blobs extracted into a cache directory (a compressed bundle): their files there, read
  /// through this directory reader instead of `reader`.
  std::shared_ptr<LayoutReader> cache;
};

struct Stats {
  std::size_t repositories = 0;
  std::size_t manifests = 0;
  std::size_t blobs = 0;
};

/// What is served: repositories with their tags and contents, merged by digest from every
/// bundle. Immutable once built, answered from any thread.
class Registry {
public:
  /// Builds the repositories of `bundles` (each classified: its roots land at their source
  /// repositories, renamed by `maps` as push renames them; cosign tag attachments are tags
  /// of their subject's repository). Throws Errc::invalid_argument for a root with no source
  /// repository, a map that matches no root, or a tag two bundles give different digests;
  /// Errc::not_found for a delta bundle (its left-out blobs are not there to serve).
  Registry(std::vector<ServedBundle> bundles, const std::vector<PushMap>& maps);

  /// Answers one request (distribution-spec v1.1, pull side; everything else an error).
  Response handle(const Request& request) const;

  Stats stats() const;
  /// Repository names, sorted.
  std::vector<std::string> repositories() const;

private:
  struct Repo {
    std::map<std::string, Descriptor> tags;
    std::set<Digest> manifests;
    std::set<Digest> blobs;
    /// subject → its referrers (as the referrers API lists them), within this repository.
    std::map<Digest, std::vector<Descriptor>> referrers;
  };
  struct BlobHome {
    const ServedBundle* bundle = nullptr;
    std::uint64_t size = 0;
  };

  Response manifest(const Repo& repo, const std::string& name, const std::string& ref, const Request& request) const;
  Response blob(const Repo& repo, const std::string& digest, const Request& request) const;
  Response tags(const Repo& repo, const std::string& name, const Request& request) const;
  Response catalog(const Request& request) const;
  Response referrers(const Repo& repo, const std::string& name, const std::string& digest, const Request& request) const;

  std::vector<ServedBundle> m_bundles;
  std::map<std::string, Repo> m_repos;
  /// Manifest bytes and media type by digest (checked against their digests on open).
  std::map<Digest, std::pair<std::string, std::string>> m_manifests;
  std::map<Digest, BlobHome> m_blobs;
};

/// An error response in the spec's shape: `{"errors":[{"code":…,"message":…,"detail":…}]}`.
Response error_response(unsigned status, const std::string& code, const std::string& message);

/// Parses a `Range` header value against a body of `size` bytes: `bytes=a-b`, `bytes=a-`,
/// `bytes=-n` (one range). Returns {offset, length}; nullopt when there is no usable range
/// (ignored, 200); throws nothing. `unsatisfiable` is set for a range past the end (416).
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_range(const std::string& value, std::uint64_t size,
                                                                    bool& unsatisfiable);

/// Whether a manifest of `media_type` may be sent to a client whose Accept header is
/// `accept` (empty: anything; `*/*` and `type/*` as HTTP says; parameters ignored).
bool acceptable(const std::string& accept, const std::string& media_type);

/// Extracts every blob of `bundle` (a format without random access) into `cache_dir` as a
/// layout directory (`blobs/<alg>/<hex>` and the bundle's oci-layout and index.json), each
/// checked against its digest as it is written (temp name, fsync, rename); a blob already
/// there is re-hashed and kept only if it matches. Returns the directory, opened.
std::shared_ptr<LayoutReader> extract_to_cache(LayoutReader& bundle, const std::filesystem::path& cache_dir,
                                               const LayoutReader::Options& options,
                                               const std::function<void(const std::string&)>& log);

/// The HTTP side.
struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5000;  ///< 0: any free port
  std::string tls_cert_pem;   ///< with tls_key_pem: HTTPS
  std::string tls_key_pem;
  /// user → bcrypt hash (`htpasswd -B`); empty: no authentication.
  std::map<std::string, std::string> users;
  unsigned max_connections = 1000;
  unsigned timeout_s = 30;
  unsigned threads = 4;
  std::size_t max_header_size = 32 * 1024;
  /// One line per request (client, "METHOD path" escaped for a terminal, status, bytes) and
  /// libmicrohttpd's own messages (escaped too); null: none.
  std::function<void(const std::string&)> access_log;
};

/// Parses an htpasswd file's content (`user:hash` lines; bcrypt `$2y$`/`$2b$`/`$2a$` only, as
/// distribution accepts). Throws Errc::invalid_argument naming the line.
std::map<std::string, std::string> parse_htpasswd(const std::string& content, const std::string& where);
/// Whether `password` matches the bcrypt `hash`.
bool bcrypt_matches(const std::string& password, const std::string& hash);

class Server {
public:
  Server(const Registry& registry, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  /// Starts listening (throws Errc::io naming the address when it cannot).
  void start();
  /// The port listened on (after start()).
  std::uint16_t port() const { return m_port; }
  /// Stops accepting, finishes, returns.
  void stop();

  struct Impl;

private:
  const Registry& m_registry;
  ServerOptions m_options;
  std::uint16_t m_port = 0;
  std::unique_ptr<Impl> m_impl;
};

} // namespace ferry::serve

// ferry serve, the registry half (issue 17): what the bundles hold, as repositories, and the
// pull side of distribution-spec v1.1 answered from it. No request reaches the file system
// but through a digest the bundles hold.
#include <ferry/serve.hpp>

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>
#include <ferry/reference.hpp>
#include <ferry/util/reader.hpp>
#include <ferry/util/text.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace ferry::serve {

namespace {

constexpr const char* k_api_version = "registry/2.0";
constexpr const char* k_index_media_type = "application/vnd.oci.image.index.v1+json";

std::string trim(std::string_view s)
{
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

std::optional<std::uint64_t> parse_u64(std::string_view s)
{
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<Digest> parse_digest(const std::string& text)
{
  try {
    return Digest::parse(text);
  } catch (const Error&) {
    return std::nullopt;
  }
}

Response json_response(unsigned status, const nlohmann::json& doc, const std::string& content_type = "application/json")
{
  Response r;
  r.status = status;
  r.body = doc.dump();
  r.headers.emplace_back("Content-Type", content_type);
  return r;
}

// The page of `items` (sorted) after `last`, `n` long when asked, with the Link to the next.
Response paginate(const std::vector<std::string>& items, const Request& request, const std::string& base,
                  const std::function<nlohmann::json(nlohmann::json)>& wrap)
{
  std::optional<std::uint64_t> n;
  if (auto it = request.query.find("n"); it != request.query.end()) {
    n = parse_u64(it->second);
    if (!n) return error_response(400, "PAGINATION_NUMBER_INVALID", "n must be a non-negative number");
  }
  std::string last;
  if (auto it = request.query.find("last"); it != request.query.end()) last = it->second;
  auto begin = last.empty() ? items.begin() : std::upper_bound(items.begin(), items.end(), last);
  auto end = items.end();
  bool more = false;
  if (n && static_cast<std::uint64_t>(end - begin) > *n) {
    end = begin + static_cast<std::ptrdiff_t>(*n);
    more = *n > 0;
  }
  nlohmann::json list = nlohmann::json::array();
  for (auto it = begin; it != end; ++it) list.push_back(*it);
  Response r = json_response(200, wrap(list));
  if (more)
    r.headers.emplace_back("Link", "<" + base + "?n=" + std::to_string(*n) + "&last=" + *(end - 1) + ">; rel=\"next\"");
  return r;
}

void add_common(Response& r)
{
  r.headers.emplace_back("Docker-Distribution-API-Version", k_api_version);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
}

// "<alg>-<hex>.<suffix>": the tag cosign gives an attachment of `subject`.
std::string cosign_tag_of(const Digest& subject, const std::string& suffix)
{
  return subject.algorithm() + "-" + subject.hex() + "." + suffix;
}

} // namespace

Response error_response(unsigned status, const std::string& code, const std::string& message)
{
  nlohmann::json doc = {{"errors", nlohmann::json::array({{{"code", code}, {"message", message}}})}};
  return json_response(status, doc);
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_range(const std::string& value, std::uint64_t size,
                                                                    bool& unsatisfiable)
{
  unsatisfiable = false;
  std::string v = trim(value);
  if (v.rfind("bytes=", 0) != 0) return std::nullopt;
  std::string spec = trim(std::string_view(v).substr(6));
  if (spec.find(',') != std::string::npos) return std::nullopt;  // several ranges: the whole body (allowed)
  auto dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  std::string a = trim(std::string_view(spec).substr(0, dash)), b = trim(std::string_view(spec).substr(dash + 1));
  if (a.empty()) {  // the last n bytes
    auto n = parse_u64(b);
    if (!n) return std::nullopt;
    if (*n == 0 || size == 0) {
      unsatisfiable = true;
      return std::nullopt;
    }
    std::uint64_t len = std::min(*n, size);
    return std::make_pair(size - len, len);
  }
  auto first = parse_u64(a);
  if (!first) return std::nullopt;
  std::uint64_t last = size == 0 ? 0 : size - 1;
  if (!b.empty()) {
    auto l = parse_u64(b);
    if (!l || *l < *first) return std::nullopt;
    last = std::min(*l, last);
  }
  if (*first >= size) {
    unsatisfiable = true;
    return std::nullopt;
  }
  return std::make_pair(*first, last - *first + 1);
}

bool acceptable(const std::string& accept, const std::string& media_type)
{
  if (trim(accept).empty()) return true;
  std::string type = to_lower(media_type);
  std::string major = type.substr(0, type.find('/'));
  std::string_view rest = accept;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string item = to_lower(trim(rest.substr(0, comma)));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (auto semi = item.find(';'); semi != std::string::npos) item = trim(std::string_view(item).substr(0, semi));
    if (item == "*/*" || item == type || item == major + "/*") return true;
  }
  return false;
}

Registry::Registry(std::vector<ServedBundle> bundles, const std::vector<PushMap>& maps) : m_bundles(std::move(bundles))
{
  // Two maps of one source, as push refuses them.
  std::set<std::pair<std::string, std::string>> sources;
  for (const auto& m : maps)
    if (!sources.emplace(m.source_repository, m.source_tag).second)
      throw Error(Errc::invalid_argument, "--map " + m.source_repository + (m.source_tag.empty() ? "" : ":" + m.source_tag) +
                                              " is given twice");
  std::set<const PushMap*> used;
  std::map<std::pair<std::string, std::string>, std::string> tag_origin;  // (repo, tag) → bundle, for messages

  for (const auto& served : m_bundles) {
    LayoutReader& bundle = *served.reader;
    BundleContents contents = classify_complete(bundle);
    const std::string where = bundle.path().string();
    for (const auto& root : contents.roots) {
      if (!root.source)
        throw Error(Errc::invalid_argument, where + ": root " + root.desc.digest.str() +
                                                (root.tag.empty() ? "" : " (tag " + quote_name(root.tag) + ")") +
                                                " has no source repository to serve it under (a layout another tool "
                                                "wrote); save it with ferry, or push it to a registry");
      std::string repo_name = root.source->repository;
      std::string tag = root.tag;
      const PushMap* by_repo = nullptr;
      const PushMap* by_tag = nullptr;
      for (const auto& m : maps) {
        if (m.source_repository != root.source->repository) continue;
        if (m.source_tag.empty()) by_repo = &m;
        else if (!root.tag.empty() && m.source_tag == root.tag) by_tag = &m;
      }
      if (by_tag) {
        repo_name = by_tag->repository;
        tag = by_tag->tag;
        used.insert(by_tag);
      } else if (by_repo) {
        repo_name = by_repo->repository;
        used.insert(by_repo);
      }
      Repo& repo = m_repos[repo_name];
      if (!tag.empty()) {
        auto [it, fresh] = repo.tags.emplace(tag, root.desc);
        auto origin = tag_origin.emplace(std::make_pair(repo_name, tag), where).first->second;
        if (!fresh && it->second.digest != root.desc.digest)
          throw Error(Errc::invalid_argument, repo_name + ":" + tag + " is " + it->second.digest.str() + " in " + origin +
                                                  " and " + root.desc.digest.str() + " in " + where +
                                                  "; serve them apart, or rename one with --map");
      }
      Graph graph;
      graph.add(bundle, root.desc, GraphOptions{});
      for (const auto& [digest, desc] : graph.nodes) {
        if (auto bytes = graph.manifests.get(digest)) {
          repo.manifests.insert(digest);
          m_manifests.try_emplace(digest, std::move(*bytes), desc.media_type);
        } else {
          repo.blobs.insert(digest);
          const ServedBundle* home = &served;
          m_blobs.try_emplace(digest, BlobHome{home, desc.size});
        }
      }
      for (const auto& [subject, list] : graph.referrers) {
        auto& mine = repo.referrers[subject];
        for (const auto& d : list)
          if (std::none_of(mine.begin(), mine.end(), [&](const Descriptor& x) { return x.digest == d.digest; }))
            mine.push_back(d);
      }
      for (const auto& [subject, list] : graph.attachments)
        for (const auto& a : list) repo.tags.emplace(cosign_tag_of(subject, a.suffix), a.desc);
    }
  }
  for (const auto& m : maps)
    if (!used.count(&m))
      throw Error(Errc::not_found, "--map " + m.str() + ": no bundle has a root of " + m.source_repository +
                                       (m.source_tag.empty() ? "" : ":" + m.source_tag));
}

Stats Registry::stats() const { return {m_repos.size(), m_manifests.size(), m_blobs.size()}; }

std::vector<std::string> Registry::repositories() const
{
  std::vector<std::string> out;
  for (const auto& [name, repo] : m_repos) out.push_back(name);
  return out;
}

Response Registry::handle(const Request& request) const
{
  Response r = [&]() -> Response {
    const std::string& path = request.path;
    bool read = request.method == "GET" || request.method == "HEAD";
    if (path.rfind("/v2/", 0) != 0 && path != "/v2")
      return error_response(404, "NOT_FOUND", "not a registry API path (they start with /v2/)");
    if (!read)
      return error_response(405, "UNSUPPORTED", "this registry is read-only: it serves a verified bundle");
    if (path == "/v2/" || path == "/v2") return json_response(200, nlohmann::json::object());
    if (path == "/v2/_catalog") {
      auto names = repositories();
      return paginate(names, request, "/v2/_catalog",
                      [](nlohmann::json list) { return nlohmann::json{{"repositories", std::move(list)}}; });
    }
    // /v2/<name>/<kind>/<ref>: the name is everything before the last two segments.
    std::string rest = path.substr(4);
    auto last_slash = rest.rfind('/');
    if (last_slash == std::string::npos || last_slash == 0) return error_response(404, "NOT_FOUND", "unknown API path");
    std::string ref = rest.substr(last_slash + 1);
    std::string head = rest.substr(0, last_slash);
    auto kind_slash = head.rfind('/');
    if (kind_slash == std::string::npos || kind_slash == 0) return error_response(404, "NOT_FOUND", "unknown API path");
    std::string kind = head.substr(kind_slash + 1);
    std::string name = head.substr(0, kind_slash);
    if (kind != "manifests" && kind != "blobs" && kind != "referrers" && !(kind == "tags" && ref == "list"))
      return error_response(404, "NOT_FOUND", "unknown API path");
    if (!Reference::is_valid_repository(name))
      return error_response(400, "NAME_INVALID", "invalid repository name");
    auto repo = m_repos.find(name);
    if (repo == m_repos.end()) return error_response(404, "NAME_UNKNOWN", "repository name not known to registry");
    if (kind == "manifests") return manifest(repo->second, name, ref, request);
    if (kind == "blobs") return blob(repo->second, ref, request);
    if (kind == "referrers") return referrers(repo->second, name, ref, request);
    return tags(repo->second, name, request);
  }();
  r.head = request.method == "HEAD";
  add_common(r);
  return r;
}

Response Registry::manifest(const Repo& repo, const std::string& name, const std::string& ref, const Request& request) const
{
  std::optional<Digest> digest;
  if (ref.find(':') != std::string::npos) {
    digest = parse_digest(ref);
    if (!digest) return error_response(400, "DIGEST_INVALID", "invalid digest");
    if (!repo.manifests.count(*digest)) return error_response(404, "MANIFEST_UNKNOWN", "manifest unknown to registry");
  } else {
    if (!Reference::is_valid_tag(ref)) return error_response(400, "TAG_INVALID", "invalid tag");
    auto it = repo.tags.find(ref);
    if (it == repo.tags.end()) return error_response(404, "MANIFEST_UNKNOWN", "manifest tagged " + ref + " is unknown in " + name);
    digest = it->second.digest;
  }
  const auto& [bytes, media_type] = m_manifests.at(*digest);
  if (!acceptable(request.header("accept"), media_type))
    return error_response(404, "MANIFEST_UNKNOWN", "the manifest is " + media_type + ", which the Accept header does not list");
  std::string etag = "\"" + digest->str() + "\"";
  Response r;
  if (request.header("if-none-match") == etag) {
    r.status = 304;
  } else {
    r.body = bytes;
  }
  r.headers.emplace_back("Content-Type", media_type);
  r.headers.emplace_back("Docker-Content-Digest", digest->str());
  r.headers.emplace_back("ETag", etag);
  return r;
}

Response Registry::blob(const Repo& repo, const std::string& ref, const Request& request) const
{
  auto digest = parse_digest(ref);
  if (!digest) return error_response(400, "DIGEST_INVALID", "invalid digest");
  Response r;
  std::string etag = "\"" + digest->str() + "\"";
  r.headers.emplace_back("Docker-Content-Digest", digest->str());
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("Accept-Ranges", "bytes");
  r.headers.emplace_back("Cache-Control", "max-age=31536000");
  // A manifest may be read as a blob too (distribution serves it so).
  const std::string* bytes = nullptr;
  std::uint64_t size = 0;
  const BlobHome* home = nullptr;
  if (repo.manifests.count(*digest)) {
    bytes = &m_manifests.at(*digest).first;
    size = bytes->size();
  } else if (repo.blobs.count(*digest)) {
    home = &m_blobs.at(*digest);
    size = home->size;
  } else {
    return error_response(404, "BLOB_UNKNOWN", "blob unknown to registry");
  }
  r.headers.emplace_back("Content-Type", "application/octet-stream");
  if (request.header("if-none-match") == etag) {
    r.status = 304;
    return r;
  }
  std::uint64_t offset = 0, length = size;
  if (std::string range = request.header("range"); !range.empty()) {
    bool unsatisfiable = false;
    if (auto want = parse_range(range, size, unsatisfiable)) {
      offset = want->first;
      length = want->second;
      r.status = 206;
      r.headers.emplace_back("Content-Range", "bytes " + std::to_string(offset) + "-" + std::to_string(offset + length - 1) +
                                                  "/" + std::to_string(size));
    } else if (unsatisfiable) {
      Response e = error_response(416, "RANGE_INVALID", "the range is past the end of the blob");
      e.headers.emplace_back("Content-Range", "bytes */" + std::to_string(size));
      return e;
    }
  }
  if (bytes) {
    r.body = bytes->substr(static_cast<std::size_t>(offset), static_cast<std::size_t>(length));
    return r;
  }
  const ServedBundle& served = *home->bundle;
  LayoutReader& source = served.cache ? *served.cache : *served.reader;
  BlobBody body;
  body.length = length;
  Descriptor desc;
  desc.digest = *digest;
  desc.size = size;
  desc.media_type = "application/octet-stream";
  if (request.method == "HEAD") {
    // Nothing is read: the length is what was verified.
    body.desc = desc;
    r.blob = std::move(body);
    return r;
  }
  try {
    if (auto file = source.blob_file(*digest)) {
      if (file->size != size)
        throw Error(Errc::digest_mismatch, source.path().string() + ": blob " + digest->str() + " changed size since it was verified");
      body.offset = file->offset + offset;
      body.file = std::move(*file);
    } else {
      body.reader = &source;
      body.desc = desc;
      body.skip = offset;
    }
  } catch (const Error& e) {
    Response err = error_response(500, "UNKNOWN", "the blob cannot be sent as it was verified");
    err.headers.emplace_back("X-Ferry-Error", escape_for_terminal(e.what()));
    return err;
  }
  r.blob = std::move(body);
  return r;
}

Response Registry::tags(const Repo& repo, const std::string& name, const Request& request) const
{
  std::vector<std::string> names;
  for (const auto& [tag, desc] : repo.tags) names.push_back(tag);
  return paginate(names, request, "/v2/" + name + "/tags/list",
                  [&](nlohmann::json list) { return nlohmann::json{{"name", name}, {"tags", std::move(list)}}; });
}

Response Registry::referrers(const Repo& repo, const std::string&, const std::string& ref, const Request& request) const
{
  auto digest = parse_digest(ref);
  if (!digest) return error_response(400, "DIGEST_INVALID", "invalid digest");
  std::string filter;
  if (auto it = request.query.find("artifactType"); it != request.query.end()) filter = it->second;
  nlohmann::json manifests = nlohmann::json::array();
  if (auto it = repo.referrers.find(*digest); it != repo.referrers.end())
    for (const auto& d : it->second)
      if (filter.empty() || d.artifact_type == filter) manifests.push_back(d.to_json());
  nlohmann::json index = {{"schemaVersion", 2}, {"mediaType", k_index_media_type}, {"manifests", manifests}};
  Response r = json_response(200, index, k_index_media_type);
  if (!filter.empty()) r.headers.emplace_back("OCI-Filters-Applied", "artifactType");
  return r;
}

std::shared_ptr<LayoutReader> extract_to_cache(LayoutReader& bundle, const fs::path& cache_dir,
                                               const LayoutReader::Options& options,
                                               const std::function<void(const std::string&)>& log)
{
  if (!bundle.index_digest()) throw Error(Errc::invalid_manifest, bundle.path().string() + ": no index.json");
  // One layout per bundle (by its index.json's digest), so bundles can share a cache.
  fs::path dir = cache_dir / (bundle.index_digest()->algorithm() + "-" + bundle.index_digest()->hex());
  fs::path layout = dir / "layout";
  fs::path tmp = dir / "tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw Error(Errc::io, tmp.string() + ": " + ec.message());
  std::vector<Descriptor> wanted;
  for (const auto& [key, entry] : bundle.blobs()) {
    Descriptor d;
    d.digest = key.digest();
    d.size = entry.size;
    d.media_type = "application/octet-stream";
    wanted.push_back(std::move(d));
  }
  std::uint64_t bytes = 0;
  bundle.for_each_blob(wanted, [&](const Descriptor& d, Reader& r) {
    fs::path final_dir = layout / "blobs" / d.digest.algorithm();
    fs::create_directories(final_dir);
    fs::path final_path = final_dir / d.digest.hex();
    // The temporary file is outside the layout, so a cut extraction leaves no stray entry.
    fs::path part = tmp / (d.digest.hex() + ".part");
    OutputFile out(part);
    char buf[1 << 16];
    while (std::size_t n = r.read(buf, sizeof buf)) out.write(buf, n);  // r checks the digest at its end
    out.commit(final_path);
    bytes += d.size;
  });
  write_file_atomic(layout / "oci-layout", std::string(k_oci_layout_file));
  write_file_atomic(layout / "index.json", bundle.index_json());
  fs::remove_all(tmp, ec);
  if (log) log("extracted " + counted(wanted.size(), "blob") + " (" + human_bytes(bytes) + ") of " + bundle.path().string() +
               " into " + layout.string());
  LayoutReader::Options structure = options;
  structure.depth = ReadDepth::structure;
  return std::shared_ptr<LayoutReader>(LayoutReader::open(layout, BundleFormat::dir, structure));
}

} // namespace ferry::serve

#include <ferry/remote/repository.hpp>

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>
#include <ferry/remote/curl_http_client.hpp>
#include <ferry/remote/retry.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <cstring>
#include <set>

using nlohmann::json;

namespace ferry::remote {

namespace {

std::string strip_params(const std::string& content_type)
{
  auto semi = content_type.find(';');
  std::string s = content_type.substr(0, semi);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

// "MANIFEST_UNKNOWN: manifest unknown" from an OCI error body, or a snippet of text.
std::string error_detail(HttpResponse& response)
{
  std::string body;
  try {
    body = response.read_body(64 << 10);
  } catch (const Error&) {
  }
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    std::string out;
    for (const auto& e : j["errors"]) {
      if (!e.is_object()) continue;
      if (!out.empty()) out += "; ";
      out += e.value("code", std::string("?"));
      if (e.contains("message") && e["message"].is_string()) out += ": " + e["message"].get<std::string>();
    }
    if (!out.empty()) return out;
  }
  std::string snippet;
  for (char c : body.substr(0, 120))
    if (c >= 0x20 && c < 0x7f) snippet += c;
  return snippet;
}


// Reads bytes owned by someone else (a chunk buffer that outlives the request).
class ViewReader : public Reader {
public:
  explicit ViewReader(std::string_view bytes) : m_bytes(bytes) {}
  std::size_t read(char* buf, std::size_t n) override
  {
    n = std::min(n, m_bytes.size());
    std::memcpy(buf, m_bytes.data(), n);
    m_bytes.remove_prefix(n);
    return n;
  }

private:
  std::string_view m_bytes;
};

// A body that, cut off by a transport error (Errc::network) before `size` bytes, is
// continued by `reopen(offset)` — a Range request — a bounded number of times.
class ResumingReader : public Reader {
public:
  static constexpr int k_max_resumes = 5;
  ResumingReader(std::unique_ptr<Reader> body, std::uint64_t start, std::uint64_t size,
                 std::function<std::unique_ptr<Reader>(std::uint64_t)> reopen, std::string what)
    : m_body(std::move(body)), m_size(size), m_pos(start), m_reopen(std::move(reopen)), m_what(std::move(what))
  {
  }
  std::size_t read(char* buf, std::size_t n) override
  {
    for (;;) {
      try {
        std::size_t k = m_body->read(buf, n);
        m_pos += k;
        return k;
      } catch (const Error& e) {
        if (e.code() != Errc::network || m_pos >= m_size) throw;
        if (m_resumes >= k_max_resumes)
          throw Error(Errc::network, m_what + ": cut off " + std::to_string(m_resumes + 1) + " times, the last at byte " +
                                         std::to_string(m_pos) + " of " + std::to_string(m_size) + ": " + e.what());
        ++m_resumes;
        m_body = m_reopen(m_pos);
      }
    }
  }

private:
  std::unique_ptr<Reader> m_body;
  std::uint64_t m_size;
  std::uint64_t m_pos;
  int m_resumes = 0;
  std::function<std::unique_ptr<Reader>(std::uint64_t)> m_reopen;
  std::string m_what;
};

} // namespace

Repository::Repository(HttpClient& client, std::string base_url, std::string name)
  : m_client(client), m_base_url(std::move(base_url)), m_name(std::move(name))
{
}

std::string Repository::display() const
{
  auto p = m_base_url.find("://");
  return (p == std::string::npos ? m_base_url : m_base_url.substr(p + 3)) + "/" + m_name;
}

std::string Repository::url(const std::string& path) const { return m_base_url + "/v2/" + m_name + path; }

std::string Repository::resolve_location(const std::string& location) const
{
  if (location.rfind("http://", 0) == 0 || location.rfind("https://", 0) == 0) return location;
  if (!location.empty() && location[0] == '/') return m_base_url + location;
  return m_base_url + "/" + location;
}

HttpResponse Repository::send(HttpRequest request) { return m_client.send(request); }

void Repository::fail(const std::string& what, HttpResponse& response)
{
  std::string detail = error_detail(response);
  std::string msg = what + ": HTTP " + std::to_string(response.status) + (detail.empty() ? "" : " " + detail);
  switch (response.status) {
  case 401: throw Error(Errc::unauthorized, msg);
  case 403: throw Error(Errc::denied, msg);
  case 404: throw Error(Errc::not_found, msg);
  default: throw Error(Errc::network, msg);
  }
}

Descriptor Repository::resolve(const std::string& ref)
{
  auto d = resolve_optional(ref);
  if (!d) {
    std::string sep = Digest::is_valid(ref) ? "@" : ":";
    throw Error(Errc::not_found, display() + sep + ref + ": manifest not found");
  }
  return *d;
}

std::optional<Descriptor> Repository::resolve_optional(const std::string& ref)
{
  std::string sep = Digest::is_valid(ref) ? "@" : ":";
  std::string what = display() + sep + ref;
  HttpRequest req;
  req.url = url("/manifests/" + ref);
  req.headers.add("Accept", std::string(media_type::k_manifest_accept));
  auto resp = send(req);
  if (resp.status == 404) return std::nullopt;
  if (resp.status != 200) fail("GET " + what, resp);
  std::string bytes = resp.read_body(k_max_manifest_size);
  Descriptor d;
  d.digest = Digest::of(bytes);
  d.size = bytes.size();
  if (Digest::is_valid(ref) && Digest::parse(ref) != d.digest)
    throw Error(Errc::digest_mismatch, what + ": registry returned a manifest with digest " + d.digest.str());
  if (auto header = resp.headers.get("Docker-Content-Digest"); header && Digest::is_valid(*header) &&
                                                                Digest::parse(*header).algorithm() == "sha256" &&
                                                                Digest::parse(*header) != d.digest)
    throw Error(Errc::digest_mismatch,
                what + ": Docker-Content-Digest " + *header + " does not match the content (" + d.digest.str() + ")");
  const std::string content_type = strip_params(resp.headers.get("Content-Type").value_or(""));
  // The registry's Content-Type names the type; a manifest that declares another type in
  // its own bytes is rejected by Manifest::parse (design §8: a 200 of a different type).
  // Another Content-Type (text/html, schema 1) leaves it to the bytes.
  d.media_type = media_type::is_manifest(content_type) ? content_type : std::string();
  Manifest m;
  try {
    m = Manifest::parse(bytes, d.media_type, what);
  } catch (const Error& e) {
    if (!d.media_type.empty() || content_type.empty()) throw;
    throw Error(e.code(), std::string(e.what()) + " (served as " + content_type + ")");
  }
  d.media_type = m.media_type;
  d.artifact_type = m.artifact_type;
  std::lock_guard lock(m_mutex);
  m_manifest_cache[d.digest] = std::move(bytes);
  return d;
}

std::string Repository::fetch_manifest_bytes(const Descriptor& desc)
{
  {
    std::lock_guard lock(m_mutex);
    if (auto it = m_manifest_cache.find(desc.digest); it != m_manifest_cache.end()) {
      if (it->second.size() != desc.size)
        throw Error(Errc::digest_mismatch, display() + "@" + desc.digest.str() + ": size " +
                                               std::to_string(it->second.size()) + ", descriptor says " +
                                               std::to_string(desc.size));
      return it->second;
    }
  }
  auto r = fetch(desc);
  return read_all(*r, k_max_manifest_size, display() + "@" + desc.digest.str());
}

std::unique_ptr<Reader> Repository::fetch(const Descriptor& desc)
{
  std::string what = display() + "@" + desc.digest.str();
  bool manifest = media_type::is_manifest(desc.media_type);
  if (manifest) {
    std::lock_guard lock(m_mutex);
    if (auto it = m_manifest_cache.find(desc.digest); it != m_manifest_cache.end())
      return std::make_unique<VerifyingReader>(std::make_unique<StringReader>(it->second), desc.digest, desc.size, what);
  }
  if (manifest && desc.size > k_max_manifest_size)
    throw Error(Errc::size_exceeds_limit, what + ": manifest size " + std::to_string(desc.size) + " exceeds 4 MiB");
  if (manifest) {
    HttpRequest req;
    req.url = url("/manifests/" + desc.digest.str());
    req.headers.add("Accept", std::string(media_type::k_manifest_accept));
    auto resp = send(req);
    if (resp.status != 200) fail("GET " + what, resp);
    return std::make_unique<VerifyingReader>(std::move(resp.body), desc.digest, desc.size, what);
  }
  return std::make_unique<VerifyingReader>(blob_body(desc, 0), desc.digest, desc.size, what);
}

std::unique_ptr<Reader> Repository::fetch_from(const Descriptor& desc, std::uint64_t offset)
{
  if (media_type::is_manifest(desc.media_type) || offset == 0) return Source::fetch_from(desc, offset);
  if (offset >= desc.size)
    throw Error(Errc::invalid_argument, display() + "@" + desc.digest.str() + ": offset " + std::to_string(offset) +
                                            " is past the blob's " + std::to_string(desc.size) + " bytes");
  return blob_body(desc, offset);
}

std::unique_ptr<Reader> Repository::blob_body(const Descriptor& desc, std::uint64_t offset)
{
  // From `from` on: a Range request, or (a registry without range support) the whole body
  // with the first bytes dropped. A body cut off mid-stream continues the same way (issue 5).
  std::string what = display() + "@" + desc.digest.str();
  auto open_at = [this, url = url("/blobs/" + desc.digest.str()), what](std::uint64_t from) -> std::unique_ptr<Reader> {
    HttpRequest req;
    req.url = url;
    if (from > 0) req.headers.add("Range", "bytes=" + std::to_string(from) + "-");
    auto r = send(req);
    if (from > 0 && r.status == 206) {
      auto range = r.headers.get("Content-Range");
      if (!range || range->rfind("bytes " + std::to_string(from) + "-", 0) != 0)
        throw Error(Errc::network, "GET " + what + " from byte " + std::to_string(from) + ": Content-Range " +
                                       (range ? *range : std::string("missing")));
      return std::move(r.body);
    }
    if (r.status != 200) fail("GET " + what + (from ? " from byte " + std::to_string(from) : std::string()), r);
    std::vector<char> skip(64 << 10);
    for (std::uint64_t left = from; left > 0;) {
      std::size_t k = r.body->read(skip.data(), static_cast<std::size_t>(std::min<std::uint64_t>(left, skip.size())));
      if (k == 0) throw Error(Errc::network, "GET " + what + ": body ended before byte " + std::to_string(from));
      left -= k;
    }
    return std::move(r.body);
  };
  return std::make_unique<ResumingReader>(open_at(offset), offset, desc.size, open_at, what);
}

bool Repository::exists(const Descriptor& desc)
{
  bool manifest = media_type::is_manifest(desc.media_type);
  std::string what = display() + "@" + desc.digest.str();
  HttpRequest req;
  req.method = "HEAD";
  req.no_body = true;
  req.url = url((manifest ? "/manifests/" : "/blobs/") + desc.digest.str());
  if (manifest) req.headers.add("Accept", std::string(media_type::k_manifest_accept));
  auto resp = send(req);
  if (resp.status == 200) return true;
  if (resp.status == 404) return false;
  fail("HEAD " + what, resp);
}

void Repository::push(const Descriptor& desc, Reader& content)
{
  std::string what = display() + "@" + desc.digest.str();
  if (media_type::is_manifest(desc.media_type)) {
    VerifyingReader verified(std::make_unique<ReaderRef>(content), desc.digest, desc.size, what);
    put_manifest(desc, read_all(verified, k_max_manifest_size, what), desc.digest.str());
    return;
  }
  HttpRequest start;
  start.method = "POST";
  start.url = url("/blobs/uploads/");
  start.body_size = 0;
  auto resp = send(start);
  if (resp.status != 202) fail("POST " + display() + " blob upload for " + desc.digest.str(), resp);
  auto location = resp.headers.get("Location");
  if (!location) throw Error(Errc::network, "POST " + display() + " blob upload: no Location header");
  std::string put_url = resolve_location(*location);
  put_url += (put_url.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + desc.digest.str();

  HttpRequest put;
  put.method = "PUT";
  put.url = put_url;
  if (desc.size <= k_replayable_upload_limit) {
    // Monolithic: POST, then one PUT with the whole blob, held in memory so it can be sent
    // again after a 401 or a transient failure.
    put.headers.add("Content-Type", "application/octet-stream");
    put.body_size = desc.size;
    VerifyingReader verified(std::make_unique<ReaderRef>(content), desc.digest, desc.size, what);
    put.body = body_from_string(read_all(verified, k_replayable_upload_limit, what));
  } else {
    // Chunked: PATCH after PATCH of k_upload_chunk bytes, each held in memory so a failed
    // chunk is sent again from where the registry's upload stands; then an empty PUT.
    VerifyingReader verified(std::make_unique<ReaderRef>(content), desc.digest, desc.size, what);
    std::string session = resolve_location(*location);
    std::string chunk(k_upload_chunk, '\0');
    std::uint64_t offset = 0;
    for (;;) {
      std::size_t n = 0;
      while (n < chunk.size()) {
        std::size_t k = verified.read(chunk.data() + n, chunk.size() - n);
        if (k == 0) break;
        n += k;
      }
      if (n == 0) break;  // the end: the verifying reader has checked digest and size
      session = patch_chunk(session, std::string_view(chunk.data(), n), offset, what);
      offset += n;
    }
    put.url = session + (session.find('?') == std::string::npos ? "?" : "&") + "digest=" + desc.digest.str();
    put.body = body_from_string({});
    put.body_size = 0;
  }
  auto done = send(put);
  if (done.status != 201) fail("PUT " + what, done);
  auto header = done.headers.get("Docker-Content-Digest");
  if (header && *header != desc.digest.str())
    throw Error(Errc::digest_mismatch, "PUT " + what + ": registry stored digest " + *header);
  discard_body(done);
  // Without the header the 201 confirms no digest: the blob must be there now.
  if (!header && !exists(desc))
    throw Error(Errc::not_found, "PUT " + what + ": the registry answered 201 without Docker-Content-Digest, and " +
                                     "does not have the blob");
}

std::string Repository::patch_chunk(const std::string& session, std::string_view bytes, std::uint64_t offset,
                                    const std::string& what)
{
  std::string range = std::to_string(offset) + "-" + std::to_string(offset + bytes.size() - 1);
  std::string url = session;
  for (int attempt = 0;; ++attempt) {
    HttpRequest patch;
    patch.method = "PATCH";
    patch.url = url;
    patch.headers.add("Content-Type", "application/octet-stream");
    patch.headers.add("Content-Range", range);
    patch.body = [bytes]() -> std::unique_ptr<Reader> { return std::make_unique<ViewReader>(bytes); };
    patch.body_size = bytes.size();
    std::optional<HttpResponse> resp;
    try {
      resp = send(patch);
    } catch (const Error& e) {
      if (e.code() != Errc::network || attempt >= 3) throw;
    }
    if (resp && resp->status == 202) {
      auto next = resp->headers.get("Location");
      return next ? resolve_location(*next) : url;
    }
    if (resp && !(resp->status == 416 || is_retryable_status(resp->status))) fail("PATCH " + what + " bytes " + range, *resp);
    if (attempt >= 3) {
      if (resp) fail("PATCH " + what + " bytes " + range, *resp);
      throw Error(Errc::network, "PATCH " + what + " bytes " + range + ": failed");
    }
    // Where does the upload stand? GET on the session answers 204 with Range: 0-<last>.
    HttpRequest status;
    status.url = url;
    auto st = send(status);
    if (st.status != 204) fail("GET upload status of " + what, st);
    std::uint64_t have = 0;
    if (auto r = st.headers.get("Range"); r && r->find('-') != std::string::npos)
      have = std::stoull(r->substr(r->find('-') + 1)) + 1;
    if (auto next = st.headers.get("Location")) url = resolve_location(*next);
    if (have == offset + bytes.size()) return url;  // the chunk landed after all
    if (have != offset)
      throw Error(Errc::network, "PATCH " + what + ": the registry's upload stands at byte " + std::to_string(have) +
                                     ", expected " + std::to_string(offset));
  }
}

bool Repository::mount(const Descriptor& desc, const std::string& from)
{
  HttpRequest req;
  req.method = "POST";
  req.url = url("/blobs/uploads/?mount=" + desc.digest.str() + "&from=" + from);
  req.body_size = 0;
  auto resp = send(req);
  if (resp.status == 201) return true;
  if (resp.status == 202) {
    if (auto location = resp.headers.get("Location")) {
      HttpRequest cancel;
      cancel.method = "DELETE";
      cancel.url = resolve_location(*location);
      cancel.no_body = true;
      send(cancel);  // best effort: an abandoned session expires anyway
    }
    return false;
  }
  if (resp.status == 401 || resp.status == 403 || resp.status == 404) return false;  // no pull access to `from`
  fail("POST " + display() + " mount of " + desc.digest.str() + " from " + from, resp);
}

void Repository::put_manifest(const Descriptor& desc, const std::string& bytes, const std::string& ref)
{
  std::string what = display() + (Digest::is_valid(ref) ? "@" : ":") + ref;
  HttpRequest put;
  put.method = "PUT";
  put.url = url("/manifests/" + ref);
  put.headers.add("Content-Type", desc.media_type);
  put.body = body_from_string(bytes);
  put.body_size = bytes.size();
  auto resp = send(put);
  if (resp.status != 201 && resp.status != 200) fail("PUT " + what, resp);
  if (auto header = resp.headers.get("Docker-Content-Digest"); header && *header != desc.digest.str())
    throw Error(Errc::digest_mismatch, "PUT " + what + ": registry stored digest " + *header + ", expected " +
                                           desc.digest.str());
  if (resp.headers.get("OCI-Subject")) {
    std::lock_guard lock(m_mutex);
    m_referrers_api = true;
  }
  std::lock_guard lock(m_mutex);
  m_manifest_cache[desc.digest] = bytes;
  // A tag written here is in the tag list from now on (what list_tags read stays true).
  if (m_tags && !Digest::is_valid(ref)) {
    auto at = std::lower_bound(m_tags->begin(), m_tags->end(), ref);
    if (at == m_tags->end() || *at != ref) m_tags->insert(at, ref);
  }
}

void Repository::tag(const Descriptor& desc, const std::string& tag)
{
  put_manifest(desc, fetch_manifest_bytes(desc), tag);
}

std::optional<std::vector<Descriptor>> Repository::referrers_via_api(const Descriptor& subject,
                                                                     const std::string& artifact_type)
{
  std::string what = "GET " + display() + " referrers of " + subject.digest.str();
  std::string next = url("/referrers/" + subject.digest.str());
  if (!artifact_type.empty()) next += "?artifactType=" + artifact_type;
  std::vector<Descriptor> out;
  const std::string origin = url_origin(m_base_url);
  std::set<std::string> visited{next};
  for (int page = 0; page < k_max_referrer_pages; ++page) {
    HttpRequest req;
    req.url = next;
    req.headers.add("Accept", std::string(media_type::k_oci_index));
    auto resp = send(req);
    if (page == 0 && (resp.status == 404 || resp.status == 400 || resp.status == 405 || resp.status == 501)) {
      // A registry with the API never answers 404 (distribution-spec v1.1): fall back.
      std::lock_guard lock(m_mutex);
      m_referrers_api = false;
      return std::nullopt;
    }
    if (resp.status != 200) fail(what, resp);
    std::string bytes = resp.read_body(k_max_manifest_size);
    Manifest index = Manifest::parse(bytes, std::string(media_type::k_oci_index), what);
    for (auto& d : index.manifests)
      if (artifact_type.empty() || d.artifact_type == artifact_type) out.push_back(std::move(d));
    {
      std::lock_guard lock(m_mutex);
      m_referrers_api = true;
    }
    auto link = resp.headers.get("Link");
    auto target = link ? next_link(*link) : std::nullopt;
    if (!target) return out;
    // The next page must come from this registry: a Link to another host would take the
    // registry's credentials there if that host asked for them (design §8), and a Link back
    // to a page already read is a loop.
    next = resolve_url(next, *target);
    if (url_origin(next) != origin)
      throw Error(Errc::network, what + ": the next page's Link leads to another host (" + redact_url(next) + ")");
    if (!visited.insert(next).second)
      throw Error(Errc::network, what + ": the next page's Link leads back to a page already read (" +
                                     redact_url(next) + ")");
  }
  throw Error(Errc::network, what + ": more than " + std::to_string(k_max_referrer_pages) + " pages");
}

std::vector<Descriptor> Repository::referrers_via_tag(const Descriptor& subject, const std::string& artifact_type)
{
  {
    // The tag list already read (for cosign's tags) answers without a request.
    std::lock_guard lock(m_mutex);
    if (m_tags_listed && m_tags && !std::binary_search(m_tags->begin(), m_tags->end(), subject.digest.fallback_tag()))
      return {};
  }
  auto index = resolve_optional(subject.digest.fallback_tag());
  if (!index || !media_type::is_index(index->media_type) || index->digest == subject.digest) return {};
  std::string bytes = fetch_manifest_bytes(*index);
  Manifest m = Manifest::parse(bytes, index->media_type, display() + ":" + subject.digest.fallback_tag());
  std::vector<Descriptor> out;
  for (auto& d : m.manifests)
    if (d.digest != subject.digest && (artifact_type.empty() || d.artifact_type == artifact_type)) out.push_back(std::move(d));
  return out;
}

std::optional<std::vector<std::string>> Repository::read_pages(std::string first, const std::string& what, const char* key,
                                                               std::size_t limit, bool* name_unknown)
{
  std::string next = std::move(first);
  const std::string origin = url_origin(m_base_url);
  std::set<std::string> visited{next};
  std::vector<std::string> names;
  for (int page = 0;; ++page) {
    if (page == k_max_referrer_pages) throw Error(Errc::network, what + ": more than " + std::to_string(k_max_referrer_pages) + " pages");
    HttpRequest req;
    req.url = next;
    req.headers.add("Accept", "application/json");
    auto resp = send(req);
    if (page == 0 && (resp.status == 401 || resp.status == 403 || resp.status == 404 || resp.status == 405)) {
      if (name_unknown && resp.status == 404) *name_unknown = error_detail(resp).rfind("NAME_UNKNOWN", 0) == 0;
      return std::nullopt;
    }
    if (resp.status != 200) fail(what, resp);
    std::string body = resp.read_body(16 << 20);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(body);
    } catch (const nlohmann::json::exception&) {
      throw Error(Errc::invalid_manifest, what + ": the response is not JSON");
    }
    if (!j.is_object() || (j.contains(key) && !j[key].is_null() && !j[key].is_array()))
      throw Error(Errc::invalid_manifest, what + ": the response has no " + key + " array");
    if (j.contains(key) && j[key].is_array())
      for (const auto& t : j[key])
        if (t.is_string()) names.push_back(t.get<std::string>());
    if (names.size() > limit) return std::nullopt;
    auto link = resp.headers.get("Link");
    auto target = link ? next_link(*link) : std::nullopt;
    if (!target) {
      std::sort(names.begin(), names.end());
      names.erase(std::unique(names.begin(), names.end()), names.end());
      return names;
    }
    next = resolve_url(next, *target);
    if (url_origin(next) != origin)
      throw Error(Errc::network, what + ": the next page's Link leads to another host (" + redact_url(next) + ")");
    if (!visited.insert(next).second)
      throw Error(Errc::network, what + ": the next page's Link leads back to a page already read (" + redact_url(next) + ")");
  }
}

std::optional<std::vector<std::string>> Repository::list_tags()
{
  {
    std::lock_guard lock(m_mutex);
    if (m_tags_listed) return m_tags;
  }
  bool unknown = false;
  auto result = read_pages(url("/tags/list?n=1000"), "GET " + display() + " tags list", "tags", k_max_listed_tags, &unknown);
  std::lock_guard lock(m_mutex);
  m_tags_listed = true;
  m_name_unknown = unknown;
  m_tags = std::move(result);
  return m_tags;
}

bool Repository::name_unknown()
{
  list_tags();
  std::lock_guard lock(m_mutex);
  return m_name_unknown;
}

std::optional<std::vector<std::string>> Repository::list_catalog(std::size_t limit)
{
  return read_pages(m_base_url + "/v2/_catalog?n=1000", "GET " + m_base_url + "/v2/_catalog", "repositories", limit);
}

std::vector<Attachment> Repository::attachments(const Descriptor& subject)
{
  auto tags = list_tags();
  std::vector<Attachment> out;
  for (auto suffix : k_cosign_suffixes) {
    std::string tag = subject.digest.cosign_tag(suffix);
    if (tags && !std::binary_search(tags->begin(), tags->end(), tag)) continue;
    auto d = resolve_optional(tag);
    if (!d) continue;
    if (!media_type::is_image_manifest(d->media_type) || d->digest == subject.digest)
      throw Error(Errc::invalid_manifest, display() + ":" + tag + " is a " + d->media_type +
                                              ", not the image manifest cosign writes for an attachment");
    out.push_back({std::string(suffix), *d});
  }
  return out;
}

std::vector<Descriptor> Repository::referrers(const Descriptor& subject, const std::string& artifact_type)
{
  std::optional<bool> api;
  {
    std::lock_guard lock(m_mutex);
    api = m_referrers_api;
  }
  if (api.value_or(true)) {
    if (auto list = referrers_via_api(subject, artifact_type)) return *list;
  }
  return referrers_via_tag(subject, artifact_type);
}

bool Repository::referrers_api(const Descriptor& probe_subject)
{
  {
    std::lock_guard lock(m_mutex);
    if (m_referrers_api) return *m_referrers_api;
  }
  return referrers_via_api(probe_subject, {}).has_value();
}

FallbackMerge merge_fallback_index(const std::vector<Descriptor>& existing, const std::vector<Descriptor>& additions,
                                   const std::function<bool(const Descriptor&)>& still_exists)
{
  FallbackMerge result;
  std::set<Digest> seen;
  for (const auto& d : existing) {
    if (!seen.insert(d.digest).second) {
      result.changed = true;  // a duplicate entry is dropped
      continue;
    }
    bool is_new = std::none_of(additions.begin(), additions.end(), [&](const Descriptor& a) { return a.digest == d.digest; });
    if (is_new && !still_exists(d)) {
      result.changed = true;
      continue;
    }
    result.manifests.push_back(d);
  }
  for (const auto& a : additions) {
    if (!seen.insert(a.digest).second) continue;
    result.manifests.push_back(a);
    result.changed = true;
  }
  return result;
}

std::string fallback_index_bytes(const std::vector<Descriptor>& manifests)
{
  json j = {{"schemaVersion", 2}, {"mediaType", media_type::k_oci_index}, {"manifests", json::array()}};
  for (const auto& d : manifests) {
    json e = d.to_json_basic();
    // distribution-spec v1.1: artifactType and annotations on every descriptor.
    e["artifactType"] = d.artifact_type;
    e["annotations"] = d.annotations.empty() ? json::object() : json(d.annotations);
    j["manifests"].push_back(e);
  }
  return j.dump();
}

bool Repository::update_fallback_index(const Descriptor& subject, const std::vector<Descriptor>& additions)
{
  std::string tag = subject.digest.fallback_tag();
  std::vector<Descriptor> existing;
  if (auto current = resolve_optional(tag); current && media_type::is_index(current->media_type) &&
                                            current->digest != subject.digest) {
    Manifest m = Manifest::parse(fetch_manifest_bytes(*current), current->media_type, display() + ":" + tag);
    existing = m.manifests;
  }
  auto merged = merge_fallback_index(existing, additions, [&](const Descriptor& d) { return exists(d); });
  if (!merged.changed) return false;
  std::string bytes = fallback_index_bytes(merged.manifests);
  Descriptor d;
  d.media_type = media_type::k_oci_index;
  d.digest = Digest::of(bytes);
  d.size = bytes.size();
  put_manifest(d, bytes, tag);
  return true;
}

std::optional<std::string> next_link(const std::string& header)
{
  // Link: <url>; rel="next", <url2>; rel="prev"
  std::size_t pos = 0;
  while (pos < header.size()) {
    auto lt = header.find('<', pos);
    if (lt == std::string::npos) return std::nullopt;
    auto gt = header.find('>', lt);
    if (gt == std::string::npos) return std::nullopt;
    std::string target = header.substr(lt + 1, gt - lt - 1);
    auto end = header.find('<', gt);
    std::string params = header.substr(gt + 1, end == std::string::npos ? std::string::npos : end - gt - 1);
    std::string lower;
    for (char c : params)
      if (c != ' ' && c != '"') lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find("rel=next") != std::string::npos) return target;
    pos = gt + 1;
  }
  return std::nullopt;
}

} // namespace ferry::remote

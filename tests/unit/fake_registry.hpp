#pragma once
// An in-memory OCI distribution registry behind FakeHttpClient: enough of the
// distribution-spec for the repository, graph and push tests.
#include "fake_http_client.hpp"

#include <ferry/digest.hpp>
#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/store/memory_store.hpp>

#include <cstring>

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace fixtures {

using ferry::remote::FakeHttpClient;
using ferry::remote::HttpHeaders;
using ferry::remote::HttpRequest;
using ferry::remote::HttpResponse;
using ferry::remote::make_response;

struct FakeRegistry {
  struct Repo {
    std::map<std::string, std::pair<std::string, std::string>> manifests;  // digest -> (media type, bytes)
    std::map<std::string, std::string> tags;                                // tag -> digest
    std::map<std::string, std::string> blobs;                               // digest -> bytes
  };
  std::map<std::string, Repo> repos;
  bool referrers_api = false;
  std::size_t page_size = 0;  // referrers per page (0: all)
  bool tags_api = true;       // GET /v2/<name>/tags/list (else 404)
  std::size_t tags_page_size = 0;  // tags per page (0: what `n` asks, or all)
  int uploads = 0;
  std::map<std::string, std::string> upload_data;  // upload id -> bytes received by PATCH
  int patches = 0;
  /// For PATCH number n (1-based): 0 normal, 1 apply it then fail the connection, 2 answer
  /// 503 without applying it.
  std::function<int(int)> patch_fault;
  FakeHttpClient client;
  /// Serialises handle(): transfers call it from several threads at once (FakeHttpClient runs
  /// its handler outside its own lock), and the maps above are not thread-safe.
  std::mutex mutex;

  static constexpr const char* k_base = "http://fake.test";

  FakeRegistry()
  {
    client.handler = [this](const HttpRequest& r) { return handle(r); };
  }

  std::string put_blob(const std::string& repo, const std::string& bytes)
  {
    auto d = ferry::Digest::of(bytes).str();
    repos[repo].blobs[d] = bytes;
    return d;
  }
  std::string put_manifest(const std::string& repo, const std::string& media_type, const std::string& bytes,
                           const std::string& tag = {})
  {
    auto d = ferry::Digest::of(bytes).str();
    repos[repo].manifests[d] = {media_type, bytes};
    if (!tag.empty()) repos[repo].tags[tag] = d;
    return d;
  }

  HttpResponse handle(const HttpRequest& req)
  {
    std::lock_guard lock(mutex);
    std::string url = req.url;
    std::string query;
    if (auto q = url.find('?'); q != std::string::npos) {
      query = url.substr(q + 1);
      url = url.substr(0, q);
    }
    std::string path = url.substr(std::string(k_base).size());
    if (path.rfind("/v2/", 0) != 0) return make_response(404);
    path = path.substr(4);
    if (path.size() > 10 && path.compare(path.size() - 10, 10, "/tags/list") == 0)
      return tags_list(path.substr(0, path.size() - 10), query);
    for (const char* kind : {"/manifests/", "/blobs/uploads/", "/blobs/", "/referrers/"}) {
      auto pos = path.rfind(kind);
      if (pos == std::string::npos) continue;
      std::string name = path.substr(0, pos);
      std::string ref = path.substr(pos + std::strlen(kind));
      std::string k = kind;
      if (k == "/manifests/") return manifests(req, name, ref);
      if (k == "/blobs/uploads/") return upload(req, name, ref, query);
      if (k == "/blobs/") return blob(req, name, ref);
      return referrers(name, ref, query);
    }
    return make_response(404);
  }

  HttpResponse manifests(const HttpRequest& req, const std::string& name, const std::string& ref)
  {
    auto& repo = repos[name];
    if (req.method == "PUT") {
      std::string bytes;
      auto body = req.body();
      bytes = ferry::read_all(*body, 4 << 20);
      auto d = put_manifest(name, req.headers.get("Content-Type").value_or(""), bytes);
      if (!ferry::Digest::is_valid(ref)) repo.tags[ref] = d;
      HttpHeaders h;
      h.add("Docker-Content-Digest", d);
      return make_response(201, "", h);
    }
    std::string digest = ref;
    if (auto t = repo.tags.find(ref); t != repo.tags.end()) digest = t->second;
    auto it = repo.manifests.find(digest);
    if (it == repo.manifests.end()) return make_response(404, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})");
    HttpHeaders h;
    h.add("Content-Type", it->second.first);
    h.add("Docker-Content-Digest", digest);
    return make_response(200, req.method == "HEAD" ? std::string() : it->second.second, h);
  }

  // distribution-spec §Listing Tags: sorted, `n` and `last`, a Link to the next page.
  HttpResponse tags_list(const std::string& name, const std::string& query)
  {
    if (!tags_api) return make_response(404, "404 page not found\n");
    auto param = [&](const std::string& key) -> std::string {
      auto p = query.find(key + "=");
      if (p == std::string::npos) return {};
      auto end = query.find('&', p);
      return query.substr(p + key.size() + 1, end == std::string::npos ? std::string::npos : end - p - key.size() - 1);
    };
    std::size_t n = tags_page_size;
    if (!n && !param("n").empty()) n = std::stoul(param("n"));
    std::string last = param("last");
    nlohmann::json tags = nlohmann::json::array();
    bool more = false;
    std::string tail;
    for (const auto& [tag, d] : repos[name].tags) {
      if (!last.empty() && tag <= last) continue;
      if (n && tags.size() == n) {
        more = true;
        break;
      }
      tags.push_back(tag);
      tail = tag;
    }
    HttpHeaders h;
    h.add("Content-Type", "application/json");
    if (more) h.add("Link", "</v2/" + name + "/tags/list?n=" + std::to_string(n) + "&last=" + tail + ">; rel=\"next\"");
    return make_response(200, nlohmann::json{{"name", name}, {"tags", tags}}.dump(), h);
  }

  HttpResponse blob(const HttpRequest& req, const std::string& name, const std::string& digest)
  {
    auto& repo = repos[name];
    auto it = repo.blobs.find(digest);
    if (it == repo.blobs.end()) return make_response(404);
    return make_response(200, req.method == "HEAD" ? std::string() : it->second);
  }

  HttpResponse upload(const HttpRequest& req, const std::string& name, const std::string& id, const std::string& query)
  {
    if (req.method == "POST") {
      HttpHeaders h;
      h.add("Location", "/v2/" + name + "/blobs/uploads/u" + std::to_string(++uploads) + "?state=x");
      return make_response(202, "", h);
    }
    std::string uid = id.substr(0, id.find('?'));
    if (req.method == "PATCH" && !uid.empty()) {
      std::string& have = upload_data[uid];
      auto range = req.headers.get("Content-Range");
      std::size_t start = range ? std::stoull(range->substr(0, range->find('-'))) : have.size();
      int fault = patch_fault ? patch_fault(++patches) : 0;
      if (fault == 2) return make_response(503);
      if (start != have.size()) return make_response(416);
      auto body = req.body();
      have += ferry::read_all(*body, 64 << 20);
      if (fault == 1) throw ferry::Error(ferry::Errc::network, "connection reset after the chunk");
      HttpHeaders h;
      h.add("Location", "/v2/" + name + "/blobs/uploads/" + uid + "?state=" + std::to_string(have.size()));
      return make_response(202, "", h);
    }
    if (req.method == "GET" && !uid.empty()) {
      HttpHeaders h;
      const std::string& have = upload_data[uid];
      h.add("Range", "0-" + std::to_string(have.empty() ? 0 : have.size() - 1));
      h.add("Location", "/v2/" + name + "/blobs/uploads/" + uid + "?state=" + std::to_string(have.size()));
      return make_response(204, "", h);
    }
    if (req.method == "PUT" && !id.empty()) {
      auto pos = query.find("digest=");
      std::string digest = query.substr(pos + 7);
      auto body = req.body();
      std::string bytes = upload_data[uid] + (body ? ferry::read_all(*body, 64 << 20) : std::string());
      if (ferry::Digest::of(bytes).str() != digest) return make_response(400, R"({"errors":[{"code":"DIGEST_INVALID"}]})");
      repos[name].blobs[digest] = bytes;
      HttpHeaders h;
      h.add("Docker-Content-Digest", digest);
      return make_response(201, "", h);
    }
    return make_response(405);
  }

  HttpResponse referrers(const std::string& name, const std::string& subject, const std::string& query)
  {
    if (!referrers_api) return make_response(404, "404 page not found\n");
    std::vector<nlohmann::json> all;
    for (const auto& [d, m] : repos[name].manifests) {
      auto j = nlohmann::json::parse(m.second);
      if (!j.contains("subject") || j["subject"]["digest"] != subject) continue;
      nlohmann::json e = {{"mediaType", m.first}, {"digest", d}, {"size", m.second.size()}};
      e["artifactType"] = j.value("artifactType", j["config"].value("mediaType", ""));
      if (j.contains("annotations")) e["annotations"] = j["annotations"];
      all.push_back(e);
    }
    std::size_t start = 0;
    if (auto p = query.find("page="); p != std::string::npos) start = std::stoul(query.substr(p + 5));
    std::size_t n = page_size ? page_size : all.size();
    nlohmann::json page = nlohmann::json::array();
    for (std::size_t i = start; i < all.size() && i < start + n; ++i) page.push_back(all[i]);
    HttpHeaders h;
    h.add("Content-Type", std::string(ferry::media_type::k_oci_index));
    if (start + n < all.size())
      h.add("Link", "</v2/" + name + "/referrers/" + subject + "?page=" + std::to_string(start + n) + ">; rel=\"next\"");
    nlohmann::json idx = {{"schemaVersion", 2}, {"mediaType", ferry::media_type::k_oci_index}, {"manifests", page}};
    return make_response(200, idx.dump(), h);
  }

  std::size_t count(const std::string& method, const std::string& url_part) const
  {
    std::lock_guard lock(client.mutex);
    std::size_t n = 0;
    for (const auto& r : client.requests)
      if (r.method == method && r.url.find(url_part) != std::string::npos) ++n;
    return n;
  }
};

} // namespace fixtures

namespace fixtures {

/// Copies every item of `store` into `repo` of the fake registry; with `fallback`, writes a
/// `sha256-<hex>` fallback index for each subject, as tools do on registries without the
/// referrers API.
inline void load(FakeRegistry& reg, const std::string& repo, ferry::MemoryStore& store, bool fallback)
{
  std::map<std::string, nlohmann::json> lists;
  for (const auto& d : store.all()) {
    auto bytes = *store.get(d.digest);
    if (!ferry::media_type::is_manifest(d.media_type)) {
      reg.put_blob(repo, bytes);
      continue;
    }
    reg.put_manifest(repo, d.media_type, bytes);
    auto j = nlohmann::json::parse(bytes);
    if (fallback && j.contains("subject")) {
      nlohmann::json e = d.to_json_basic();
      e["artifactType"] = j.value("artifactType", j["config"].value("mediaType", ""));
      e["annotations"] = j.value("annotations", nlohmann::json::object());
      lists[j["subject"]["digest"]].push_back(e);
    }
  }
  for (const auto& [subject, entries] : lists) {
    nlohmann::json idx = {{"schemaVersion", 2}, {"mediaType", ferry::media_type::k_oci_index}, {"manifests", entries}};
    reg.put_manifest(repo, std::string(ferry::media_type::k_oci_index), idx.dump(),
                     "sha256-" + std::string(subject).substr(7));
  }
}

} // namespace fixtures

#include <ferry/verify/integrity.hpp>

#include <ferry/error.hpp>
#include <ferry/media_type.hpp>

#include <nlohmann/json.hpp>

#include <set>

namespace fs = std::filesystem;
using nlohmann::json;

namespace ferry::verify {

namespace {

constexpr std::size_t k_max_index = 64 << 20;
constexpr std::size_t k_max_envelope = 32 << 20;  // notation-go's envelope limit
// Blobs that might be manifests, kept while their role is unknown (foreign entry order).
constexpr std::size_t k_candidate_budget = 256 << 20;

struct EntryFacts {
  std::uint64_t size = 0;
  Digest actual;
};

struct Scanner {
  BundleScan& scan;
  std::map<Digest, EntryFacts> entries;
  std::set<Digest> wanted_manifests;
  std::set<Digest> wanted_envelopes;
  std::map<Digest, std::string> candidates;
  std::size_t candidate_bytes = 0;
  bool have_index = false;

  void problem(const std::string& digest, const std::string& message) { scan.problems.push_back({digest, message}); }

  void want_from_index()
  {
    for (const auto& e : scan.index_entries)
      if (media_type::is_manifest(e.media_type) && !scan.manifests.get(e.digest)) wanted_manifests.insert(e.digest);
  }

  // A verified manifest arrived: parse it, want its children and envelope.
  void accept_manifest(Descriptor desc, std::string bytes)
  {
    desc.size = bytes.size();  // a descriptor's lying size is reported by the graph walk
    Manifest m;
    try {
      m = Manifest::parse(bytes, desc.media_type, desc.digest.str());
    } catch (const Error& e) {
      problem(desc.digest.str(), e.what());
      return;
    }
    scan.manifests.put(desc, std::move(bytes));
    wanted_manifests.erase(desc.digest);
    for (const auto& child : m.is_index() ? m.manifests : std::vector<Descriptor>{})
      if (media_type::is_manifest(child.media_type) && !scan.manifests.get(child.digest)) wanted_manifests.insert(child.digest);
    if (is_signature_manifest(m) && m.layers.size() == 1 && !scan.envelopes.count(m.layers[0].digest))
      wanted_envelopes.insert(m.layers[0].digest);
  }

  std::optional<Descriptor> descriptor_for(const Digest& d)
  {
    for (const auto& e : scan.index_entries)
      if (e.digest == d) return e;
    for (const auto& desc : scan.manifests.all()) {
      Manifest m = Manifest::parse(*scan.manifests.get(desc.digest), desc.media_type, desc.digest.str());
      for (const auto& c : m.manifests)
        if (c.digest == d) return c;
    }
    return std::nullopt;
  }

  void on_blob(const Digest& name, std::uint64_t size, Reader& data, bool first_pass)
  {
    bool keep_manifest = wanted_manifests.count(name) != 0;
    bool keep_envelope = wanted_envelopes.count(name) != 0;
    bool maybe = first_pass && !keep_manifest && !keep_envelope && size <= k_max_manifest_size &&
                 candidate_bytes + size <= k_candidate_budget;
    std::string kept;
    Hasher hasher(name.algorithm());
    std::uint64_t count = 0;
    bool keep = keep_manifest || keep_envelope || maybe;
    std::uint64_t keep_limit = keep_envelope ? k_max_envelope : k_max_manifest_size;
    pump(data, [&](const char* p, std::size_t n) {
      hasher.update(p, n);
      count += n;
      if (keep && count <= keep_limit) kept.append(p, n);
    });
    Digest actual = hasher.finish();
    if (first_pass) {
      auto [it, inserted] = entries.emplace(name, EntryFacts{count, actual});
      if (!inserted) {
        if (it->second.actual != actual || it->second.size != count)
          problem(name.str(), "duplicate entry for " + name.str() + " with different content");
        return;
      }
      ++scan.blobs;
      scan.bytes += count;
      if (actual != name) {
        problem(name.str(), "blob " + name.str() + " has content with digest " + actual.str());
        return;
      }
    }
    if (actual != name) return;
    if ((keep_manifest || keep_envelope) && count > keep_limit) {
      problem(name.str(), std::string(keep_manifest ? "manifest " : "signature envelope ") + name.str() + " has " +
                              std::to_string(count) + " bytes, more than the limit of " + std::to_string(keep_limit));
      wanted_manifests.erase(name);
      wanted_envelopes.erase(name);
      return;
    }
    if (count > keep_limit) return;
    if (keep_manifest) {
      auto desc = descriptor_for(name);
      if (desc) accept_manifest(*desc, std::move(kept));
    } else if (keep_envelope) {
      scan.envelopes[name] = std::move(kept);
      wanted_envelopes.erase(name);
    } else if (maybe && !kept.empty() && kept.find_first_not_of(" \t\r\n") != std::string::npos &&
               kept[kept.find_first_not_of(" \t\r\n")] == '{') {
      candidate_bytes += kept.size();
      candidates.emplace(name, std::move(kept));
    }
  }

  // Uses cached candidates for what is wanted; returns true when something was resolved.
  bool resolve_from_candidates()
  {
    bool progress = false;
    for (bool again = true; again;) {
      again = false;
      for (auto d : std::set<Digest>(wanted_manifests)) {
        auto it = candidates.find(d);
        if (it == candidates.end()) continue;
        if (auto desc = descriptor_for(d)) {
          accept_manifest(*desc, it->second);
          again = progress = true;
        }
      }
      for (auto d : std::set<Digest>(wanted_envelopes)) {
        auto it = candidates.find(d);
        if (it == candidates.end()) continue;
        scan.envelopes[d] = it->second;
        wanted_envelopes.erase(d);
        progress = true;
      }
    }
    return progress;
  }

  void on_index(Reader& data)
  {
    std::string bytes;
    try {
      bytes = read_all(data, k_max_index, "index.json");
    } catch (const Error& e) {
      problem("", e.what());  // read_all names index.json
      return;
    }
    have_index = true;
    scan.index_digest = Digest::of(bytes);
    json j = json::parse(bytes, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      problem("", "index.json is not a JSON object");
      return;
    }
    auto it = j.find("manifests");
    if (it == j.end() || !it->is_array()) {
      problem("", "index.json has no \"manifests\" array");
      return;
    }
    std::size_t i = 0;
    for (const auto& d : *it) {
      try {
        scan.index_entries.push_back(Descriptor::from_json(d, "index.json manifests[" + std::to_string(i) + "]"));
      } catch (const Error& e) {
        problem("", e.what());
      }
      ++i;
    }
    want_from_index();
  }
};

} // namespace

bool is_signature_manifest(const Manifest& m)
{
  if (!media_type::is_image_manifest(m.media_type) || !m.subject || !m.config) return false;
  if (m.artifact_type == media_type::k_notary_signature) return m.config->media_type == media_type::k_oci_empty;
  return m.artifact_type.empty() && m.config->media_type == media_type::k_notary_signature;
}

std::unique_ptr<BundleScan> scan_bundle(const fs::path& path, BundleFormat format)
{
  auto result = std::make_unique<BundleScan>();
  BundleScan& scan = *result;
  scan.path = path;
  scan.format = format;
  Scanner s{scan, {}, {}, {}, {}, 0, false};
  bool have_layout = false;
  scan_entries(path, format, [&](const std::string& name, std::uint64_t size, Reader& data) {
    if (name == "oci-layout") {
      if (have_layout) s.problem("", "duplicate oci-layout entry");
      have_layout = true;
      std::string bytes;
      try {
        bytes = read_all(data, 4096, "oci-layout");
      } catch (const Error&) {
      }
      json j = json::parse(bytes, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("imageLayoutVersion"))
        s.problem("", "oci-layout is not an OCI image layout marker");
    } else if (name == "index.json") {
      if (s.have_index) s.problem("", "duplicate index.json entry");
      else s.on_index(data);
    } else if (auto d = digest_from_blob_path(name)) {
      s.on_blob(*d, size, data, true);
    } else if (name.rfind("blobs/", 0) == 0 || name.find('/') == std::string::npos) {
      s.problem("", "unexpected entry \"" + name + "\"");
    } else {
      s.problem("", "unexpected entry \"" + name + "\"");
    }
    return true;
  });
  if (!have_layout) s.problem("", "no oci-layout file");
  if (!s.have_index) s.problem("", "no index.json");
  s.resolve_from_candidates();
  s.candidates.clear();
  // Manifests or envelopes written after what points at them, beyond the candidate
  // budget: read them again (one more pass per graph level at worst).
  for (int pass = 0; pass < 16 && (!s.wanted_manifests.empty() || !s.wanted_envelopes.empty()); ++pass) {
    std::set<Digest> wanted;
    for (const auto& d : s.wanted_manifests)
      if (s.entries.count(d) && s.entries[d].actual == d) wanted.insert(d);
    for (const auto& d : s.wanted_envelopes)
      if (s.entries.count(d) && s.entries[d].actual == d) wanted.insert(d);
    if (wanted.empty()) break;
    scan_entries(path, format, [&](const std::string& name, std::uint64_t size, Reader& data) {
      if (auto d = digest_from_blob_path(name); d && wanted.count(*d)) {
        wanted.erase(*d);
        s.on_blob(*d, size, data, false);
      }
      return !wanted.empty();
    });
  }

  // The graph: every descriptor resolves to a blob of its size; subjects are present.
  std::set<Digest> seen;
  std::vector<std::pair<Descriptor, std::string>> stack;
  for (const auto& e : scan.index_entries) stack.emplace_back(e, "index.json");
  while (!stack.empty()) {
    auto [desc, parent] = stack.back();
    stack.pop_back();
    auto it = s.entries.find(desc.digest);
    if (it == s.entries.end()) {
      s.problem(desc.digest.str(), "blob " + desc.digest.str() + " referenced by " + parent + " is missing");
      continue;
    }
    if (it->second.size != desc.size)
      s.problem(desc.digest.str(), "descriptor in " + parent + " gives size " + std::to_string(desc.size) + " for " +
                                       desc.digest.str() + ", the blob has " + std::to_string(it->second.size) + " bytes");
    if (!seen.insert(desc.digest).second) continue;
    if (!media_type::is_manifest(desc.media_type)) continue;
    auto bytes = scan.manifests.get(desc.digest);
    if (!bytes) continue;  // its problem (digest mismatch, invalid JSON) is already recorded
    Manifest m = Manifest::parse(*bytes, desc.media_type, desc.digest.str());
    for (const auto& child : m.is_index() ? m.manifests : std::vector<Descriptor>{}) stack.emplace_back(child, desc.digest.str());
    if (m.config) stack.emplace_back(*m.config, desc.digest.str());
    for (const auto& layer : m.layers) stack.emplace_back(layer, desc.digest.str());
    if (m.subject && !s.entries.count(m.subject->digest))
      s.problem(desc.digest.str(), "subject " + m.subject->digest.str() + " of referrer " + desc.digest.str() + " is missing");
  }
  return result;
}

} // namespace ferry::verify

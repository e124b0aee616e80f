// The bundle reader's format-independent half: names, the one scanner every format's pass
// feeds (design §8), and the Source interface over what it found.
#include <ferry/store/layout.hpp>

#include "readers.hpp"

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>
#include <ferry/record.hpp>
#include <ferry/store/volumes.hpp>
#include <ferry/util/parallel.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

namespace fs = std::filesystem;
using nlohmann::json;

namespace ferry {

namespace {

bool ends_with(const std::string& s, std::string_view suffix)
{
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Blobs that might be manifests, read before anything asked for them (another tool's
// entry order), kept within this budget in case a manifest read later names them.
constexpr std::size_t k_candidate_budget = 32 << 20;
// All manifests of a bundle are held in memory; bounded all the same (design §8).
constexpr std::uint64_t k_max_metadata_bytes = 512ull << 20;
// Extra passes over a `.tar.zst` for manifests written after what points at them.
constexpr int k_max_passes = 16;
// Files of other tools beside the layout (ctr export, docker save write one or two).
constexpr std::size_t k_max_extra_entries = 1000;

} // namespace

namespace {

std::string lower_name(const fs::path& path)
{
  std::string s = path.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

} // namespace

BundleFormat format_from_path(const fs::path& path)
{
  std::string s = lower_name(path);
  // A volume (`x.tar.zst.001`) is of the format its set's name says.
  if (has_volume_suffix(s)) s = s.substr(0, s.rfind('.'));
  if (ends_with(s, ".tar")) return BundleFormat::tar;
  if (ends_with(s, ".tar.zst") || ends_with(s, ".tzst")) return BundleFormat::tar_zst;
  if (ends_with(s, ".tar.gz") || ends_with(s, ".tgz")) return BundleFormat::tar_gz;
  return BundleFormat::dir;
}

BundleFormat format_for_output(const fs::path& path)
{
  BundleFormat format = format_from_path(path);
  if (format != BundleFormat::dir) return format;
  // Archive and compression suffixes ferry does not write: a user naming one wants a file,
  // and would otherwise get a directory of that name.
  static const char* const foreign[] = {".zip",  ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz",  ".tar.lz",
                                        ".tlz",  ".tar.lzma", ".tar.lz4", ".tar.z", ".taz", ".7z", ".rar",
                                        ".gz",   ".bz2",  ".xz",  ".zst", ".lz4", ".lzma", ".lz", ".jar", ".cpio"};
  std::string s = lower_name(path);
  for (const char* suffix : foreign)
    if (ends_with(s, suffix))
      throw Error(Errc::invalid_argument, "output " + path.string() + ": ferry does not write " + suffix +
                                              " files; name the output as " + std::string(k_format_names) +
                                              ", or give --format");
  return format;
}

BundleFormat parse_format(const std::string& text)
{
  if (text == "tar") return BundleFormat::tar;
  if (text == "tar.zst" || text == "tzst") return BundleFormat::tar_zst;
  if (text == "tar.gz" || text == "tgz") return BundleFormat::tar_gz;
  if (text == "dir") return BundleFormat::dir;
  throw Error(Errc::invalid_argument, "invalid --format \"" + text + "\": want tar, tar.zst, tar.gz or dir");
}

const char* format_name(BundleFormat format)
{
  switch (format) {
  case BundleFormat::tar: return "tar";
  case BundleFormat::tar_zst: return "tar.zst";
  case BundleFormat::tar_gz: return "tar.gz";
  case BundleFormat::dir: return "dir";
  }
  return "?";
}

std::string blob_path(const Digest& digest) { return "blobs/" + digest.algorithm() + "/" + digest.hex(); }

std::optional<Digest> digest_from_blob_path(std::string_view path)
{
  if (path.substr(0, 6) != "blobs/") return std::nullopt;
  auto rest = path.substr(6);
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string text = std::string(rest.substr(0, slash)) + ":" + std::string(rest.substr(slash + 1));
  if (!Digest::is_valid(text)) return std::nullopt;
  return Digest::parse(text);
}

void ProblemList::add(std::string digest, std::string message)
{
  ++total;
  if (listed.size() < limit) listed.push_back({std::move(digest), std::move(message)});
}

// ---------------------------------------------------------------- the scanner

// One pass over the entries of any format: each entry checked once (duplicates, the entry
// limit; layout_path has checked its name), index.json and every manifest reachable from it
// read into memory, at ReadDepth::verify every blob hashed and signature envelopes and trust
// files kept. What a later entry needs of an earlier one (another tool's order) comes from a
// bounded set of candidates, then from random access or a few more passes.
class LayoutScanner {
public:
  explicit LayoutScanner(LayoutReader& r)
    : m_r(r), m_where(r.m_path.string()), m_verify(r.m_options.depth == ReadDepth::verify),
      m_streaming(!r.random_access()), m_stop_early(r.m_options.depth == ReadDepth::head && !r.random_access())
  {
  }

  void run()
  {
    bool stopped = false;
    m_r.walk([&](LayoutReader::WalkEntry& e) {
      on_entry(e);
      if (m_stop_early && m_have_index && m_wanted.empty()) {
        stopped = true;
        return false;
      }
      return true;
    });
    if (!stopped) {
      if (!m_have_layout) problem("", "no oci-layout file");
      if (!m_have_index) {
        problem("", "no index.json in the bundle");
        return;
      }
    }
    load_the_rest();
    hash_deferred();
  }

private:
  // The blobs on_blob left for later, hashed on all cores (each read in place, through its
  // own reader); entries and problems are then set in storage order, as a single pass would.
  void hash_deferred()
  {
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < m_deferred.size(); ++i)
      if (!m_r.m_blobs.at(*m_deferred[i]).hashed) todo.push_back(i);
    if (todo.empty()) return;
    // One byte per blob; what a mismatched one holds instead, by its index.
    std::vector<std::uint8_t> intact(m_deferred.size(), 0);
    std::map<std::size_t, std::pair<Digest, std::uint64_t>> wrong;
    std::mutex wrong_mutex;
    unsigned workers = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
    parallel_for_each(todo, workers, [&](std::size_t i) {
      Digest d = m_deferred[i]->digest();
      std::uint64_t size = m_r.m_blobs.at(*m_deferred[i]).size;
      auto r = m_r.open_blob(d);
      Hasher hasher(d.algorithm());
      std::vector<char> buf(static_cast<std::size_t>(std::clamp<std::uint64_t>(size, 1, 1 << 20)));
      std::uint64_t count = 0;
      while (std::size_t n = r->read(buf.data(), buf.size())) {
        hasher.update(buf.data(), n);
        count += n;
      }
      Digest actual = hasher.finish();
      if (actual == d && count == size) {
        intact[i] = 1;
      } else {
        std::lock_guard lock(wrong_mutex);
        wrong.emplace(i, std::make_pair(std::move(actual), count));
      }
    });
    for (std::size_t i : todo) {
      BlobEntry& entry = m_r.m_blobs.at(*m_deferred[i]);
      entry.hashed = true;
      entry.intact = intact[i] != 0;
      if (auto it = wrong.find(i); it != wrong.end())
        mismatch(m_deferred[i]->digest(), it->second.first, it->second.second, entry.size);
    }
  }

  // A blob whose bytes are not what its name says.
  void mismatch(const Digest& d, const Digest& actual, std::uint64_t count, std::uint64_t size)
  {
    problem(d.str(), count != size ? "blob " + d.str() + ": " + std::to_string(count) + " bytes read, the entry says " +
                                         std::to_string(size)
                                   : "blob " + d.str() + " has content with digest " + actual.str());
  }

  using WalkEntry = LayoutReader::WalkEntry;

  [[noreturn]] void refuse(const WalkEntry& e, const std::string& why)
  {
    throw Error(Errc::invalid_manifest, m_where + ": " + why + " \"" + e.name + "\"" +
                                            (e.name != e.path.path ? " (" + e.path.path + ")" : ""));
  }

  // A content problem: collected at ReadDepth::verify, thrown at the others.
  void problem(const std::string& digest, const std::string& message)
  {
    if (!m_verify) throw Error(Errc::invalid_manifest, m_where + ": " + message);
    m_r.m_problems.add(digest, message);
  }

  void on_entry(WalkEntry& e)
  {
    if (++m_r.m_entry_count > m_r.m_options.limits.max_entries)
      throw Error(Errc::invalid_manifest, m_where + ": more than " + std::to_string(m_r.m_options.limits.max_entries) +
                                              " entries; refusing to read further (--max-entries raises the limit)");
    switch (e.path.role) {
    case LayoutPath::Role::ignored: return;
    case LayoutPath::Role::extra:
      // Never read: only its name is kept, for the note saying it was left out.
      if (!m_extras.insert(e.path.path).second) refuse(e, "duplicate entry");
      if (m_extras.size() > k_max_extra_entries)
        throw Error(Errc::invalid_manifest, m_where + ": more than " + std::to_string(k_max_extra_entries) +
                                                " files outside the OCI layout; refusing to read further");
      m_r.m_ignored.push_back(e.path.path);
      return;
    case LayoutPath::Role::directory:
      if (!m_dirs.insert(e.path.path).second) refuse(e, "duplicate entry");
      return;
    case LayoutPath::Role::oci_layout:
      if (m_have_layout) refuse(e, "duplicate entry");
      m_have_layout = true;
      on_layout(e.data());
      return;
    case LayoutPath::Role::index_json:
      if (m_have_index) refuse(e, "duplicate entry");
      m_have_index = true;
      on_index(e.data());
      return;
    case LayoutPath::Role::blob: on_blob(e); return;
    }
  }

  void on_layout(Reader& data)
  {
    std::string bytes;
    try {
      bytes = read_all(data, 4096, "oci-layout");
    } catch (const Error& e) {
      if (e.code() != Errc::size_exceeds_limit) throw;
    }
    json j = json::parse(bytes, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("imageLayoutVersion"))
      problem("", "oci-layout is not an OCI image layout marker");
  }

  void on_index(Reader& data)
  {
    std::string bytes;
    try {
      bytes = read_all(data, k_max_index_size, "index.json");
    } catch (const Error& e) {
      if (e.code() != Errc::size_exceeds_limit) throw;
      problem("", e.what());
      return;
    }
    m_r.m_index_digest = Digest::of(bytes);
    json j = json::parse(bytes, nullptr, false);
    m_r.m_index_json = std::move(bytes);
    if (j.is_discarded() || !j.is_object()) return problem("", "index.json is not a JSON object");
    auto it = j.find("manifests");
    if (it == j.end() || !it->is_array()) return problem("", "index.json has no \"manifests\" array");
    if (it->size() > m_r.m_options.limits.max_entries)
      throw Error(Errc::invalid_manifest, m_where + ": index.json lists " + std::to_string(it->size()) +
                                              " manifests, more than the limit of " +
                                              std::to_string(m_r.m_options.limits.max_entries) + " (--max-entries)");
    std::size_t i = 0;
    for (const auto& d : *it) {
      try {
        m_r.m_entries.push_back(Descriptor::from_json(d, "index.json manifests[" + std::to_string(i) + "]"));
      } catch (const Error& e) {
        problem("", e.what());
      }
      ++i;
    }
    for (const auto& e : m_r.m_entries)
      if (media_type::is_manifest(e.media_type)) want(e);
    drain_candidates();
  }

  void on_blob(WalkEntry& e)
  {
    const Digest& d = *e.path.digest;
    auto [it, inserted] = m_r.m_blobs.emplace(BlobKey::of(d), BlobEntry{e.size, e.offset, false, false});
    if (!inserted) refuse(e, "duplicate entry");
    m_r.m_blob_order.push_back(&it->first);
    bool wanted = m_wanted.count(d) || m_wanted_kept.count(d);
    bool candidate = m_streaming && !wanted && e.size <= k_max_manifest_size &&
                     m_candidate_bytes + e.size <= k_candidate_budget;
    if (!m_verify && !wanted && !candidate) return;
    // A blob nothing has asked to read yet (a layer, a config): hashed after the pass, on
    // every core, where the format reads in place from any thread (issue 18). Should a
    // manifest found later need it, it is read then (load_the_rest) and not hashed again.
    if (m_verify && !wanted && !candidate && m_r.parallel_reads()) {
      m_deferred.push_back(&it->first);
      return;
    }
    auto bytes = read_blob(e.data(), d, e.size, wanted ? limit_for(d) : k_max_manifest_size, it->second, !candidate);
    if (!bytes) return;
    if (wanted) {
      take(d, std::move(*bytes));
    } else if (candidate) {
      auto first = bytes->find_first_not_of(" \t\r\n");
      if (first == std::string::npos || (*bytes)[first] != '{') return;
      m_candidate_bytes += bytes->size();
      m_candidates.emplace(d, std::move(*bytes));
    }
  }

  std::size_t limit_for(const Digest& d) const { return m_wanted.count(d) ? k_max_manifest_size : k_max_kept_blob; }

  // Reads a blob's content, checking it against its name. Returns the bytes when they match
  // and fit `keep_limit` (nullopt for a blob not kept). At ReadDepth::verify the whole blob
  // is hashed and its entry marked; a mismatch is a problem. Elsewhere only what may be kept
  // is read, and a mismatch or an overflow of what is `needed` throws.
  std::optional<std::string> read_blob(Reader& data, const Digest& d, std::uint64_t size, std::size_t keep_limit,
                                       BlobEntry& entry, bool needed)
  {
    Hasher hasher(d.algorithm());
    std::string kept;
    std::uint64_t count = 0;
    bool over = false;
    std::vector<char> buf(1 << 16);
    for (;;) {
      std::size_t n = data.read(buf.data(), buf.size());
      if (n == 0) break;
      hasher.update(buf.data(), n);
      count += n;
      if (!over && count <= keep_limit) {
        kept.append(buf.data(), n);
        continue;
      }
      if (!over) {
        over = true;
        std::string().swap(kept);
      }
      if (!m_verify) break;  // nothing else to learn from the rest
    }
    if (over) {
      if (m_verify) {
        // Hashed whole all the same: a blob larger than what is kept (a layer) is checked
        // like any other, and a mismatch is a problem.
        Digest actual = hasher.finish();
        entry.hashed = true;
        entry.intact = actual == d && count == size;
        if (!entry.intact) mismatch(d, actual, count, size);
      }
      if (needed && (m_wanted.count(d) || m_wanted_kept.count(d))) {
        bool manifest = m_wanted.count(d) != 0;
        m_wanted.erase(d);
        m_wanted_kept.erase(d);
        problem(d.str(), std::string(manifest ? "manifest " : "signature envelope or trust file ") + d.str() +
                             " is larger than the limit of " + std::to_string(keep_limit) + " bytes");
      }
      return std::nullopt;
    }
    Digest actual = hasher.finish();
    bool intact = actual == d && count == size;
    if (m_verify) {
      entry.hashed = true;
      entry.intact = intact;
      if (!intact) {
        mismatch(d, actual, count, size);
        return std::nullopt;
      }
    } else if (!intact) {
      if (needed)
        throw Error(Errc::digest_mismatch, m_where + ": " + blob_path(d) + ": content has digest " + actual.str() + ", not " +
                                               d.str());
      return std::nullopt;
    }
    return kept;
  }

  void want(const Descriptor& desc)
  {
    if (m_r.m_metadata.get(desc.digest) || m_r.m_rejected.count(desc.digest)) return;
    m_wanted.emplace(desc.digest, desc);
  }

  void want_kept(const Descriptor& desc)
  {
    if (m_r.m_kept.count(desc.digest) || m_wanted_kept.count(desc.digest)) return;
    m_wanted_kept.emplace(desc.digest, desc);
  }

  // Bytes of a wanted blob, checked against its name, arrived.
  void take(const Digest& d, std::string bytes)
  {
    if (auto it = m_wanted.find(d); it != m_wanted.end()) {
      Descriptor desc = it->second;
      m_wanted.erase(it);
      accept_manifest(desc, std::move(bytes));
      return;
    }
    if (auto it = m_wanted_kept.find(d); it != m_wanted_kept.end()) {
      m_wanted_kept.erase(it);
      if (m_kept_bytes + bytes.size() > m_r.m_options.limits.max_kept_bytes) {
        problem(d.str(), "signature envelopes and trust files exceed " + std::to_string(m_r.m_options.limits.max_kept_bytes) +
                             " bytes in total; " + d.str() + " is not read");
        return;
      }
      m_kept_bytes += bytes.size();
      m_r.m_kept.emplace(d, std::move(bytes));
    }
  }

  void accept_manifest(Descriptor desc, std::string bytes)
  {
    desc.size = bytes.size();  // a descriptor's lying size is the graph check's to report
    Manifest m;
    try {
      m = Manifest::parse(bytes, desc.media_type, desc.digest.str());
    } catch (const Error& e) {
      m_r.m_rejected.emplace(desc.digest, e.what());
      problem(desc.digest.str(), e.what());
      return;
    }
    m_metadata_bytes += bytes.size();
    if (m_metadata_bytes > k_max_metadata_bytes)
      throw Error(Errc::invalid_manifest, m_where + ": the bundle's manifests exceed " +
                                              std::to_string(k_max_metadata_bytes >> 20) + " MiB in total");
    m_r.m_metadata.put(desc, std::move(bytes));
    for (const auto& child : m.manifests)
      if (media_type::is_manifest(child.media_type)) want(child);
    if (m_verify) {
      if (is_signature_manifest(m) && m.layers.size() == 1) want_kept(m.layers[0]);
      // cosign's signatures: every layer (Sigstore bundles, simple-signing payloads, DSSE envelopes).
      if (is_cosign_signature_manifest(m))
        for (const auto& l : m.layers) want_kept(l);
      if (is_trust_artifact(m))
        for (const auto& l : m.layers) want_kept(l);
      // The bundle's record (a delta's left-out blobs), read by verify.
      if (m.artifact_type == k_artifact_type_record && !m.subject)
        for (const auto& l : m.layers) want_kept(l);
    }
  }

  void drain_candidates()
  {
    for (bool again = true; again;) {
      again = false;
      for (auto& d : wanted_digests()) {
        auto it = m_candidates.find(d);
        if (it == m_candidates.end()) continue;
        std::string bytes = std::move(it->second);
        m_candidates.erase(it);
        if (bytes.size() > limit_for(d)) continue;
        take(d, std::move(bytes));
        again = true;
      }
    }
  }

  std::vector<Digest> wanted_digests() const
  {
    std::vector<Digest> out;
    for (const auto& [d, desc] : m_wanted) out.push_back(d);
    for (const auto& [d, desc] : m_wanted_kept) out.push_back(d);
    return out;
  }

  // What is wanted and present in the bundle (intact, when hashed).
  std::vector<Digest> wanted_present() const
  {
    std::vector<Digest> out;
    for (const auto& d : wanted_digests()) {
      const BlobEntry* entry = m_r.blob(d);
      if (entry && (!entry->hashed || entry->intact)) out.push_back(d);
    }
    return out;
  }

  // Manifests and kept blobs that came before what named them: from the candidates, then
  // in place (random access) or from further passes.
  void load_the_rest()
  {
    drain_candidates();
    m_candidates.clear();
    for (int pass = 0;; ++pass) {
      auto present = wanted_present();
      if (present.empty()) return;
      if (m_r.random_access()) {
        for (const auto& d : present) {
          auto r = m_r.open_blob(d);
          BlobEntry scratch;
          auto& entry = m_verify ? m_r.m_blobs.at(BlobKey::of(d)) : scratch;
          if (auto bytes = read_blob(*r, d, m_r.blob(d)->size, limit_for(d), entry, true)) take(d, std::move(*bytes));
        }
        continue;
      }
      if (pass >= k_max_passes)
        throw Error(Errc::invalid_manifest, m_where + ": manifests nested more than " + std::to_string(k_max_passes) +
                                                " levels out of order");
      std::set<Digest> left(present.begin(), present.end());
      m_r.walk([&](LayoutReader::WalkEntry& e) {
        if (e.path.role != LayoutPath::Role::blob || !left.count(*e.path.digest)) return true;
        const Digest& d = *e.path.digest;
        left.erase(d);
        BlobEntry scratch;
        if (auto bytes = read_blob(e.data(), d, e.size, limit_for(d), scratch, true)) take(d, std::move(*bytes));
        return !left.empty();
      });
    }
  }

  LayoutReader& m_r;
  std::string m_where;
  bool m_verify;
  bool m_streaming;
  bool m_stop_early;
  bool m_have_layout = false;
  bool m_have_index = false;
  std::set<std::string> m_dirs;
  std::set<std::string> m_extras;
  std::vector<const BlobKey*> m_deferred;  ///< keys of m_blobs to hash after the pass (hash_deferred)
  std::map<Digest, Descriptor> m_wanted;       ///< manifests
  std::map<Digest, Descriptor> m_wanted_kept;  ///< envelopes, trust files
  std::map<Digest, std::string> m_candidates;
  std::size_t m_candidate_bytes = 0;
  std::uint64_t m_kept_bytes = 0;
  std::uint64_t m_metadata_bytes = 0;
};

void LayoutReader::scan()
{
  LayoutScanner(*this).run();
}

// ---------------------------------------------------------------- Source

const std::string* LayoutReader::kept(const Digest& digest) const
{
  auto it = m_kept.find(digest);
  return it == m_kept.end() ? nullptr : &it->second;
}

BlobKey BlobKey::of(const Digest& digest)
{
  BlobKey k;
  k.algorithm = digest.algorithm() == "sha512" ? 1 : 0;
  const std::string& hex = digest.hex();
  auto nibble = [](char c) { return static_cast<std::uint8_t>(c <= '9' ? c - '0' : c - 'a' + 10); };
  for (std::size_t i = 0; i + 1 < hex.size() && i / 2 < k.bytes.size(); i += 2)
    k.bytes[i / 2] = static_cast<std::uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1]));
  return k;
}

Digest BlobKey::digest() const
{
  static const char* hex = "0123456789abcdef";
  std::size_t n = algorithm == 1 ? 64 : 32;
  std::string text = algorithm == 1 ? "sha512:" : "sha256:";
  for (std::size_t i = 0; i < n; ++i) {
    text += hex[bytes[i] >> 4];
    text += hex[bytes[i] & 15];
  }
  return Digest::parse(text);
}

const BlobEntry* LayoutReader::blob(const Digest& digest) const
{
  auto it = m_blobs.find(BlobKey::of(digest));
  return it == m_blobs.end() ? nullptr : &it->second;
}

std::vector<Digest> LayoutReader::blob_order() const
{
  std::vector<Digest> out;
  out.reserve(m_blob_order.size());
  for (const BlobKey* k : m_blob_order) out.push_back(k->digest());
  return out;
}

const std::string* LayoutReader::manifest_error(const Digest& digest) const
{
  auto it = m_rejected.find(digest);
  return it == m_rejected.end() ? nullptr : &it->second;
}

std::unique_ptr<Reader> LayoutReader::fetch(const Descriptor& desc)
{
  std::string what = m_path.string() + ": " + blob_path(desc.digest);
  if (auto bytes = m_metadata.get(desc.digest))
    return std::make_unique<VerifyingReader>(std::make_unique<StringReader>(*bytes), desc.digest, desc.size, what);
  if (auto* bytes = kept(desc.digest))
    return std::make_unique<VerifyingReader>(std::make_unique<StringReader>(*bytes), desc.digest, desc.size, what);
  if (random_access())
    return std::make_unique<VerifyingReader>(open_blob(desc.digest), desc.digest, desc.size, what);
  // A compressed tar's blob costs a pass (push and sign use for_each_blob instead).
  std::string bytes;
  for_each_blob({desc}, [&](const Descriptor&, Reader& r) { bytes = read_all(r, 64 << 20, what); });
  return std::make_unique<StringReader>(std::move(bytes));
}

bool LayoutReader::exists(const Descriptor& desc)
{
  return m_metadata.get(desc.digest).has_value() || blob(desc.digest) != nullptr;
}

Descriptor LayoutReader::resolve(const std::string& ref)
{
  for (const auto& e : m_entries)
    if (e.annotation(std::string(k_annotation_ref_name)) == ref || e.annotation(std::string(k_annotation_image_name)) == ref)
      return e;
  if (Digest::is_valid(ref)) {
    auto d = Digest::parse(ref);
    if (auto desc = m_metadata.descriptor(d)) return *desc;
  }
  throw Error(Errc::not_found, m_path.string() + ": no manifest named \"" + ref + "\"");
}

std::optional<CosignTag> entry_cosign_tag(const Descriptor& entry)
{
  std::string name = entry.annotation(std::string(k_annotation_ref_name));
  if (name.find('/') != std::string::npos) name = name.substr(name.rfind(':') + 1);
  return parse_cosign_tag(name);
}

std::vector<Attachment> LayoutReader::attachments(const Descriptor& subject)
{
  if (!m_attachments) {
    m_attachments.emplace();
    for (const auto& e : m_entries)
      if (auto tag = entry_cosign_tag(e); tag && media_type::is_image_manifest(e.media_type) && e.digest != tag->subject)
        m_attachments->emplace(tag->subject, Attachment{tag->suffix, e});
  }
  std::vector<Attachment> out;
  auto [from, to] = m_attachments->equal_range(subject.digest);
  for (auto it = from; it != to; ++it) out.push_back(it->second);
  return out;
}

std::vector<Descriptor> LayoutReader::referrers(const Descriptor& subject, const std::string& artifact_type)
{
  return m_metadata.referrers(subject, artifact_type);
}

std::unique_ptr<LayoutReader> LayoutReader::open(const fs::path& path, BundleFormat format, const Options& options)
{
  auto reader = format == BundleFormat::dir ? detail::open_dir_layout(path, options) : detail::open_tar_layout(path, options);
  reader->scan();
  return reader;
}

} // namespace ferry

#include <ferry/store/memory_store.hpp>
#include <algorithm>

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>

namespace ferry {

std::unique_ptr<Reader> Source::fetch_from(const Descriptor& desc, std::uint64_t offset)
{
  auto r = fetch(desc);
  char buf[65536];
  for (std::uint64_t left = offset; left > 0;) {
    std::size_t k = r->read(buf, static_cast<std::size_t>(std::min<std::uint64_t>(left, sizeof buf)));
    if (k == 0) throw Error(Errc::digest_mismatch, desc.digest.str() + ": content ends before byte " + std::to_string(offset));
    left -= k;
  }
  return r;
}

std::string fetch_bytes(Source& source, const Descriptor& desc, std::size_t limit)
{
  if (desc.size > limit)
    throw Error(Errc::size_exceeds_limit,
                desc.digest.str() + ": size " + std::to_string(desc.size) + " exceeds the limit of " + std::to_string(limit));
  auto reader = source.fetch(desc);
  return read_all(*reader, limit, desc.digest.str());
}

std::unique_ptr<Reader> MemoryStore::fetch(const Descriptor& desc)
{
  std::lock_guard lock(m_mutex);
  auto it = m_content.find(desc.digest);
  if (it == m_content.end()) throw Error(Errc::not_found, desc.digest.str() + ": not found");
  return std::make_unique<VerifyingReader>(std::make_unique<StringReader>(it->second.second), desc.digest, desc.size,
                                           desc.digest.str());
}

bool MemoryStore::exists(const Descriptor& desc)
{
  std::lock_guard lock(m_mutex);
  return m_content.count(desc.digest) != 0;
}

Descriptor MemoryStore::resolve(const std::string& ref)
{
  std::lock_guard lock(m_mutex);
  if (auto it = m_tags.find(ref); it != m_tags.end()) return it->second;
  if (Digest::is_valid(ref))
    if (auto it = m_content.find(Digest::parse(ref)); it != m_content.end()) return it->second.first;
  throw Error(Errc::not_found, ref + ": not found");
}

void MemoryStore::index_referrers()
{
  while (!m_unindexed.empty()) {
    const Digest digest = *m_unindexed.begin();
    if (auto it = m_content.find(digest); it != m_content.end() && media_type::is_manifest(it->second.first.media_type)) {
      const auto& [desc, bytes] = it->second;
      Manifest m = Manifest::parse(bytes, desc.media_type, digest.str());
      if (m.subject) {
        m_referrers[m.subject->digest][digest] = referrer_descriptor(desc, m);
        m_subject_of[digest] = m.subject->digest;
      }
    }
    m_unindexed.erase(m_unindexed.begin());
  }
}

std::vector<Descriptor> MemoryStore::referrers(const Descriptor& subject, const std::string& artifact_type)
{
  std::lock_guard lock(m_mutex);
  index_referrers();
  std::vector<Descriptor> out;
  if (auto it = m_referrers.find(subject.digest); it != m_referrers.end())
    for (const auto& [digest, r] : it->second)
      if (artifact_type.empty() || r.artifact_type == artifact_type) out.push_back(r);
  return out;
}

void MemoryStore::push(const Descriptor& desc, Reader& content)
{
  VerifyingReader verified(std::make_unique<ReaderRef>(content), desc.digest, desc.size, desc.digest.str());
  std::string bytes = read_all(verified, k_max_manifest_size * 16, desc.digest.str());
  std::lock_guard lock(m_mutex);
  m_content[desc.digest] = {desc, std::move(bytes)};
  // Indexed again under the descriptor stored now (its media type decides how it parses).
  if (auto s = m_subject_of.find(desc.digest); s != m_subject_of.end()) {
    m_referrers[s->second].erase(desc.digest);
    m_subject_of.erase(s);
  }
  m_unindexed.insert(desc.digest);
}

void MemoryStore::put(const Descriptor& desc, std::string bytes)
{
  StringReader r(std::move(bytes));
  push(desc, r);
}

void MemoryStore::tag(const Descriptor& desc, const std::string& tag)
{
  std::lock_guard lock(m_mutex);
  if (m_content.count(desc.digest) == 0) throw Error(Errc::not_found, "tag " + tag + ": " + desc.digest.str() + " not found");
  m_tags[tag] = desc;
}

std::optional<std::string> MemoryStore::get(const Digest& digest) const
{
  std::lock_guard lock(m_mutex);
  auto it = m_content.find(digest);
  if (it == m_content.end()) return std::nullopt;
  return it->second.second;
}

std::optional<Descriptor> MemoryStore::descriptor(const Digest& digest) const
{
  std::lock_guard lock(m_mutex);
  auto it = m_content.find(digest);
  if (it == m_content.end()) return std::nullopt;
  return it->second.first;
}

std::size_t MemoryStore::size() const
{
  std::lock_guard lock(m_mutex);
  return m_content.size();
}

std::vector<Descriptor> MemoryStore::all() const
{
  std::lock_guard lock(m_mutex);
  std::vector<Descriptor> out;
  for (const auto& [d, e] : m_content) out.push_back(e.first);
  return out;
}

} // namespace ferry

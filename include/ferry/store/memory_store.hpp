#pragma once
/// Content held in memory: the fake for tests and the metadata cache (design §4).
#include <ferry/store/target.hpp>

#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace ferry {

class MemoryStore : public Source {
public:
  std::unique_ptr<Reader> fetch(const Descriptor& desc) override;
  bool exists(const Descriptor& desc) override;
  Descriptor resolve(const std::string& ref) override;
  std::vector<Descriptor> referrers(const Descriptor& subject, const std::string& artifact_type = {}) override;
  /// Stores `content` (read to its end, checked against `desc`).
  void push(const Descriptor& desc, Reader& content);
  /// Points `tag` at stored content (resolve() then finds it).
  void tag(const Descriptor& desc, const std::string& tag);

  /// Stores bytes already verified against `desc` (digest is checked again).
  void put(const Descriptor& desc, std::string bytes);
  /// The bytes of `digest`, if stored.
  std::optional<std::string> get(const Digest& digest) const;
  /// The descriptor stored for `digest`, if any.
  std::optional<Descriptor> descriptor(const Digest& digest) const;
  std::vector<Descriptor> all() const;
  /// How many blobs/manifests are stored.
  std::size_t size() const;

private:
  /// Parses the manifests stored since the last call into the subject index (m_mutex held).
  /// A manifest that does not parse throws and stays unindexed (every query throws again).
  void index_referrers();

  mutable std::mutex m_mutex;
  std::map<Digest, std::pair<Descriptor, std::string>> m_content;
  std::map<std::string, Descriptor> m_tags;
  /// The referrers index: each manifest is parsed once, not once per query (a bundle of 1,000
  /// images asked for the referrers of each is otherwise 1,000,000 parses; issue 18).
  std::set<Digest> m_unindexed;
  std::map<Digest, std::map<Digest, Descriptor>> m_referrers;  ///< subject → referrer digest → descriptor
  std::map<Digest, Digest> m_subject_of;                        ///< indexed referrer → its subject
};

} // namespace ferry

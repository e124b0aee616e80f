#include <ferry/proof.hpp>
#include <ferry/util/text.hpp>

#include <ferry/error.hpp>
#include <ferry/util/parallel.hpp>

#include <algorithm>
#include <mutex>
#include <set>
#include <tuple>

namespace ferry {

namespace {

// What the destination served that is not what was pushed (a digest mismatch, a malformed
// manifest) is a difference to report, not a reason to stop proving.
bool is_difference(const Error& e)
{
  return e.code() == Errc::digest_mismatch || e.code() == Errc::invalid_manifest ||
         e.code() == Errc::size_exceeds_limit || e.code() == Errc::not_found;
}

} // namespace

const char* proof_gap_kind_name(ProofGap::Kind kind)
{
  switch (kind) {
  case ProofGap::Kind::manifest: return "manifest";
  case ProofGap::Kind::tag: return "tag";
  case ProofGap::Kind::referrer: return "referrer";
  }
  return "?";
}

std::string ProofGap::str() const
{
  switch (kind) {
  case Kind::manifest: return "manifest " + digest.str() + " in " + repository + ": " + detail;
  case Kind::tag: return "tag " + repository + ":" + tag + " (want " + digest.str() + "): " + detail;
  case Kind::referrer:
    return "referrer link " + digest.str() + " -> subject " + (subject ? subject->str() : "?") + " in " + repository +
           ": " + detail;
  }
  return detail;
}

void Proof::merge(const Proof& other)
{
  checked.manifests += other.checked.manifests;
  checked.tags += other.checked.tags;
  checked.referrers += other.checked.referrers;
  missing.insert(missing.end(), other.missing.begin(), other.missing.end());
}

std::string Proof::summary() const
{
  std::size_t total = checked.manifests + checked.tags + checked.referrers;
  if (ok())
    return "all " + counted(checked.manifests, "manifest") + ", " + counted(checked.tags, "tag") + " and " +
           counted(checked.referrers, "referrer link") + " arrived";
  std::string s = std::to_string(missing.size()) + " of " + counted(total, "check") + " failed: " + missing.front().str();
  if (missing.size() > 1) s += " (and " + std::to_string(missing.size() - 1) + " more)";
  return s;
}

Proof prove_destination(remote::Repository& repo, const Graph& graph, const std::vector<ProofRoot>& roots,
                        unsigned concurrency)
{
  Proof proof;
  std::mutex mutex;
  std::string where = repo.display();
  auto gap = [&](ProofGap g) {
    g.repository = where;
    std::lock_guard lock(mutex);
    proof.missing.push_back(std::move(g));
  };

  // 1. Every manifest by digest.
  auto manifests = graph.manifests_in_order();
  proof.checked.manifests = manifests.size();
  parallel_for_each(manifests, concurrency, [&](const Descriptor& m) {
    std::string detail;
    try {
      if (!repo.resolve_optional(m.digest.str())) detail = "not found";
    } catch (const Error& e) {
      if (!is_difference(e)) throw;
      detail = e.what();
    }
    if (!detail.empty()) gap({ProofGap::Kind::manifest, {}, m.digest, {}, std::nullopt, detail});
  });

  // 2. Tags: the last root given a tag is the one it points at.
  std::vector<std::pair<std::string, Digest>> tags;
  for (const auto& root : roots) {
    if (root.tag.empty()) continue;
    auto it = std::find_if(tags.begin(), tags.end(), [&](const auto& t) { return t.first == root.tag; });
    if (it != tags.end()) it->second = root.desc.digest;
    else tags.emplace_back(root.tag, root.desc.digest);
  }
  for (const auto& [subject, list] : graph.attachments)
    for (const auto& a : list) tags.emplace_back(subject.cosign_tag(a.suffix), a.desc.digest);
  proof.checked.tags = tags.size();
  parallel_for_each(tags, concurrency, [&](const std::pair<std::string, Digest>& entry) {
    const auto& [tag, digest] = entry;
    std::string detail;
    try {
      auto current = repo.resolve_optional(tag);
      if (!current) detail = "not found";
      else if (current->digest != digest) detail = "points at " + current->digest.str();
    } catch (const Error& e) {
      if (!is_difference(e)) throw;
      detail = e.what();
    }
    if (!detail.empty()) gap({ProofGap::Kind::tag, {}, digest, tag, std::nullopt, detail});
  });

  // 3. Referrer links, as a client discovering referrers would see them.
  std::vector<std::pair<Digest, std::vector<Descriptor>>> subjects(graph.referrers.begin(), graph.referrers.end());
  for (const auto& [subject, refs] : subjects) proof.checked.referrers += refs.size();
  parallel_for_each(subjects, concurrency, [&](const std::pair<Digest, std::vector<Descriptor>>& entry) {
    const auto& [subject, refs] = entry;
    const Descriptor& subject_desc = graph.nodes.at(subject);
    std::set<Digest> listed;
    std::string detail;
    try {
      for (const auto& d : repo.referrers(subject_desc)) listed.insert(d.digest);
      detail = repo.referrers_api(subject_desc) ? "not listed by the referrers API"
                                                : "not in the fallback index " + subject.fallback_tag();
    } catch (const Error& e) {
      if (!is_difference(e)) throw;
      detail = e.what();
    }
    for (const auto& r : refs)
      if (!listed.count(r.digest)) gap({ProofGap::Kind::referrer, {}, r.digest, {}, subject, detail});
  });

  // A stable order for reports (the checks run in parallel): by kind, then by what is missing.
  std::sort(proof.missing.begin(), proof.missing.end(), [](const ProofGap& a, const ProofGap& b) {
    return std::tie(a.kind, a.digest, a.tag, a.subject) < std::tie(b.kind, b.digest, b.tag, b.subject);
  });
  return proof;
}

} // namespace ferry

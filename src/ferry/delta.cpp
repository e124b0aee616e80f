#include <ferry/delta.hpp>

#include <ferry/error.hpp>
#include <ferry/util/text.hpp>

#include <set>

namespace ferry {

DeltaBaseCheck delta_base_inventories(std::vector<std::pair<std::string, Inventory>> bases)
{
  return [bases = std::move(bases)](const DeltaRecord& delta, ProblemList& problems) {
    std::vector<std::map<Digest, Inventory::Held>> held;
    std::string names;
    for (const auto& [name, inv] : bases) {
      held.push_back(inv.blobs());
      names += (names.empty() ? "" : ", ") + name;
    }
    for (const auto& b : delta.left_out) {
      bool found = false;
      for (const auto& h : held) {
        auto it = h.find(b.digest);
        if (it != h.end() && it->second.size == b.size) found = true;
      }
      if (!found)
        problems.add(b.digest.str(), "blob " + b.digest.str() + " (" + human_bytes(b.size) +
                                         ") left out of the delta is not in the base inventory " + names);
    }
    bool same = std::any_of(bases.begin(), bases.end(), [&](const auto& b) { return b.second.digest() == delta.base; });
    return "base inventory " + names + (same ? "" : " (not the inventory " + delta.base.str() + " the delta was made against)");
  };
}

DeltaBaseCheck delta_base_bundles(std::vector<std::shared_ptr<LayoutReader>> bases)
{
  return [bases = std::move(bases)](const DeltaRecord& delta, ProblemList& problems) {
    std::set<Digest> found;
    std::string names;
    for (const auto& base : bases) {
      names += (names.empty() ? "" : ", ") + base->path().string();
      std::vector<Descriptor> wanted;
      for (const auto& b : delta.left_out) {
        if (found.count(b.digest)) continue;
        const BlobEntry* e = base->blob(b.digest);
        if (!e || e->size != b.size) continue;
        Descriptor d;
        d.media_type = "application/octet-stream";
        d.digest = b.digest;
        d.size = b.size;
        wanted.push_back(d);
      }
      if (wanted.empty()) continue;
      // One pass; the reader checks size and digest, a mismatch throws naming the blob (and
      // the blobs after it in this base stay unfound: reported below).
      std::vector<char> buf(1 << 20);
      try {
        base->for_each_blob(wanted, [&](const Descriptor& desc, Reader& r) {
          while (r.read(buf.data(), buf.size()) > 0) {
          }
          found.insert(desc.digest);
        });
      } catch (const Error& e) {
        problems.add("", base->path().string() + ": " + e.what());
      }
    }
    for (const auto& b : delta.left_out)
      if (!found.count(b.digest))
        problems.add(b.digest.str(), "blob " + b.digest.str() + " (" + human_bytes(b.size) +
                                         ") left out of the delta is not in the base bundle " + names);
    return "base bundle " + names;
  };
}

DeltaBaseCheck delta_base_against(LayoutReader& bundle, std::string target, RepositoryOpener open, unsigned concurrency)
{
  return [&bundle, target = std::move(target), open = std::move(open), concurrency](const DeltaRecord& delta,
                                                                                     ProblemList& problems) {
    BundleContents contents = classify(bundle);
    DeltaAtTarget at = delta_at_target(bundle, contents, delta, target, {}, open, concurrency);
    for (const auto& m : at.missing)
      problems.add(m.blob.digest.str(), "blob " + m.blob.digest.str() + " (" + human_bytes(m.blob.size) +
                                            ") left out of the delta is not in " + m.repository);
    return "registry " + target;
  };
}

std::string delta_missing_line(const DeltaAtTarget& at, const DeltaRecord& delta, const std::string& target)
{
  std::set<Digest> blobs;
  for (const auto& m : at.missing) blobs.insert(m.blob.digest);
  std::string list;
  for (std::size_t i = 0; i < at.missing.size() && i < 3; ++i)
    list += (i ? ", " : "") + at.missing[i].blob.digest.str() + " in " + at.missing[i].repository;
  if (at.missing.size() > 3) list += " and " + std::to_string(at.missing.size() - 3) + " more";
  return counted(blobs.size(), "blob") + " the delta leaves out (its base " + delta.base.str() + ", " + delta.base_kind +
         " " + delta.base_source + ") " + (blobs.size() == 1 ? "is" : "are") + " not at " + target + ": " + list +
         "; push the base first, or save a full bundle";
}

} // namespace ferry

#include <ferry/verify/integrity.hpp>

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>

#include <set>

namespace ferry::verify {

void check_graph(LayoutReader& bundle, const DeltaRecord* delta)
{
  if (bundle.options().depth != ReadDepth::verify)
    throw Error(Errc::internal, bundle.path().string() + ": the graph check needs a bundle read at verify depth");
  auto& problems = bundle.problems();
  std::set<Digest> seen;
  std::vector<std::pair<Descriptor, std::string>> stack;
  for (const auto& e : bundle.index_entries()) stack.emplace_back(e, "index.json");
  while (!stack.empty()) {
    auto [desc, parent] = stack.back();
    stack.pop_back();
    const BlobEntry* blob = bundle.blob(desc.digest);
    if (!blob) {
      if (delta && !media_type::is_manifest(desc.media_type))
        if (const LeftOutBlob* left = delta->find(desc.digest)) {
          if (left->size != desc.size)
            problems.add(desc.digest.str(), "descriptor in " + parent + " gives size " + std::to_string(desc.size) + " for " +
                                                desc.digest.str() + ", the delta record " + std::to_string(left->size));
          continue;
        }
      problems.add(desc.digest.str(), "blob " + desc.digest.str() + " referenced by " + parent + " is missing");
      continue;
    }
    if (blob->size != desc.size)
      problems.add(desc.digest.str(), "descriptor in " + parent + " gives size " + std::to_string(desc.size) + " for " +
                                          desc.digest.str() + ", the blob has " + std::to_string(blob->size) + " bytes");
    if (!seen.insert(desc.digest).second) continue;
    if (!media_type::is_manifest(desc.media_type)) continue;
    auto bytes = bundle.metadata().get(desc.digest);
    if (!bytes) continue;  // its problem (digest mismatch, invalid JSON) is already recorded
    Manifest m = Manifest::parse(*bytes, desc.media_type, desc.digest.str());
    for (const auto& child : m.manifests) stack.emplace_back(child, desc.digest.str());
    if (m.config) stack.emplace_back(*m.config, desc.digest.str());
    for (const auto& layer : m.layers) stack.emplace_back(layer, desc.digest.str());
    if (m.subject && !bundle.blob(m.subject->digest))
      problems.add(desc.digest.str(), "subject " + m.subject->digest.str() + " of referrer " + desc.digest.str() + " is missing");
  }
}

} // namespace ferry::verify

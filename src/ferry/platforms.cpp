// `--platform` on an index, shared by save and copy (issue 14): which platform images a
// reference names, when taking some of them would leave a signature unverifiable, and the
// tags that keep several of them apart.
#include <ferry/ops.hpp>

#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>

#include <algorithm>
#include <cctype>

namespace ferry {

namespace {

// Reference: Notary Project signature specification (artifactType
// application/vnd.cncf.notary.signature); cosign's OCI 1.1 referrers
// (application/vnd.dev.cosign.artifact.sig.v1+json) and Sigstore bundles
// (application/vnd.dev.sigstore.bundle*+json).
bool is_signature_referrer(remote::Repository& repo, const Descriptor& r)
{
  if (r.artifact_type == media_type::k_notary_signature || r.artifact_type == "application/vnd.dev.cosign.artifact.sig.v1+json" ||
      r.artifact_type.rfind("application/vnd.dev.sigstore.bundle", 0) == 0)
    return true;
  if (!r.artifact_type.empty() || !media_type::is_image_manifest(r.media_type)) return false;
  // Listed without an artifactType (an older Notation signature carries its type as the
  // config's media type): the manifest decides.
  std::string bytes = repo.fetch_manifest_bytes(r);
  Manifest m = Manifest::parse(bytes, r.media_type, r.digest.str());
  return is_signature_manifest(m) || is_cosign_signature_manifest(m);
}

} // namespace

void refuse_signed_index_subset(remote::Repository& repo, const Reference& ref, const std::vector<Platform>& platforms,
                                const GraphOptions& graph, const std::string& verb, const WaysForward& ways_forward)
{
  if (platforms.empty() || !graph.referrers) return;
  Descriptor top = repo.resolve(ref.digest ? ref.digest->str() : ref.ref_or_default());
  if (!media_type::is_index(top.media_type)) return;
  auto chosen = select_platforms(top, repo.fetch_manifest_bytes(top), platforms);
  if (chosen.empty()) return;  // resolve_roots names the platforms not found
  const auto& types = graph.artifact_types;
  auto refusal = [&](const std::string& signature) {
    std::string wanted;
    for (const auto& p : platforms) wanted += (wanted.empty() ? "" : " ") + std::string("--platform ") + p.str();
    return Error(Errc::unsupported, ref.str() + ": signed index " + ref.name() + "@" + top.digest.str() + " (signature " +
                                        signature + "): " + wanted + " would " + verb +
                                        " its platform images as images of their own, without the index that its "
                                        "signature covers, so that signature could never verify; " +
                                        ways_forward(chosen));
  };
  for (const auto& r : repo.referrers(top)) {
    if (!types.empty() && std::find(types.begin(), types.end(), r.artifact_type) == types.end()) continue;
    if (!is_signature_referrer(repo, r)) continue;
    throw refusal(r.digest.str());
  }
  // cosign's tag scheme: a `.sig` or `.att` of the index signs it just the same.
  if (!graph.cosign_tags) return;
  for (const auto& a : repo.attachments(top)) {
    if (a.suffix == "sbom") continue;
    if (!types.empty()) {
      Manifest m = Manifest::parse(repo.fetch_manifest_bytes(a.desc), a.desc.media_type, a.desc.digest.str());
      if (m.layers.empty() || std::find(types.begin(), types.end(), m.layers[0].media_type) == types.end()) continue;
    }
    throw refusal(a.desc.digest.str() + ", cosign tag " + top.digest.cosign_tag(a.suffix));
  }
}

std::vector<std::string> platform_image_tags(const std::string& tag, const std::vector<Descriptor>& images)
{
  std::vector<std::string> tags(images.size(), tag);
  if (images.size() < 2 || tag.empty()) return tags;
  for (std::size_t i = 0; i < images.size(); ++i) {
    std::string suffix;
    if (images[i].platform) {
      const auto& p = *images[i].platform;
      for (const auto& part : {p.os, p.architecture, p.variant}) {
        if (part.empty()) continue;
        suffix += "-";
        for (char ch : part) suffix += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_') ? ch : '-';
      }
    }
    tags[i] = tag + suffix;
  }
  for (std::size_t i = 0; i < images.size(); ++i)
    if (!Reference::is_valid_tag(tags[i]) || std::count(tags.begin(), tags.end(), tags[i]) > 1)
      tags[i] = tag.substr(0, 114) + "-" + images[i].digest.hex().substr(0, 12);
  return tags;
}

} // namespace ferry

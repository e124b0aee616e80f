#pragma once
/// The storage seam (after oras-go's ReadOnlyGraphTarget, design §4): what content can be
/// read from. Writing has one implementation per kind (remote::Repository, BundleWriter).
#include <ferry/descriptor.hpp>
#include <ferry/util/reader.hpp>

#include <memory>
#include <string>
#include <vector>

namespace ferry {

/// A cosign attachment found by its tag (`<alg>-<hex>.sig`, `.att`, `.sbom`; cosign's tag
/// scheme, beside the OCI 1.1 referrers): the manifest the tag points at.
struct Attachment {
  std::string suffix;  ///< sig, att, sbom
  Descriptor desc;
};

/// Somewhere content can be read from.
class Source {
public:
  virtual ~Source() = default;
  /// Opens the content of `desc`. The reader checks size and digest and throws at its end
  /// when they do not match: read it to the end before trusting what it gave.
  virtual std::unique_ptr<Reader> fetch(const Descriptor& desc) = 0;
  /// The content of `desc` from byte `offset` on (to resume an interrupted copy). The
  /// caller checks the digest over the bytes it already has and these; the default reads
  /// and drops the first `offset` bytes of fetch().
  virtual std::unique_ptr<Reader> fetch_from(const Descriptor& desc, std::uint64_t offset);
  virtual bool exists(const Descriptor& desc) = 0;
  /// Resolves a tag or digest to the descriptor of a manifest.
  virtual Descriptor resolve(const std::string& ref) = 0;
  /// Manifests whose `subject` is `subject` (their referrer descriptors), filtered by
  /// artifact type when `artifact_type` is not empty.
  virtual std::vector<Descriptor> referrers(const Descriptor& subject, const std::string& artifact_type = {}) = 0;
  /// cosign's tag-based attachments of `subject` (the tags `<alg>-<hex>.sig/.att/.sbom` that
  /// exist), in that order. Sources without tags have none.
  virtual std::vector<Attachment> attachments(const Descriptor& subject)
  {
    (void)subject;
    return {};
  }
};

/// Fetches small content (manifests) whole, bounded by `limit`.
std::string fetch_bytes(Source& source, const Descriptor& desc, std::size_t limit);

} // namespace ferry

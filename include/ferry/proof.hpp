#pragma once
/// Proof that a push arrived (design §1 promise 1): after push or copy, ferry re-reads the
/// destination and compares it with the graph it sent. Anything missing is a gap; the
/// command fails when there is one.
#include <ferry/graph.hpp>
#include <ferry/remote/repository.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ferry {

/// A root as it should be found in the destination repository.
struct ProofRoot {
  Descriptor desc;
  std::string tag;  ///< empty: pushed untagged (by digest only)
};

/// One thing the destination lacks or serves differently.
struct ProofGap {
  enum class Kind { manifest, tag, referrer };
  Kind kind = Kind::manifest;
  std::string repository;  ///< host/repository
  Digest digest;           ///< the manifest (for a tag: the one it should point at; for a referrer link: the referrer)
  std::string tag;         ///< Kind::tag
  std::optional<Digest> subject;  ///< Kind::referrer
  std::string detail;      ///< what was found instead ("not found", "points at sha256:…", …)

  /// "referrer link sha256:… -> subject sha256:… in host/repo: not in the fallback index".
  std::string str() const;
};

const char* proof_gap_kind_name(ProofGap::Kind kind);

struct Proof {
  struct Counts {
    std::size_t manifests = 0;
    std::size_t tags = 0;
    std::size_t referrers = 0;  ///< referrer links (subject → referrer)
  };
  Counts checked;
  std::vector<ProofGap> missing;

  bool ok() const { return missing.empty(); }
  /// Adds another repository's proof to this one.
  void merge(const Proof& other);
  /// One line: "all 12 manifests, 2 tags and 5 referrer links arrived" or "3 of 19 checks
  /// failed: <first gap> (and 2 more)".
  std::string summary() const;
};

/// Re-reads `repo` and compares it with `graph` as it was pushed there with `roots`:
/// - every manifest of the graph by digest (GET; the content's digest is checked, which is
///   stronger than HEAD and `Docker-Content-Digest`),
/// - each tag of `roots` by tag: it must resolve (GET) to its root's digest; when several
///   roots carry the same tag, the last one is expected (it was written last),
/// - every referrer link of the graph (subject → referrer) through the referrers API or
///   the `sha256-<hex>` fallback index (Repository::referrers).
/// Differences are gaps in the result; failures to talk to the registry at all (network,
/// auth) are thrown as Error.
Proof prove_destination(remote::Repository& repo, const Graph& graph, const std::vector<ProofRoot>& roots,
                        unsigned concurrency = 4);

} // namespace ferry

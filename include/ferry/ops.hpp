#pragma once
/// The work behind ferry's commands: save, push, copy, inspect. Results are plain data; the
/// CLI formats them (design §4 CLI).
#include <ferry/bundle.hpp>
#include <ferry/graph.hpp>
#include <ferry/proof.hpp>
#include <ferry/record.hpp>
#include <ferry/progress.hpp>
#include <ferry/remote/repository.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/verify/verifier.hpp>
#include <ferry/trust_material.hpp>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

struct Inventory;

/// Opens the remote repository `repository` on `registry` (host[:port]).
using RepositoryOpener =
    std::function<std::shared_ptr<remote::Repository>(const std::string& registry, const std::string& repository)>;
/// Receives human progress lines (for stderr).
using Logger = std::function<void(const std::string&)>;

struct SaveOptions {
  std::vector<std::string> references;
  std::filesystem::path output;
  std::optional<BundleFormat> format;
  std::vector<Platform> platforms;
  GraphOptions graph;
  unsigned concurrency = 4;
  /// Trust material to carry (design §3); none when empty.
  std::vector<TrustFile> trust;
  /// `--keep-going`: a reference that cannot be resolved or whose graph cannot be fetched is
  /// reported in SaveResult::failures and left out; the others are saved.
  bool keep_going = false;
  /// When set (`--fetch-crls`), CRLs that signatures in the bundle need and that are not
  /// carried are downloaded from their distribution points and carried.
  std::function<std::string(const std::string& url)> fetch_crl;
  /// Reuse what an interrupted save of the same plan left in `<output>.partial` (issue 5).
  bool resume = true;
  /// `--dry-run`: resolve the references and walk their graphs (manifests are fetched),
  /// then report the plan in SaveResult::plan; no blob is fetched and nothing is written.
  bool dry_run = false;
  /// Told about every blob byte fetched (a progress display); may be null.
  Progress* progress = nullptr;
  /// The image set the references were expanded from (ImageSetExpansion::record_json), kept
  /// in the bundle's record (record.hpp).
  std::optional<std::string> imageset_record;
  /// `--have FILE` / `--since BUNDLE` (issue 16): a delta bundle. Blobs the inventory holds
  /// (same digest and size) are left out and recorded by digest in the bundle's record with
  /// the inventory's digest as its base; manifests, and the blobs of signatures (envelopes,
  /// cosign payloads, Sigstore bundles), are always carried.
  std::shared_ptr<const Inventory> have;
  /// `--max-size`: write an archive bundle as volumes NAME.001, NAME.002, … of at most this
  /// many bytes each (store/volumes.hpp).
  std::optional<std::uint64_t> volume_size;
};

/// One step of a dry run's plan: `action` on `desc` (in `repository`, for push).
struct PlanStep {
  std::string action;      ///< save: "write" (manifests, trust files), "fetch" (blobs) or "leave out"
                           ///< (a delta's blobs the base has); push:
                           ///< "upload", "mount", "present", "push", "tag" (a new tag),
                           ///< "move" (an existing tag moved to `desc`), "unchanged"
  std::string repository;  ///< push: the destination repository; save: the source one
  Descriptor desc;
  std::string tag;  ///< push "tag"/"move"/"unchanged": the tag
  std::optional<Digest> previous = std::nullopt;  ///< push "move": the digest the tag points at now
};

struct SaveResult {
  std::filesystem::path output;
  BundleFormat format = BundleFormat::dir;
  std::vector<BundleRoot> roots;
  std::size_t manifests = 0;
  std::size_t referrers = 0;
  std::size_t blobs = 0;
  std::uint64_t bytes = 0;
  /// The trust artifact's manifest digest, when trust material was carried.
  std::optional<Digest> trust_pin;
  /// With keep_going: "reference: reason" for every reference left out.
  std::vector<std::string> failures;
  /// Blobs and bytes taken over from an interrupted save instead of fetched again.
  std::size_t resumed_blobs = 0;
  std::size_t continued_blobs = 0;  ///< blobs continued from a checkpoint
  std::uint64_t resumed_bytes = 0;
  /// Dry run: every bundle entry in order, and the partial output a real run would resume
  /// from, if one is there.
  bool dry_run = false;
  std::vector<PlanStep> plan;
  std::optional<std::filesystem::path> partial;
  /// A delta (SaveOptions::have): its base and what it left out, as recorded in the bundle.
  std::optional<DeltaRecord> delta;
};

/// Copies every reference with its whole graph (and referrers) into a new bundle,
/// atomically. References are all parsed before anything is fetched.
SaveResult save(const SaveOptions& options, const RepositoryOpener& open, const Logger& log);

/// One `--map` of push: `SRC_REPO=DST_REPO` renames a source repository;
/// `SRC_REPO:TAG=DST_REPO:TAG` sends one tag of it to another repository and tag (its
/// referrers follow it). DST is below the target namespace.
struct PushMap {
  std::string source_repository;
  std::string source_tag;  ///< empty: the whole repository
  std::string repository;
  std::string tag;  ///< set exactly when source_tag is

  /// Parses "SRC=DST"; throws Errc::invalid_argument (a usage error) for anything but
  /// REPO=REPO or REPO:TAG=REPO:TAG with valid repository names and tags.
  static PushMap parse(const std::string& text);
  std::string str() const;
};

struct PushOptions {
  std::string target;
  /// Renames, applied before the target namespace is prefixed: a tag's map before its
  /// repository's. No two may have the same source; a tag map that matches no root of the
  /// bundle is an error (nothing is sent).
  std::vector<PushMap> map;
  unsigned concurrency = 4;
  /// `--no-clobber`: refuse (throw, before anything is sent) when a destination tag exists
  /// and points at another digest than the one the push would give it.
  bool no_clobber = false;
  /// `push --verify`: verify the bundle first (verify::verify_bundle with these options,
  /// each root's trust policy statement chosen by its destination repository); when it
  /// fails nothing is sent to any registry (design §1 promise 3). The bundle must have been
  /// opened at ReadDepth::verify.
  std::optional<verify::VerifyOptions> verify;
  /// With `verify`: refuse the push (nothing is sent) when a manifest would be pushed that
  /// no verified signature covers (PushResult::unverified).
  bool only_verified = false;
  /// Runs after verification passed and before anything is sent. For tests (the CLI sets
  /// it only from FERRY_TEST_HOOK_AFTER_VERIFY).
  std::function<void()> after_verify;
  /// Runs after everything is pushed and before the destination is re-read for the proof.
  /// For tests (the CLI sets it only from FERRY_TEST_HOOK_BEFORE_PROOF).
  std::function<void()> before_proof;
  /// `--dry-run`: ask the destination what it has (HEAD, tag lookups) and report the plan in
  /// PushResult::plan; nothing is uploaded, mounted, written or tagged, and there is no proof.
  bool dry_run = false;
  /// Told about every blob byte uploaded (a progress display); may be null.
  Progress* progress = nullptr;
  /// `--have FILE` (issue 18): an inventory of the destination registry (`ferry inventory
  /// REGISTRY`, kind "registry", of the target's host). A blob a destination repository lacks
  /// that the inventory places in another repository is mounted from there, not uploaded.
  /// Without it, the roots' source repositories are the mount sources when the bundle was
  /// saved from the target registry itself. Mounts that fail fall back to uploads.
  std::shared_ptr<const Inventory> have;
};

/// A manifest a push sends that no verified signature covers: not a root whose signature
/// verified, not reachable from one through `manifests`, and not a signature that verified
/// (a referrer such as an SBOM, a signature of something else, a referrer that is itself a
/// runnable image, a root admitted by a policy that skips verification).
struct UnverifiedManifest {
  Descriptor desc;
  std::string artifact_type;
  std::string reason;
};

struct PushResult {
  struct Root {
    std::string destination;  ///< registry/repo:tag or @digest
    Descriptor desc;
  };
  std::vector<Root> roots;
  std::size_t blobs_pushed = 0;
  std::size_t blobs_skipped = 0;
  std::size_t blobs_mounted = 0;
  std::uint64_t bytes_pushed = 0;
  std::size_t manifests_pushed = 0;
  std::size_t manifests_skipped = 0;
  std::size_t tags_written = 0;  ///< new and moved tags
  std::size_t tags_unchanged = 0;
  /// A destination tag that pointed at another digest and was moved (dry run: would be).
  struct MovedTag {
    std::string repository;  ///< host/repository
    std::string tag;
    Digest previous;  ///< what it pointed at
    Descriptor desc;  ///< what it points at now
  };
  std::vector<MovedTag> tags_moved;
  /// Referrer manifests (signatures, SBOMs, ...: manifests reached through a subject) put
  /// into a destination repository, and those already there; each counted once per
  /// repository it lands in. Included in manifests_pushed/manifests_skipped.
  std::size_t referrers_pushed = 0;
  std::size_t referrers_skipped = 0;
  std::size_t fallback_indexes_written = 0;
  /// Per destination repository: whether it serves the referrers API.
  std::map<std::string, bool> referrers_api;
  /// The digest of the bundle's index.json as read (and verified) once: the content pushed.
  std::optional<Digest> bundle_digest;
  /// The verification report when verification was asked for. When it failed, nothing was
  /// sent to the destination and every other field is empty.
  std::optional<verify::VerifyReport> verification;
  /// With verification: the manifests pushed that no verified signature covers.
  std::vector<UnverifiedManifest> unverified;
  /// `only_verified` and `unverified` is not empty: nothing was sent.
  bool refused_unverified = false;
  /// The destination re-read after the push and compared with what was pushed.
  Proof proof;
  /// Dry run: what a push would do, per repository (the counters above then count what
  /// would be pushed, mounted, skipped, written).
  bool dry_run = false;
  std::vector<PlanStep> plan;

  bool verification_failed() const { return (verification && !verification->verified) || refused_unverified; }
  /// Verification (when asked for) passed and the proof found nothing missing. A push that
  /// is not ok failed: the CLI exits 3 (verification) or 1 (proof).
  bool ok() const { return !verification_failed() && proof.ok(); }
};

/// Pushes the opened `bundle` into `target` (host[:port][/namespace]): every blob of every
/// destination repository, each hashed on its way out against its digest, then the
/// manifests (children first, from the bytes read when the bundle was opened), then the
/// referrer links (fallback indexes merged where the registry has no referrers API), and
/// the tags last — so a blob that differs stops the push before any tag is written.
/// Idempotent: what the registry has is not sent again. Then re-reads the destination into
/// `proof`. With `options.verify`, verifies the bundle before anything is sent. Failed
/// verification and a failed proof are results (see PushResult::ok), errors before that
/// are thrown.
PushResult push(LayoutReader& bundle, const PushOptions& options, const RepositoryOpener& open, const Logger& log);

/// One line saying why a verification failed (the first integrity problem, else the first
/// artifact not verified).
std::string verification_failure(const verify::VerifyReport& report);
/// One line saying why a push or copy was refused before anything was sent.
std::string refusal_reason(const PushResult& result);

/// The manifests of `graph` that no verified signature in `report` covers.
std::vector<UnverifiedManifest> unverified_manifests(const verify::VerifyReport& report, const Graph& graph);

struct CopyOptions {
  /// SRC_REF: registry/repo[:tag][@digest].
  std::string source;
  /// DST_REF: registry/repo[:tag]. Without a tag the source tag is used; a source given by
  /// digest alone is copied untagged.
  std::string destination;
  std::vector<Platform> platforms;
  GraphOptions graph;
  unsigned concurrency = 4;
  /// `copy --verify`: the graph is staged in a temporary OCI layout directory under
  /// `staging_dir` (default: the system temp directory), verified there like a bundle, and
  /// pushed from it, so only verified bytes reach the destination; nothing is sent there
  /// when verification fails. Without it, blobs stream from source to destination.
  std::optional<verify::VerifyOptions> verify;
  std::filesystem::path staging_dir;
  /// As PushOptions::only_verified.
  bool only_verified = false;
  /// As PushOptions::after_verify and before_proof.
  std::function<void()> after_verify;
  std::function<void()> before_proof;
  /// As PushOptions::progress.
  Progress* progress = nullptr;
  /// As PushOptions::no_clobber: refuse to move an existing destination tag.
  bool no_clobber = false;
};

/// The roots `ref` names in `repo`: its manifest, or with `platforms` the matching children
/// of an index (Errc::not_found when none matches).
std::vector<Descriptor> resolve_roots(remote::Repository& repo, const Reference& ref, const std::vector<Platform>& platforms);

/// What a refused `--platform` suggests instead: given the platform images chosen, the ways
/// forward that keep signed content verifiable, as the end of the error line.
using WaysForward = std::function<std::string(const std::vector<Descriptor>& chosen)>;

/// `--platform` on an index takes some of its platform images as images of their own,
/// without the index (issue 14): a signature of the index covers the index's bytes, so it
/// would be left behind and could never verify. save and copy both call this before
/// anything is written or sent: when `ref` names an index with a signature referrer
/// (Notation, cosign, Sigstore bundle; an older Notation signature without artifactType by
/// its manifest) it throws Errc::unsupported, one line naming `ref`, the index by digest,
/// the signature, the --platform flags, what `verb` would do, and `ways_forward(chosen)`.
/// Nothing is checked without `platforms`, with `graph.referrers` off (--no-referrers), or
/// when `graph.artifact_types` leaves every signature out: the user asked for no signature.
void refuse_signed_index_subset(remote::Repository& repo, const Reference& ref, const std::vector<Platform>& platforms,
                                const GraphOptions& graph, const std::string& verb, const WaysForward& ways_forward);

/// The tags of the platform images of one index that --platform selected, in order, when
/// they would all carry `tag` (issue 14: one tag cannot name several manifests; skopeo,
/// umoci and a registry would each keep one): each becomes `<tag>-<os>-<arch>[-<variant>]`
/// (characters outside [A-Za-z0-9._] become '-'), or `<tag>-<12 hex of its digest>` where
/// that is not unique or not a valid tag. One image, or an empty `tag`, keeps `tag`.
std::vector<std::string> platform_image_tags(const std::string& tag, const std::vector<Descriptor>& images);

/// copy reports what push reports; roots name their destinations.
using CopyResult = PushResult;

/// Copies SRC_REF with its whole graph (referrers recursively, platform selection and
/// artifact-type filter as save) to DST_REF with push's semantics: blobs the destination
/// lacks (mounted when source and destination are one registry), manifests children first,
/// the tag, referrer links (fallback index merged), then the proof. Idempotent.
CopyResult copy(const CopyOptions& options, const RepositoryOpener& open, const Logger& log);

/// A node of the referrer tree shown by inspect.
struct InspectNode {
  Descriptor desc;
  std::string artifact_type;
  /// What a signature-like node is (signature_kind): notation-signature, sigstore-bundle,
  /// cosign-sig, cosign-att, cosign-sbom; empty for anything else.
  std::string kind;
  /// A cosign tag attachment's tag (`sha256-<hex>.sig`); empty otherwise.
  std::string tag;
  std::uint64_t size = 0;  ///< content size (manifest and what is under it)
  std::vector<InspectNode> manifests;  ///< index children
  std::vector<InspectNode> referrers;
  std::vector<InspectNode> attachments;  ///< cosign's tag attachments (.sig, .att, .sbom)
};

/// The kind of a signature-like manifest, as inspect and verify name it: "notation-signature",
/// "sigstore-bundle" (or cosign's older OCI 1.1 referrer), "cosign-sig", "cosign-att",
/// "cosign-sbom" (a cosign tag attachment, by `attachment_suffix`); "" for anything else.
std::string signature_kind(const Manifest& m, const std::string& attachment_suffix = {});

struct InspectResult {
  std::filesystem::path bundle;
  BundleFormat format = BundleFormat::dir;
  struct Root {
    std::string reference;  ///< source reference, or the tag when unknown
    std::string tag;
    InspectNode node;
  };
  std::vector<Root> roots;
  std::optional<Descriptor> trust;
  /// Titles of the trust material's files (trustpolicy.json, truststore/..., crl/...).
  std::vector<std::string> trust_files;
  /// The bundle's ferry.record (issue 16): its image set and, for a delta, its base and the
  /// blobs it leaves out (absent: none; a record that cannot be read is a warning).
  std::optional<BundleRecord> record;
  std::size_t manifests = 0;
  std::size_t blobs = 0;
  std::uint64_t bytes = 0;
  /// What other tools would trip on (ref_name_collisions): one line each.
  std::vector<std::string> warnings;
};

/// The graph of a bundle opened at ReadDepth::head (a `.tar.zst` only as far as the
/// manifests at its head).
InspectResult inspect(LayoutReader& bundle);

} // namespace ferry

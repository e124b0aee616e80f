#pragma once
// Shared pieces of the CLI front end: options every registry command takes, output helpers.
#include "progress.hpp"

#include <ferry/imageset.hpp>
#include <ferry/ops.hpp>
#include <ferry/util/text.hpp>
#include <ferry/remote/registries.hpp>
#include <ferry/verify/verifier.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace ferry::cli {

/// What a subcommand runs after parsing; returns the exit code.
using Action = std::function<int()>;

struct GlobalOptions {
  bool quiet = false;
  /// Progress bars, when stderr is a terminal and not -q (set by main after parsing).
  std::shared_ptr<TtyProgress> progress;
  /// When the command started (for the summary line's time and rate).
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

/// " in 1.2 s (34.5 MiB/s)": the end of every command's summary line.
std::string time_and_rate(const GlobalOptions& global, std::uint64_t bytes);

struct OutputOptions {
  bool json = false;
};

struct RegistryFlags {
  remote::RegistryOptions options;
  bool password_stdin = false;
  unsigned concurrency = 4;
  long timeout_s = 0;  ///< --timeout; 0: the transport's defaults
  /// Registers --plain-http, --insecure, --ca-file, --registry-config, -u, --password-stdin,
  /// --concurrency, --timeout on `cmd`.
  void add_to(CLI::App& cmd);
  /// Reads the password from stdin when asked; checks combinations.
  void finish();
};

/// cosign's verification flags, with cosign's names (issue 15): given to verify (and push /
/// copy --verify) to verify, and to save to carry them in the bundle's trust material.
struct CosignFlags {
  std::string trusted_root;
  std::vector<std::string> keys;
  CosignIdentityPolicy policy;
  /// Registers --trusted-root, --cosign-key, --certificate-identity[-regexp],
  /// --certificate-oidc-issuer[-regexp], --insecure-ignore-tlog, --insecure-ignore-sct,
  /// --use-signed-timestamps; `carry`: the help says they are carried (save).
  void add_to(CLI::App& cmd, bool carry);
  bool any() const { return !trusted_root.empty() || !keys.empty() || !policy.empty(); }
  /// Usage checks: regexps compile; an identity flag needs its pair.
  void check() const;
};

/// Trust options shared by verify and push --verify: --trust-policy, --trust-store, --crl,
/// --scope, --verification-time, cosign's flags (CosignFlags), --require.
struct TrustFlags {
  std::string trust_policy;
  std::string trust_store;
  std::vector<std::string> crls;
  std::string trust_pin;
  std::string scope;
  std::string time;
  /// --require-referrer-signatures (VerifyOptions::require_referrer_signatures).
  bool require_referrer_signatures = false;
  CosignFlags cosign;
  /// --require notation,cosign (VerifyOptions::require); "any" or empty: any kind given.
  std::string require;
  /// What build() used for cosign, for the report: the trusted root and keys (paths, or
  /// titles of carried files) and where the identity policy came from.
  mutable std::string cosign_root_used;
  mutable std::vector<std::string> cosign_keys_used;
  mutable std::string cosign_policy_source;  ///< "flags", the carried title, or empty
  mutable CosignIdentityPolicy cosign_policy_used;
  /// The bundle's own trust material, unpacked while verification runs.
  mutable std::shared_ptr<void> bundled;
  /// What build() used of the bundle's own trust material (--trust-pin): each file by its
  /// title in the trust artifact, for the report (never the directory it was unpacked in).
  struct CarriedFile {
    std::string title;
    std::string media_type;
    std::string digest;
  };
  mutable std::vector<CarriedFile> carried;
  mutable std::string carried_policy;  ///< title of the carried policy used; empty: local or none
  mutable bool carried_store = false;  ///< the carried trust store was used
  mutable std::vector<std::string> carried_crls;  ///< titles of the carried CRLs used
  mutable std::string policy_digest;   ///< digest of the policy bytes used
  void add_to(CLI::App& cmd);
  /// Usage checks, before the bundle is read: malformed values, and trust options missing
  /// (a usage error, exit 2; the bundle's head is read only to suggest the way forward).
  void check(const std::filesystem::path& bundle, BundleFormat format, bool integrity_only) const;
  /// Loads the trust material into verify options, the pinned material from `bundle` (the
  /// bundle verification reads, opened once). Malformed trust material is exit 1
  /// (Errc::invalid_manifest).
  verify::VerifyOptions build(const LayoutReader* bundle, bool integrity_only) const;
  /// The trust material the verdict rests on, for the auditor's record (verify's `trust`):
  /// files given by path, or the carried material by title and digest; null with
  /// --integrity-only. Call after build().
  nlohmann::json report_json(bool integrity_only) const;
};

/// --max-entries and --max-problems: the bounds on the work one bundle can cause
/// (design §8), for every command that reads a bundle.
struct LimitFlags {
  BundleLimits limits;
  /// --max-lines: human lines printed before the rest is cut (applied with set_line_limit
  /// as it is parsed).
  std::size_t max_lines = 100'000;
  /// Registers --max-entries and --max-lines; `problems`: --max-problems too (commands that
  /// report integrity problems).
  void add_to(CLI::App& cmd, bool problems);
  LayoutReader::Options options(ReadDepth depth) const { return {depth, limits}; }
};

/// Bounded output (design §8): at most `limit` lines for people (print_line, the logger),
/// then one line saying the rest was cut; `ferry: error:` lines and summary lines
/// (summary_line) always go out. JSON output is not cut.
void set_line_limit(std::size_t limit);
/// Whether one more detail line may go out (counts it; prints the cut notice once).
bool take_line(std::FILE* out);

/// Human output (design §8: what a bundle says is escaped before a terminal sees it). Every
/// line for people, on stdout or stderr, goes out through print_line (or out_line/err_line,
/// which format with printf's `fmt` first): the whole line is passed through
/// escape_for_terminal, so no text in it — annotation, reference, entry name, error message —
/// can end the line, move the cursor or reorder what follows; then the line's newline.
/// ferry's own ✓, ✗ and tree drawing pass unchanged. Never printf bundle text directly.
void print_line(std::FILE* out, std::string_view line);
void out_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
/// A command's summary line on stdout: printed even when the detail lines were cut.
void summary_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void err_line(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
/// printf into a std::string (to build a line in pieces for print_line).
std::string strprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/// Issue 14: the one line saying which files of other tools beside the layout (ctr
/// export's manifest.json, ...) were ignored and never pushed; empty when there were none.
std::string ignored_entries_note(const LayoutReader& bundle);

/// One referrer's verdict as verify and push --verify show it, unindented:
/// "✓ referrer sha256:… (type)[ of sha256:…]: verified" or "✗ …: NOT verified: reason".
std::string referrer_verdict_line(const verify::ReferrerVerdict& x, bool name_subject);
/// ", N of M referrers verified" for a summary line; empty when the report holds no referrer.
std::string referrer_count(const verify::VerifyReport& r);
/// A logger writing to stderr unless quiet (escaped, as print_line; above the progress bars).
Logger make_logger(const GlobalOptions& global);

/// A dry run's plan as JSON (save/push --dry-run --json) and as lines for people.
nlohmann::json plan_json(const std::vector<PlanStep>& plan);
/// A platform as OCI writes it: {"os", "architecture"}, with "variant" and "os.version"
/// only when present (save and inspect --json).
nlohmann::json platform_json(const Platform& p);
void print_plan(const std::vector<PlanStep>& plan);

/// The verification report as JSON (verify --json; push/copy --verify under `verification`).
nlohmann::json verify_report_json(const verify::VerifyReport& report);
/// A delta bundle's record as save, inspect and verify --json show it (null: a full bundle).
nlohmann::json delta_json(const std::optional<DeltaRecord>& delta);

/// Prints a JSON document on stdout: every non-ASCII character as a JSON `\u` escape (so no
/// C1 or bidi control reaches a terminal raw; control characters are escaped by JSON itself),
/// and a byte that is not UTF-8 (a tar entry name may hold any) as U+FFFD instead of throwing.
void print_json(const nlohmann::json& j);

/// `-f/--images-file`: reads the image set (a plain list or skopeo sync's YAML) and merges its
/// registries' tls-verify, cert-dir and credentials into `registry` (for that registry only).
ImageSet load_image_set(const std::string& path, remote::RegistryOptions& registry);
/// An opener handing out one Repository per registry/repository for the whole command (image
/// sets): a set names many tags of one repository, whose tags list (read to expand the set,
/// then again for cosign's tags of every image) and manifests are then read once, not once
/// per image. `registries` must outlive it.
RepositoryOpener shared_opener(remote::Registries& registries);
/// The expansion as the `imageSet` member of save/copy --json (the record's JSON).
nlohmann::json imageset_json(const ImageSetExpansion& expansion);
/// The expansion for people (save/copy --dry-run): one line per entry, then its references.
void print_imageset(const ImageSetExpansion& expansion);

/// Each subcommand registers itself and sets `action` when chosen.
void register_save(CLI::App& app, const GlobalOptions& global, Action& action);
void register_push(CLI::App& app, const GlobalOptions& global, Action& action);
void register_inspect(CLI::App& app, const GlobalOptions& global, Action& action);
void register_verify(CLI::App& app, const GlobalOptions& global, Action& action);
void register_sign(CLI::App& app, const GlobalOptions& global, Action& action);
void register_copy(CLI::App& app, const GlobalOptions& global, Action& action);
void register_inventory(CLI::App& app, const GlobalOptions& global, Action& action);
void register_serve(CLI::App& app, const GlobalOptions& global, Action& action);

} // namespace ferry::cli

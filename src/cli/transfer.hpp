#pragma once
// What the push and copy commands share (defined in push.cpp): --verify with the trust
// options, the test hook, and reporting a transfer (human or JSON) with its exit code.
#include "common.hpp"

#include <functional>
#include <optional>
#include <string>

namespace ferry::cli {

/// --verify, and the trust options verify takes (accepted only together with --verify).
struct VerifyGate {
  bool enabled = false;
  bool only_verified = false;
  TrustFlags trust;
  /// Registers --verify, --only-verified and the trust options (accepted only with --verify).
  void add_to(CLI::App& cmd);
  /// Usage checks of the trust options, before the bundle is read.
  void check(const std::filesystem::path& bundle, BundleFormat format) const;
  /// Verify options when --verify was given, with the trust material (pinned: carried in
  /// `bundle`, the one reader of the push).
  std::optional<verify::VerifyOptions> build(const LayoutReader* bundle) const;
};

/// TEST-ONLY hooks: the environment variable `name` holds a shell command run (std::system)
/// at one point of a push or copy, so that e2e tests can change things in between. Empty
/// when not set. FERRY_TEST_HOOK_AFTER_VERIFY: after --verify passed, before anything is
/// sent; FERRY_TEST_HOOK_BEFORE_PROOF: after everything was sent, before the destination is
/// re-read for the proof.
std::function<void()> test_hook(const char* name);

/// Prints a push or copy result: `doc` (the command's JSON, completed with counts,
/// verification and proof) on stdout with --json, else one line per root ("<verb>
/// DEST DIGEST") and a summary; the verification summary and proof gaps go to stderr.
/// Returns the exit code: 3 when verification failed, 1 when the proof found gaps (each
/// with one `ferry: error:` line naming `subject`), else 0.
/// With `collect`, the JSON document is stored there instead of printed (copy -f prints one
/// document for all its references).
int report_transfer(const PushResult& result, bool json, nlohmann::json doc, const std::string& verb,
                    const std::string& subject, const Logger& log, const GlobalOptions& global,
                    nlohmann::json* collect = nullptr);
/// `doc` completed with a push or copy result's counts, verification and proof.
nlohmann::json transfer_json(const PushResult& result, nlohmann::json doc);

} // namespace ferry::cli

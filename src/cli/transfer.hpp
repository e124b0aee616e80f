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
  TrustFlags trust;
  void add_to(CLI::App& cmd);
  /// Verify options when --verify was given (trust material loaded before anything else).
  std::optional<verify::VerifyOptions> build(const std::filesystem::path& bundle, BundleFormat format) const;
};

/// TEST-ONLY: FERRY_TEST_HOOK_BEFORE_PROOF=<shell command> is run (std::system) after a
/// push or copy has sent everything and before the destination is re-read for the proof,
/// so that e2e tests can change the destination in between. Empty when not set.
std::function<void()> test_hook_before_proof();

/// Prints a push or copy result: `doc` (the command's JSON, completed with counts,
/// verification and proof) on stdout with --json, else one line per root ("<verb>
/// DEST DIGEST") and a summary; the verification summary and proof gaps go to stderr.
/// Returns the exit code: 3 when verification failed, 1 when the proof found gaps (each
/// with one `ferry: error:` line naming `subject`), else 0.
int report_transfer(const PushResult& result, bool json, nlohmann::json doc, const std::string& verb,
                    const std::string& subject, const Logger& log, const GlobalOptions& global);

} // namespace ferry::cli

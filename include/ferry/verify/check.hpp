#pragma once
/// One check of one signature's verification, as every verifier reports it (Notation's six
/// checks, cosign/Sigstore's): its name, the action the policy gives it, its outcome.
#include <ferry/verify/trust_policy.hpp>

#include <string>

namespace ferry::verify {

enum class CheckResult { pass, fail, skipped };
const char* check_result_name(CheckResult r);

struct Check {
  /// Notation: integrity, authenticity, trustedIdentity, expiry, authenticTimestamp,
  /// revocation. cosign: see cosign.hpp (format, subject, signature, certificate, identity,
  /// sct, tlog, timestamp).
  std::string name;
  Action action = Action::enforce;
  CheckResult result = CheckResult::skipped;
  std::string reason;
};

} // namespace ferry::verify

#pragma once
/// ferry's one exception type and its error codes (design §5).
#include <stdexcept>
#include <string>

namespace ferry {

enum class Errc {
  not_found,
  digest_mismatch,
  size_exceeds_limit,
  invalid_reference,
  invalid_manifest,
  invalid_digest,
  invalid_argument,
  unsupported,
  unauthorized,
  denied,
  network,
  io,
  /// The disk (or a quota) is full: ENOSPC, EDQUOT.
  no_space,
  verification_failed,
  internal,
};

/// Name of an error code, e.g. "digest_mismatch".
const char* errc_name(Errc code);

/// Process exit code for an error code: 3 for verification failures, 2 for usage
/// errors, 1 for everything else (design §2).
int exit_code_for(Errc code);

/// Errc::no_space for ENOSPC and EDQUOT, Errc::io for every other errno.
Errc errc_for_errno(int err);

/// The exception thrown for every failure that is not an expected outcome.
class Error : public std::runtime_error {
public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), m_code(code) {}
  Errc code() const noexcept { return m_code; }

private:
  Errc m_code;
};

/// Rethrows the current ferry::Error with `context + ": "` prefixed to its message (unless
/// the message starts with it already), keeping the code; foreign exceptions become
/// Errc::internal (or io for filesystem).
[[noreturn]] void rethrow_with_context(const std::string& context);

} // namespace ferry

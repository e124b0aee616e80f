#pragma once
/// Offline revocation checking from CRLs (../shared/notation/SPEC.md §7, with the
/// offline rules of design §1: CRLs given with --crl or carried in the bundle).
#include <ferry/verify/openssl.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ferry::verify {

/// Facts about one CRL, for the report.
struct CrlInfo {
  std::string source;  ///< file path or bundle title it came from
  std::string issuer;  ///< RFC 2253
  TimePoint this_update{};
  std::optional<TimePoint> next_update;
  /// Whether it was fresh (next_update present and now <= next_update) at `now` of the
  /// last check; set by CrlSet::describe.
  bool fresh = false;
};

/// A set of CRLs (DER or PEM), indexed by issuer name.
class CrlSet {
public:
  /// Adds every CRL in a file (PEM may hold several), or every file of a directory.
  /// Throws ferry::Error naming the file when it holds no parsable CRL.
  void add_path(const std::filesystem::path& path);
  /// Adds CRL bytes (DER or PEM) with a source name.
  void add_bytes(std::string_view data, const std::string& source);
  bool empty() const { return m_crls.empty(); }
  /// Every CRL with its freshness at `now`.
  std::vector<CrlInfo> describe(TimePoint now) const;

  struct Entry {
    X509CrlPtr crl;
    CrlInfo info;
  };
  const std::vector<Entry>& entries() const { return m_crls; }

private:
  std::vector<Entry> m_crls;
};

enum class RevocationStatus { ok, revoked, unknown };
enum class RevocationPurpose { code_signing, timestamping };

struct CertRevocation {
  std::size_t index = 0;  ///< position in the chain
  std::string subject;
  RevocationStatus status = RevocationStatus::ok;
  std::string reason;  ///< why revoked/unknown, e.g. "CRL from CN=... is stale since 2026-01-01T00:00:00Z"
  std::optional<CrlInfo> crl;  ///< the CRL that decided, if any
};

struct RevocationResult {
  RevocationStatus status = RevocationStatus::ok;  ///< any revoked → revoked; else any unknown → unknown
  std::vector<CertRevocation> certs;
  /// One line for the report: "" when ok; else e.g. "signing certificate with subject
  /// \"CN=...\" is revoked" / "... revocation status is unknown: <reason>".
  std::string reason;
};

/// The URIs of a certificate's CRL distribution points (empty when it names none).
std::vector<std::string> crl_distribution_points(X509* cert);

/// Checks every certificate of `chain` but the root (SPEC §7): a certificate with neither
/// CRL distribution points nor OCSP URLs is not revocable (ok); one with only OCSP is
/// unknown offline; one with CRL distribution points is checked against the CRLs in
/// `crls` issued by the next certificate of the chain (issuer name match and a signature
/// that verifies with that certificate's key; none → unknown; next_update missing or
/// passed → unknown, naming the CRL and since when; unknown critical extensions → unknown);
/// a listed serial → revoked, with certificateHold/removeFromCRL and invalidity-date rules
/// (invalidity date honoured only when `signing_time` is given). Never throws for bad data
/// in the chain: such problems make the status unknown with a reason.
RevocationResult check_revocation(const Chain& chain, const CrlSet& crls, TimePoint now,
                                  std::optional<TimePoint> signing_time, RevocationPurpose purpose);

} // namespace ferry::verify

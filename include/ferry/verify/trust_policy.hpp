#pragma once
/// Notation trust policy (trustpolicy.json / trustpolicy.oci.json) and trusted identities
/// (../shared/notation/SPEC.md §5.2, §6 level table).
#include <ferry/verify/openssl.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ferry::verify {

enum class Level { strict, permissive, audit, skip };
enum class Action { enforce, log, skip };

/// The action per check for a statement (level table + overrides).
struct VerificationLevel {
  Level level = Level::strict;
  Action integrity = Action::enforce;
  Action authenticity = Action::enforce;
  Action authentic_timestamp = Action::enforce;
  Action expiry = Action::enforce;
  Action revocation = Action::enforce;
};

struct TrustPolicyStatement {
  std::string name;
  std::vector<std::string> registry_scopes;  ///< as written
  /// registry_scopes through Reference::normalise_scope ("*" stays "*"), in the same order;
  /// filled by TrustPolicyDocument::parse, matched by `applicable`.
  std::vector<std::string> normalised_scopes;
  VerificationLevel verification;
  /// "always" (default) or "afterCertExpiry".
  std::string verify_timestamp = "always";
  /// (type, name) pairs; type ∈ ca, signingAuthority, tsa.
  std::vector<std::pair<std::string, std::string>> trust_stores;
  /// As written: "*" or "x509.subject: C=US, ST=WA, O=..." (other prefixes kept, ignored).
  std::vector<std::string> trusted_identities;
};

class TrustPolicyDocument {
public:
  /// Parses and validates the whole document (version "1.0", non-empty unique names,
  /// registry scopes, levels, overrides, trust stores, trusted identities, overlaps) as
  /// notation does, with notation's messages. Then, beyond notation: two statements whose
  /// registry scopes differ as written but name one repository once normalised
  /// (Reference::normalise_scope: `Registry.Internal:443/app` and `registry.internal/app`) make
  /// the policy ambiguous and are refused, naming both spellings and both statements; within one
  /// statement such spellings are allowed (a policy shared with notation may list
  /// `docker.io/alpine` and `docker.io/library/alpine` together).
  /// Throws ferry::Error(Errc::invalid_argument) with "<source>: <reason>".
  static TrustPolicyDocument parse(std::string_view json, const std::string& source);

  /// Reads and parses a policy file (`trustpolicy.oci.json` / `trustpolicy.json`). The file must
  /// exist ("trust policy is not present") and be a regular file, not a symlink or directory
  /// (ngo:verifier/trustpolicy/trustpolicy.go getDocument). Throws like `parse`, with the path
  /// as source.
  static TrustPolicyDocument load(const std::filesystem::path& file);

  const std::vector<TrustPolicyStatement>& statements() const { return m_statements; }

  /// The statement for a repository scope (`registry/repo/path`, no tag or digest): an exact
  /// registryScopes match wins over "*"; nullptr when none applies. Both sides are compared
  /// normalised (Reference::normalise_scope), so the spelling of the host, a default port or
  /// docker.io's `library/` does not change which statement applies (design §8).
  /// Reference: ../shared/notation/SPEC.md §5.2 (policy selection; notation compares literally).
  const TrustPolicyStatement* applicable(const std::string& scope) const;

private:
  std::vector<TrustPolicyStatement> m_statements;
};

const char* level_name(Level level);
const char* action_name(Action action);

/// Renders a certificate subject the way Go's pkix.Name.String() does, the form trusted
/// identities are matched against.
std::string go_subject_string(X509* cert);

/// True when the leaf matches one of the statement's trusted identities: "*" matches
/// everything; "x509.subject: DN" matches when every attribute of DN equals the leaf's
/// attribute of the same type (subset match, exact strings). Identities with other
/// prefixes never match.
bool trusted_identity_matches(const std::vector<std::string>& trusted_identities, X509* leaf);

/// notation-go `verifyX509TrustedIdentities` with its failure reasons: std::nullopt when the leaf
/// matches, else the reason worded as notation does ("signing certificate from the digital
/// signature does not match the X.509 trusted identities ... defined in the trust policy ...",
/// "no x509 trusted identities are configured in the trust policy ...", "error while parsing the
/// certificate subject from the digital signature. ..."). The leaf subject is rendered with
/// `go_subject_string` and parsed with notation's DN rules, so a leaf whose subject lacks C, ST or
/// O, repeats an attribute type or carries a type Go renders as `OID=#hex` matches only "*".
/// Reference: ../shared/notation/SPEC.md §5.2, §6 step 4; ngo:verifier/verifier.go.
std::optional<std::string> trusted_identity_failure(const std::string& policy_name,
                                                    const std::vector<std::string>& trusted_identities, X509* leaf);

} // namespace ferry::verify

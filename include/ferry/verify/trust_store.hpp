#pragma once
/// Notation's trust store layout: `<root>/x509/{ca,signingAuthority,tsa}/<name>/<files>`
/// (../shared/notation/SPEC.md §5.1).
#include <ferry/verify/openssl.hpp>

#include <filesystem>
#include <string>

namespace ferry::verify {

class TrustStore {
public:
  /// `root` is the directory holding `x509/` (notation's `truststore` directory).
  explicit TrustStore(std::filesystem::path root) : m_root(std::move(root)), m_display(m_root.string()) {}
  /// `display` names the store in messages instead of `root` (trust material carried in a
  /// bundle: its title there, never the temporary directory it was unpacked in).
  TrustStore(std::filesystem::path root, std::string display) : m_root(std::move(root)), m_display(std::move(display)) {}

  /// The certificates of store `type:name`. Throws ferry::Error(Errc::invalid_argument)
  /// with the reason when: type is not ca/signingAuthority/tsa; the name is not
  /// `^[a-zA-Z0-9_.-]+$`; the directory is missing, not a directory, or a symlink; any
  /// entry is a sub-directory, a symlink, empty, or not PEM/DER certificates; the store is
  /// empty ("no x509 certificates were found in trust store ..."); a certificate is neither
  /// a CA nor self-signed; a tsa certificate is not a self-signed root CA.
  Chain load(const std::string& type, const std::string& name) const;

  const std::filesystem::path& root() const { return m_root; }

private:
  std::filesystem::path m_root;
  std::string m_display;
};

} // namespace ferry::verify

#pragma once
/// What this ferry is (issue 19): its version, the git commit it was built from, and the
/// versions of the libraries it runs with (read at run time, not the headers it was built
/// against), for `ferry --version [--json]` and the verify reports auditors keep.
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace ferry {

struct BuildInfo {
  std::string version;  ///< the project version (meson.build)
  std::string commit;   ///< `git describe --always --dirty` at build time, or "unknown"
  /// Library name → version, in a fixed order: OpenSSL, libcurl, libarchive, libzstd,
  /// libmicrohttpd.
  std::vector<std::pair<std::string, std::string>> libraries;
};

BuildInfo build_info();
/// "ferry 0.1.0 (commit 1a2b3c4d5e6f)\nOpenSSL 3.0.x …\n…": what `ferry --version` prints.
std::string version_text();
/// {"version":…, "commit":…, "libraries":{"OpenSSL":…, …}}: `ferry --version --json`, and
/// the `ferry` member of verify's JSON and HTML reports.
nlohmann::json version_json();

} // namespace ferry

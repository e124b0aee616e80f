#include <ferry/version.hpp>

#include "ferry_commit.h"   // FERRY_COMMIT, written by meson's vcs_tag at build time
#include "ferry_version.h"  // FERRY_PROJECT_VERSION, written by meson at setup

#include <archive.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <zstd.h>

namespace ferry {

BuildInfo build_info()
{
  BuildInfo info;
  info.version = FERRY_PROJECT_VERSION;
  info.commit = FERRY_COMMIT;
  info.libraries.emplace_back("OpenSSL", OpenSSL_version(OPENSSL_VERSION_STRING));
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  info.libraries.emplace_back("libcurl", curl && curl->version ? curl->version : "unknown");
  std::string archive = archive_version_string();  // "libarchive 3.6.2"
  if (archive.rfind("libarchive ", 0) == 0) archive.erase(0, 11);
  info.libraries.emplace_back("libarchive", archive);
  info.libraries.emplace_back("libzstd", ZSTD_versionString());
  const char* mhd = MHD_get_version();
  info.libraries.emplace_back("libmicrohttpd", mhd ? mhd : "unknown");
  return info;
}

std::string version_text()
{
  BuildInfo info = build_info();
  std::string out = "ferry " + info.version + " (commit " + info.commit + ")\n";
  for (const auto& [name, version] : info.libraries) out += name + " " + version + "\n";
  return out;
}

nlohmann::json version_json()
{
  BuildInfo info = build_info();
  nlohmann::json libraries = nlohmann::json::object();
  for (const auto& [name, version] : info.libraries) libraries[name] = version;
  return {{"version", info.version}, {"commit", info.commit}, {"libraries", libraries}};
}

} // namespace ferry

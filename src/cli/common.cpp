#include "common.hpp"

#include <ferry/error.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

namespace ferry::cli {

void RegistryFlags::add_to(CLI::App& cmd)
{
  cmd.add_flag("--plain-http", options.plain_http, "Use plain HTTP instead of HTTPS (for loopback registries)");
  cmd.add_flag("--insecure", options.insecure, "Use TLS without verifying the registry's certificate");
  cmd.add_option("--ca-file", options.ca_file, "CA certificates (PEM) to verify registries with")->check(CLI::ExistingFile);
  cmd.add_option("--registry-config", options.config_path,
                 "Docker config.json with credentials (default: $DOCKER_CONFIG/config.json, ~/.docker/config.json)");
  cmd.add_option("-u,--username", options.username, "Registry user name (with --password-stdin)");
  cmd.add_flag("--password-stdin", password_stdin, "Read the registry password or token from stdin");
  cmd.add_option("--concurrency", concurrency, "Transfers run at once")->check(CLI::Range(1, 64))->capture_default_str();
}

void RegistryFlags::finish()
{
  if (password_stdin) {
    std::string line;
    std::getline(std::cin, line);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    options.password = line;
    if (options.password.empty()) throw Error(Errc::invalid_argument, "--password-stdin: no password on standard input");
  }
  if (!options.username.empty() && !password_stdin)
    throw Error(Errc::invalid_argument, "--username needs --password-stdin");
  if (password_stdin && options.username.empty()) throw Error(Errc::invalid_argument, "--password-stdin needs --username");
}

void TrustFlags::add_to(CLI::App& cmd)
{
  cmd.add_option("--trust-policy", trust_policy, "Notation trust policy (trustpolicy.json or trustpolicy.oci.json)");
  cmd.add_option("--trust-store", trust_store,
                 "Notation trust store directory (holds x509/{ca,signingAuthority,tsa}/<name>/)");
  cmd.add_option("--crl", crls, "CRL file (DER or PEM) or directory of CRLs (repeatable)")->allow_extra_args(false);
  cmd.add_option("--scope", scope, "Repository used to select the trust policy statement (registry/repo)");
  cmd.add_option("--verification-time", time, "Verify as of this RFC 3339 time instead of now (audits, reproducible tests)");
}

verify::VerifyOptions TrustFlags::build(const std::filesystem::path&, BundleFormat, bool integrity_only) const
{
  namespace fs = std::filesystem;
  using namespace ferry::verify;
  VerifyOptions opts;
  opts.integrity_only = integrity_only;
  opts.now = time.empty() ? std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now())
                          : parse_rfc3339(time, "--verification-time");
  if (!scope.empty()) {
    auto slash = scope.find('/');
    if (slash == std::string::npos || !Reference::is_valid_repository(scope.substr(slash + 1)))
      throw Error(Errc::invalid_argument, "invalid --scope \"" + scope + "\": want registry/repository");
    opts.scope = scope;
  }
  // Malformed trust material is malformed input (exit 1), not a usage error.
  auto as_input_error = [](const Error& e) {
    return Error(e.code() == Errc::invalid_argument ? Errc::invalid_manifest : e.code(), e.what());
  };
  if (!integrity_only) {
    if (trust_policy.empty() || trust_store.empty())
      throw Error(Errc::invalid_argument,
                  "verifying signatures needs --trust-policy and --trust-store (or --integrity-only)");
    try {
      opts.policy = TrustPolicyDocument::load(trust_policy);
    } catch (const Error& e) {
      throw as_input_error(e);
    }
    fs::path store = trust_store;
    if (!fs::is_directory(store)) throw Error(Errc::not_found, store.string() + ": no such trust store directory");
    if (!fs::exists(store / "x509") && fs::exists(store / "truststore" / "x509")) store /= "truststore";
    opts.trust_store.emplace(store);
  }
  for (const auto& c : crls) {
    try {
      opts.crls.add_path(c);
    } catch (const Error& e) {
      throw as_input_error(e);
    }
  }
  return opts;
}

Logger make_logger(const GlobalOptions& global)
{
  bool quiet = global.quiet;
  return [quiet](const std::string& line) {
    if (!quiet) std::fprintf(stderr, "%s\n", line.c_str());
  };
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

std::string human_bytes(std::uint64_t n)
{
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

} // namespace ferry::cli

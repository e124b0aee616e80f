#include "common.hpp"

#include <ferry/error.hpp>

#include <cstdio>
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

#include <ferry/util/text.hpp>
#include <ferry/remote/credentials.hpp>

#include <ferry/error.hpp>
#include <ferry/util/file.hpp>
#include <ferry/util/base64.hpp>

#include <nlohmann/json.hpp>

#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <spawn.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace ferry::remote {

namespace {

constexpr std::size_t k_config_limit = std::size_t{16} << 20;
constexpr std::size_t k_helper_output_limit = std::size_t{1} << 20;
constexpr const char* k_docker_hub_server = "https://index.docker.io/v1/";


std::string trim(std::string_view text)
{
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return std::string(text);
}


struct SpawnActionsDeleter {
  void operator()(posix_spawn_file_actions_t* actions) const
  {
    posix_spawn_file_actions_destroy(actions);
    delete actions;
  }
};
using SpawnActionsPtr = std::unique_ptr<posix_spawn_file_actions_t, SpawnActionsDeleter>;

[[noreturn]] void throw_errno(const std::string& what)
{
  throw Error(Errc::io, what + ": " + std::strerror(errno));
}

std::string read_config_file(const std::string& path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Errc::io, path + ": cannot read registry config: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > k_config_limit) throw Error(Errc::io, path + ": registry config is larger than 16 MiB");
  }
  if (in.bad()) throw Error(Errc::io, path + ": cannot read registry config");
  return text;
}

std::string string_field(const nlohmann::json& object, const char* name)
{
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

bool valid_helper_name(const std::string& name)
{
  if (name.empty()) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

std::string server_url_for(const std::string& normalized_host)
{
  return normalized_host == "docker.io" ? std::string(k_docker_hub_server) : normalized_host;
}

} // namespace

std::string normalize_registry_host(std::string_view key)
{
  std::string text = trim(key);
  std::string lower = to_lower(text);
  if (lower.rfind("https://", 0) == 0) text = text.substr(8);
  else if (lower.rfind("http://", 0) == 0) text = text.substr(7);
  auto slash = text.find('/');
  if (slash != std::string::npos) text = text.substr(0, slash);
  text = to_lower(text);
  if (text == "index.docker.io" || text == "registry-1.docker.io" || text == "registry.hub.docker.com")
    return "docker.io";
  return text;
}

HelperCredential run_credential_helper(const std::string& helper, const std::string& server_url,
                                       std::chrono::milliseconds timeout)
{
  const std::string program = "docker-credential-" + helper;
  const std::string what = program + " get for " + server_url;
  if (!valid_helper_name(helper)) throw Error(Errc::io, what + ": invalid helper name");

  int stdin_pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stdin_pair) != 0) throw_errno(what);
  UniqueFd stdin_parent(stdin_pair[0]);
  UniqueFd stdin_child(stdin_pair[1]);
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw_errno(what);
  UniqueFd out_read(out_pipe[0]);
  UniqueFd out_write(out_pipe[1]);
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw_errno(what);
  UniqueFd err_read(err_pipe[0]);
  UniqueFd err_write(err_pipe[1]);

  SpawnActionsPtr actions(new posix_spawn_file_actions_t);
  if (posix_spawn_file_actions_init(actions.get()) != 0) {
    delete actions.release();
    throw Error(Errc::internal, what + ": posix_spawn_file_actions_init failed");
  }
  // dup2 clears close-on-exec on the target; every other descriptor of ours is O_CLOEXEC.
  posix_spawn_file_actions_adddup2(actions.get(), stdin_child.get(), 0);
  posix_spawn_file_actions_adddup2(actions.get(), out_write.get(), 1);
  posix_spawn_file_actions_adddup2(actions.get(), err_write.get(), 2);

  std::string arg0 = program;
  std::string arg1 = "get";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, program.c_str(), actions.get(), nullptr, argv, environ);
  if (rc != 0) {
    if (rc == ENOENT) throw Error(Errc::not_found, program + ": credential helper not found on PATH");
    throw Error(Errc::io, what + ": cannot run: " + std::strerror(rc));
  }
  stdin_child.reset();
  out_write.reset();
  err_write.reset();

  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool killed = false;
  auto kill_child = [&] {
    if (!killed) ::kill(pid, SIGKILL);
    killed = true;
  };
  std::string out;
  std::string err;
  std::string failure;

  // The server URL, without newline (as docker's client sends it); MSG_NOSIGNAL: a helper
  // that exits without reading must not kill us with SIGPIPE.
  for (std::size_t sent = 0; sent < server_url.size();) {
    ssize_t k = ::send(stdin_parent.get(), server_url.data() + sent, server_url.size() - sent, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      break; // the helper's answer will tell
    }
    sent += static_cast<std::size_t>(k);
  }
  stdin_parent.reset();

  while (out_read.get() >= 0 || err_read.get() >= 0) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      failure = "timed out after " + std::to_string(timeout.count() / 1000) + " s";
      kill_child();
      break;
    }
    pollfd fds[2] = {{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}};
    auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    int ready = ::poll(fds, 2, static_cast<int>(std::min<long long>(wait_ms, 1000)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      failure = std::string("poll: ") + std::strerror(errno);
      kill_child();
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t k = ::read(fds[i].fd, buf, sizeof buf);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        (i == 0 ? out_read : err_read).reset();
        continue;
      }
      std::string& sink = i == 0 ? out : err;
      sink.append(buf, static_cast<std::size_t>(k));
      if (sink.size() > k_helper_output_limit) {
        failure = "output larger than 1 MiB";
        kill_child();
        out_read.reset();
        err_read.reset();
      }
    }
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno(what + ": waitpid");
  }
  if (!failure.empty()) throw Error(Errc::io, what + ": " + failure);

  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string message = trim(out.empty() ? err : out);
    if (message.find("credentials not found") != std::string::npos) return {};
    message = message.substr(0, message.find('\n'));
    if (message.size() > 200) message = message.substr(0, 200) + "...";
    std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                        : "killed by signal " + std::to_string(WTERMSIG(status));
    throw Error(Errc::io, what + ": " + how + (message.empty() ? "" : ": " + message));
  }

  HelperCredential result;
  try {
    auto doc = nlohmann::json::parse(out);
    if (!doc.is_object()) throw std::runtime_error("not a JSON object");
    result.username = string_field(doc, "Username");
    result.secret = string_field(doc, "Secret");
  } catch (const std::exception&) {
    // Never quote the output: it may hold the secret.
    throw Error(Errc::io, what + ": answer is not the expected JSON object");
  }
  result.found = !result.username.empty() || !result.secret.empty();
  return result;
}

CredentialStore::CredentialStore(CredentialOptions options) : m_options(std::move(options))
{
  std::string path;
  if (m_options.config_path) {
    path = *m_options.config_path;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      throw Error(Errc::not_found, path + ": registry config file not found");
  } else {
    std::vector<std::string> candidates;
    if (const char* dir = std::getenv("DOCKER_CONFIG"); dir && *dir)
      candidates.push_back(std::string(dir) + "/config.json");
    if (const char* home = std::getenv("HOME"); home && *home)
      candidates.push_back(std::string(home) + "/.docker/config.json");
    for (const auto& candidate : candidates) {
      std::error_code ec;
      if (std::filesystem::exists(candidate, ec)) {
        path = candidate;
        break;
      }
    }
  }
  if (path.empty()) return;
  m_config_path = path;

  std::string text = read_config_file(path);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(Errc::io, path + ": registry config is not valid JSON: " + e.what());
  }
  if (!doc.is_object()) throw Error(Errc::io, path + ": registry config is not a JSON object");

  if (auto it = doc.find("auths"); it != doc.end() && it->is_object()) {
    for (const auto& [key, value] : it->items()) {
      if (!value.is_object()) continue;
      AuthEntry entry;
      entry.raw_key = key;
      entry.auth = string_field(value, "auth");
      entry.username = string_field(value, "username");
      entry.password = string_field(value, "password");
      entry.identity_token = string_field(value, "identitytoken");
      entry.registry_token = string_field(value, "registrytoken");
      m_auths.push_back(std::move(entry));
    }
  }
  if (auto it = doc.find("credHelpers"); it != doc.end() && it->is_object()) {
    for (const auto& [key, value] : it->items())
      if (value.is_string()) m_cred_helpers.emplace(normalize_registry_host(key), value.get<std::string>());
  }
  m_creds_store = string_field(doc, "credsStore");
}

Credential CredentialStore::lookup(const std::string& host)
{
  std::lock_guard lock(m_mutex);
  if (auto it = m_cache.find(host); it != m_cache.end()) return it->second;
  Credential credential = compute(host);
  m_cache.emplace(host, credential);
  return credential;
}

CredentialLookup CredentialStore::lookup_function()
{
  return [this](const std::string& host) { return lookup(host); };
}

Credential CredentialStore::compute(const std::string& host)
{
  if (!m_options.username.empty()) {
    Credential credential;
    credential.username = m_options.username;
    credential.password = m_options.password;
    credential.source = "--username";
    return credential;
  }
  std::string key = normalize_registry_host(host);
  std::string helper;
  if (auto it = m_cred_helpers.find(key); it != m_cred_helpers.end()) helper = it->second;
  else helper = m_creds_store;
  if (!helper.empty()) {
    if (auto credential = from_helper(helper, host)) return *credential;
  }
  if (auto credential = from_auths(host)) return *credential;
  Credential anonymous;
  anonymous.source = "anonymous";
  return anonymous;
}

std::optional<Credential> CredentialStore::from_helper(const std::string& helper, const std::string& host)
{
  HelperCredential answer =
      run_credential_helper(helper, server_url_for(normalize_registry_host(host)), m_options.helper_timeout);
  if (!answer.found) return std::nullopt;
  Credential credential;
  if (answer.username == "<token>") {
    credential.identity_token = answer.secret;
  } else {
    credential.username = answer.username;
    credential.password = answer.secret;
  }
  credential.source = "docker-credential-" + helper;
  return credential;
}

std::optional<Credential> CredentialStore::from_auths(const std::string& host)
{
  const AuthEntry* match = nullptr;
  std::string key = normalize_registry_host(host);
  for (const auto& entry : m_auths) {
    if (entry.raw_key == host) {
      match = &entry;
      break;
    }
  }
  if (!match) {
    for (const auto& entry : m_auths) {
      if (normalize_registry_host(entry.raw_key) != key) continue;
      bool has_content = !entry.auth.empty() || !entry.username.empty() || !entry.identity_token.empty() ||
                         !entry.registry_token.empty();
      if (!match || has_content) match = &entry;
      if (has_content) break;
    }
  }
  if (!match) return std::nullopt;

  Credential credential;
  if (!match->auth.empty()) {
    std::string decoded;
    try {
      decoded = base64_decode(match->auth);
    } catch (const Error&) {
      throw Error(Errc::io, m_config_path + ": auths \"" + match->raw_key + "\": auth is not valid base64");
    }
    auto colon = decoded.find(':');
    if (colon == std::string::npos)
      throw Error(Errc::io, m_config_path + ": auths \"" + match->raw_key + "\": auth is not user:password");
    credential.username = decoded.substr(0, colon);
    credential.password = decoded.substr(colon + 1);
  } else {
    credential.username = match->username;
    credential.password = match->password;
  }
  credential.identity_token = match->identity_token;
  credential.registry_token = match->registry_token;
  if (credential.empty()) return std::nullopt;
  credential.source = "docker config " + m_config_path;
  return credential;
}

} // namespace ferry::remote

#include <ferry/util/file.hpp>

#include <ferry/error.hpp>

#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace ferry {

namespace {
[[noreturn]] void fail(const fs::path& p, const char* what, int err)
{
  throw Error(errc_for_errno(err), p.string() + ": " + what + ": " + std::strerror(err));
}
} // namespace

UniqueFd::UniqueFd(const fs::path& path, int flags)
{
  m_fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (m_fd < 0) fail(path, "open", errno);
}

void UniqueFd::reset()
{
  if (m_fd >= 0) ::close(m_fd);
  m_fd = -1;
}

OutputFile::OutputFile(fs::path temp_path) : m_path(std::move(temp_path))
{
  m_fd = ::open(m_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (m_fd < 0) fail(m_path, "create", errno);
}

OutputFile::~OutputFile()
{
  if (m_fd >= 0) ::close(m_fd);
  if (!m_committed) {
    std::error_code ec;
    fs::remove(m_path, ec);
  }
}

TempDir::TempDir(const fs::path& parent, const std::string& prefix)
{
  std::error_code ec;
  fs::path base = parent.empty() ? fs::temp_directory_path(ec) : parent;
  if (ec) base = "/tmp";
  std::string pattern = (base / (prefix + "XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) fail(base, "cannot create a temporary directory", errno);
  m_path = pattern;
}

TempDir::~TempDir()
{
  std::error_code ec;
  fs::remove_all(m_path, ec);
}

void write_all(int fd, const fs::path& path, const char* data, std::size_t n)
{
  while (n > 0) {
    ssize_t k = ::write(fd, data, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      fail(path, "write", errno);
    }
    data += k;
    n -= static_cast<std::size_t>(k);
  }
}

void OutputFile::write(const char* data, std::size_t n) { write_all(m_fd, m_path, data, n); }

void OutputFile::commit(const fs::path& final_path)
{
  if (::fsync(m_fd) != 0) fail(m_path, "fsync", errno);
  if (::close(m_fd) != 0) {
    m_fd = -1;
    fail(m_path, "close", errno);
  }
  m_fd = -1;
  if (::rename(m_path.c_str(), final_path.c_str()) != 0) fail(final_path, "rename", errno);
  m_committed = true;
  fsync_dir(final_path.has_parent_path() ? final_path.parent_path() : fs::path("."));
}

void write_file_atomic(const fs::path& path, Reader& content)
{
  OutputFile out(path.string() + ".tmp");
  pump(content, [&](const char* p, std::size_t n) { out.write(p, n); });
  out.commit(path);
}

void write_file_atomic(const fs::path& path, const std::string& content)
{
  StringReader r(content);
  write_file_atomic(path, r);
}

void fsync_dir(const fs::path& dir)
{
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(dir, "open directory", errno);
  ::fsync(fd);
  ::close(fd);
}

std::string read_user_file(const std::filesystem::path& path, std::size_t limit, const std::string& what, Errc too_large)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Errc::not_found, path.string() + ": cannot read the " + what);
  std::string bytes;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    bytes.append(buf, static_cast<std::size_t>(in.gcount()));
    if (bytes.size() > limit) throw Error(too_large, path.string() + ": larger than " + std::to_string(limit >> 20) + " MiB");
  }
  if (in.bad()) throw Error(Errc::io, path.string() + ": cannot read the " + what);
  return bytes;
}

} // namespace ferry

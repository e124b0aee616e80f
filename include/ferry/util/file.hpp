#pragma once
/// Files written atomically: a temporary name, fsync, rename (design §3, §8).
#include <ferry/error.hpp>
#include <ferry/util/reader.hpp>

#include <filesystem>
#include <string>

namespace ferry {

/// A file descriptor closed on destruction.
class UniqueFd {
public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : m_fd(fd) {}
  /// Opens `path` (`flags | O_CLOEXEC`, mode 0644 when created); throws Errc::io naming it.
  UniqueFd(const std::filesystem::path& path, int flags);
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : m_fd(other.m_fd) { other.m_fd = -1; }
  UniqueFd& operator=(UniqueFd&& other) noexcept
  {
    if (this != &other) {
      reset();
      m_fd = other.m_fd;
      other.m_fd = -1;
    }
    return *this;
  }
  int get() const { return m_fd; }
  /// Gives the descriptor up (the caller closes it).
  int release()
  {
    int fd = m_fd;
    m_fd = -1;
    return fd;
  }
  void reset();

private:
  int m_fd = -1;
};

/// A file being written at a temporary path; `commit(final)` fsyncs and renames it.
/// Destroyed uncommitted, it removes the temporary file.
class OutputFile {
public:
  explicit OutputFile(std::filesystem::path temp_path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  int fd() const { return m_fd; }
  void write(const char* data, std::size_t n);
  /// fsync, close, rename to `final_path`, fsync the directory.
  void commit(const std::filesystem::path& final_path);

private:
  std::filesystem::path m_path;
  int m_fd = -1;
  bool m_committed = false;
};

/// The whole of a file the user names (an images file, an inventory), through std::ifstream so
/// that a pipe or a process substitution works too, at most `limit` bytes (a whole number of
/// MiB): throws Errc::not_found (cannot open) or Errc::io (a read fails) "PATH: cannot read the
/// WHAT", and `too_large` "PATH: larger than N MiB" once the limit is passed.
std::string read_user_file(const std::filesystem::path& path, std::size_t limit, const std::string& what, Errc too_large);

/// Writes all `n` bytes to `fd` (retrying short writes and EINTR); throws Errc::io naming `path`.
void write_all(int fd, const std::filesystem::path& path, const char* data, std::size_t n);
/// Writes `content` (read to its end) to `path` atomically via `path + ".tmp"`.
void write_file_atomic(const std::filesystem::path& path, Reader& content);
void write_file_atomic(const std::filesystem::path& path, const std::string& content);
/// A private directory made with mkdtemp under `parent` (default: the system's temporary
/// directory), removed with its content when destroyed.
class TempDir {
public:
  explicit TempDir(const std::filesystem::path& parent = {}, const std::string& prefix = "ferry-");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return m_path; }

private:
  std::filesystem::path m_path;
};

/// fsyncs a directory so a rename inside it is durable.
void fsync_dir(const std::filesystem::path& dir);

} // namespace ferry

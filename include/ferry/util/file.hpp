#pragma once
/// Files written atomically: a temporary name, fsync, rename (design §3, §8).
#include <ferry/util/reader.hpp>

#include <filesystem>
#include <string>

namespace ferry {

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

/// Writes `content` (read to its end) to `path` atomically via `path + ".tmp"`.
void write_file_atomic(const std::filesystem::path& path, Reader& content);
void write_file_atomic(const std::filesystem::path& path, const std::string& content);
/// fsyncs a directory so a rename inside it is durable.
void fsync_dir(const std::filesystem::path& dir);

} // namespace ferry

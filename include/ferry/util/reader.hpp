#pragma once
/// Pull-model byte streams: every Source hands out a Reader, every writer consumes one.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace ferry {

/// A stream of bytes read front to back.
class Reader {
public:
  virtual ~Reader() = default;
  /// Reads up to `n` bytes into `buf`; returns 0 only at the end of the stream.
  /// Throws ferry::Error on failure.
  virtual std::size_t read(char* buf, std::size_t n) = 0;
};

/// Reads a string held in memory.
class StringReader : public Reader {
public:
  explicit StringReader(std::string data) : m_data(std::move(data)) {}
  std::size_t read(char* buf, std::size_t n) override;

private:
  std::string m_data;
  std::size_t m_pos = 0;
};

/// Reads a file (from `offset`, at most `length` bytes); throws Errc::not_found /
/// Errc::io naming the path.
class FileReader : public Reader {
public:
  explicit FileReader(const std::filesystem::path& path, std::uint64_t offset = 0,
                      std::uint64_t length = UINT64_MAX);
  ~FileReader() override;
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;
  std::size_t read(char* buf, std::size_t n) override;

private:
  std::filesystem::path m_path;
  int m_fd = -1;
  std::uint64_t m_left;
};

/// Reads `[offset, offset + length)` of a file descriptor it does not own, with pread (so
/// several readers may share one descriptor, from several threads). A file that ends early
/// throws Errc::io naming `what`.
class RegionReader : public Reader {
public:
  RegionReader(int fd, std::uint64_t offset, std::uint64_t length, std::string what)
    : m_fd(fd), m_offset(offset), m_left(length), m_what(std::move(what))
  {
  }
  std::size_t read(char* buf, std::size_t n) override;

private:
  int m_fd;
  std::uint64_t m_offset, m_left;
  std::string m_what;
};

/// A non-owning view of another reader (to hand a borrowed stream to an owning wrapper).
class ReaderRef : public Reader {
public:
  explicit ReaderRef(Reader& inner) : m_inner(inner) {}
  std::size_t read(char* buf, std::size_t n) override { return m_inner.read(buf, n); }

private:
  Reader& m_inner;
};

/// Reads the whole stream; throws Errc::size_exceeds_limit (naming `what`) past `limit` bytes.
std::string read_all(Reader& reader, std::size_t limit, const std::string& what = "stream");

/// Copies a reader into a callback in chunks; returns the byte count.
template <typename Write>
std::uint64_t pump(Reader& reader, Write&& write)
{
  std::uint64_t total = 0;
  auto buf = std::make_unique<char[]>(1 << 16);
  for (;;) {
    std::size_t n = reader.read(buf.get(), 1 << 16);
    if (n == 0) return total;
    write(buf.get(), n);
    total += n;
  }
}

} // namespace ferry

#include <ferry/util/reader.hpp>

#include <ferry/error.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ferry {

std::size_t StringReader::read(char* buf, std::size_t n)
{
  std::size_t k = std::min(n, m_data.size() - m_pos);
  std::memcpy(buf, m_data.data() + m_pos, k);
  m_pos += k;
  return k;
}

FileReader::FileReader(const std::filesystem::path& path, std::uint64_t offset, std::uint64_t length)
  : m_path(path), m_left(length)
{
  // O_NONBLOCK: a FIFO planted where a file should be must not block the open (design §8);
  // anything but a regular file is refused before a byte is read.
  m_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (m_fd < 0) {
    int err = errno;
    throw Error(err == ENOENT ? Errc::not_found : Errc::io,
                path.string() + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(m_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(m_fd);
    m_fd = -1;
    throw Error(Errc::io, path.string() + ": not a regular file");
  }
  ::fcntl(m_fd, F_SETFL, ::fcntl(m_fd, F_GETFL) & ~O_NONBLOCK);
  if (offset != 0 && ::lseek(m_fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
    int err = errno;
    ::close(m_fd);
    throw Error(Errc::io, path.string() + ": seek: " + std::strerror(err));
  }
}

FileReader::~FileReader()
{
  if (m_fd >= 0) ::close(m_fd);
}

std::size_t FileReader::read(char* buf, std::size_t n)
{
  if (n > m_left) n = static_cast<std::size_t>(m_left);
  if (n == 0) return 0;
  for (;;) {
    ssize_t k = ::read(m_fd, buf, n);
    if (k >= 0) {
      m_left -= static_cast<std::uint64_t>(k);
      return static_cast<std::size_t>(k);
    }
    if (errno == EINTR) continue;
    throw Error(Errc::io, m_path.string() + ": read: " + std::strerror(errno));
  }
}

std::size_t RegionReader::read(char* buf, std::size_t n)
{
  if (n > m_left) n = static_cast<std::size_t>(m_left);
  if (n == 0) return 0;
  for (;;) {
    ssize_t k = ::pread(m_fd, buf, n, static_cast<off_t>(m_offset));
    if (k > 0) {
      m_offset += static_cast<std::uint64_t>(k);
      m_left -= static_cast<std::uint64_t>(k);
      return static_cast<std::size_t>(k);
    }
    if (k < 0 && errno == EINTR) continue;
    if (k == 0) throw Error(Errc::io, m_what + ": the file ends " + std::to_string(m_left) + " bytes early");
    throw Error(Errc::io, m_what + ": read: " + std::strerror(errno));
  }
}

std::string read_all(Reader& reader, std::size_t limit, const std::string& what)
{
  std::string out;
  char buf[65536];
  for (;;) {
    std::size_t n = reader.read(buf, sizeof buf);
    if (n == 0) return out;
    if (out.size() + n > limit)
      throw Error(Errc::size_exceeds_limit,
                  what + ": larger than the limit of " + std::to_string(limit) + " bytes");
    out.append(buf, n);
  }
}

} // namespace ferry

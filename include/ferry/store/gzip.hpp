#pragma once
/// The one gzip decoder (issue 14): a Reader of the decompressed content of a gzip stream
/// (RFC 1952; any number of members, as `cat a.gz b.gz` and ferry's own `.tar.gz` writer
/// make), each member's CRC-32 and length checked.
#include <ferry/util/reader.hpp>

#include <memory>
#include <string>

namespace ferry {

/// True when the first two bytes of the file behind `fd` are gzip's magic (1f 8b).
bool has_gzip_magic(int fd);

/// Decompresses `compressed` to its end. Input that is not gzip, a member cut short, a
/// checksum that does not match, or anything but another member after one ends throws
/// Errc::invalid_manifest naming `what`.
class GzipReader : public Reader {
public:
  GzipReader(std::unique_ptr<Reader> compressed, std::string what);
  ~GzipReader() override;
  GzipReader(const GzipReader&) = delete;
  GzipReader& operator=(const GzipReader&) = delete;
  std::size_t read(char* buf, std::size_t n) override;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace ferry

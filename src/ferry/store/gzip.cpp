#include <ferry/store/gzip.hpp>

#include <ferry/error.hpp>

#include <zlib.h>

#include <cerrno>
#include <climits>
#include <unistd.h>
#include <vector>

namespace ferry {

bool has_gzip_magic(int fd)
{
  unsigned char m[2] = {};
  ssize_t k;
  do k = ::pread(fd, m, 2, 0);
  while (k < 0 && errno == EINTR);
  return k == 2 && m[0] == 0x1f && m[1] == 0x8b;
}

struct GzipReader::Impl {
  std::unique_ptr<Reader> in;
  std::string what;
  std::vector<unsigned char> buf = std::vector<unsigned char>(1 << 16);
  z_stream z{};
  bool in_member = false;  ///< inside a member (its header started, its trailer not read)
  bool any = false;        ///< a member was started
  bool eof = false;        ///< the compressed input is exhausted
  bool done = false;

  Impl(std::unique_ptr<Reader> r, std::string w) : in(std::move(r)), what(std::move(w))
  {
    // 15 + 16: a gzip wrapper (header, CRC-32, length) around a deflate stream.
    if (inflateInit2(&z, 15 + 16) != Z_OK) throw Error(Errc::io, what + ": gzip: out of memory");
  }
  ~Impl() { inflateEnd(&z); }

  [[noreturn]] void fail(const std::string& why) { throw Error(Errc::invalid_manifest, what + ": gzip: " + why); }

  // More compressed bytes into z.next_in; false at the end of the input.
  bool refill()
  {
    if (eof) return false;
    std::size_t k = in->read(reinterpret_cast<char*>(buf.data()), buf.size());
    if (k == 0) {
      eof = true;
      return false;
    }
    z.next_in = buf.data();
    z.avail_in = static_cast<uInt>(k);
    return true;
  }

  std::size_t read(char* out, std::size_t n)
  {
    if (done || n == 0) return 0;
    z.next_out = reinterpret_cast<Bytef*>(out);
    z.avail_out = static_cast<uInt>(std::min<std::size_t>(n, UINT_MAX));
    const uInt want = z.avail_out;
    while (z.avail_out == want) {
      if (z.avail_in == 0 && !refill()) {
        if (in_member) fail("truncated input");
        if (!any) fail("empty input");
        done = true;
        break;
      }
      if (!in_member) {
        // A member starts here: the first one, or one more after a member ended. Anything
        // else after a member (trailing garbage, zero padding) is refused, not skipped.
        if (z.next_in[0] != 0x1f || (z.avail_in > 1 && z.next_in[1] != 0x8b))
          fail(any ? "data after the end of the gzip stream" : "not a gzip stream");
        if (inflateReset(&z) != Z_OK) fail("reset failed");
        in_member = true;
        any = true;
      }
      int rc = inflate(&z, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        in_member = false;
        continue;
      }
      if (rc == Z_BUF_ERROR && z.avail_in == 0) continue;  // needs more input (refilled above)
      if (rc != Z_OK) fail(z.msg ? z.msg : "damaged stream");
    }
    return want - z.avail_out;
  }
};

GzipReader::GzipReader(std::unique_ptr<Reader> compressed, std::string what)
  : m_impl(std::make_unique<Impl>(std::move(compressed), std::move(what)))
{
}

GzipReader::~GzipReader() = default;

std::size_t GzipReader::read(char* buf, std::size_t n) { return m_impl->read(buf, n); }

} // namespace ferry

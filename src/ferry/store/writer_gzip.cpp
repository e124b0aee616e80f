// The `.tar.gz` bundle writer: the `.tar.zst` writer's frames as gzip members (RFC 1952
// allows any number; gzip, GNU tar, Go's compress/gzip and libarchive read them as one
// stream). Each member has an empty header (no name, mtime 0), so a re-run writes the same
// bytes as an uninterrupted run.
#include "writer_plan.hpp"

#include <ferry/store/gzip.hpp>

#include <zlib.h>

namespace ferry::detail {

namespace {

class GzipEncoder : public FrameEncoder {
public:
  explicit GzipEncoder(std::string what) : m_what(std::move(what)), m_out(k_chunk)
  {
    // 15 + 16: a gzip wrapper; memLevel 8, zlib's default.
    if (deflateInit2(&m_z, k_gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      throw Error(Errc::io, m_what + ": gzip: out of memory");
  }
  ~GzipEncoder() override { deflateEnd(&m_z); }
  GzipEncoder(const GzipEncoder&) = delete;
  GzipEncoder& operator=(const GzipEncoder&) = delete;

  void reset() override
  {
    if (deflateReset(&m_z) != Z_OK) throw Error(Errc::io, m_what + ": gzip: reset failed");
  }

  void run(const char* data, std::size_t n, bool end, const std::function<void(const char*, std::size_t)>& sink) override
  {
    // zlib counts in uInt: large inputs go in slices.
    do {
      auto slice = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
      bool last = slice == n;
      m_z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
      m_z.avail_in = slice;
      int flush = end && last ? Z_FINISH : Z_NO_FLUSH;
      for (;;) {
        m_z.next_out = reinterpret_cast<Bytef*>(m_out.data());
        m_z.avail_out = static_cast<uInt>(m_out.size());
        int rc = deflate(&m_z, flush);
        if (rc == Z_STREAM_ERROR) throw Error(Errc::io, m_what + ": gzip: " + (m_z.msg ? m_z.msg : "deflate failed"));
        sink(m_out.data(), m_out.size() - m_z.avail_out);
        if (flush == Z_FINISH ? rc == Z_STREAM_END : m_z.avail_in == 0 && m_z.avail_out != 0) break;
      }
      data += slice;
      n -= slice;
    } while (n > 0);
    if (end) reset();  // the next byte starts a new member
  }

  std::unique_ptr<Reader> decoder(std::unique_ptr<Reader> compressed, const std::string& what) const override
  {
    return std::make_unique<GzipReader>(std::move(compressed), what);
  }

private:
  std::string m_what;
  std::vector<char> m_out;
  z_stream m_z{};
};

} // namespace

std::unique_ptr<BundleWriter> make_gzip_writer(fs::path path, Plan plan, const BundleWriter::Options& options)
{
  auto encoder = std::make_unique<GzipEncoder>(path.string() + ".partial");
  return make_compressed_writer(std::move(path), std::move(plan), options, std::move(encoder));
}

} // namespace ferry::detail

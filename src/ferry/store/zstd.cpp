#include <ferry/store/zstd.hpp>

#include <ferry/error.hpp>

#include <zstd.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <vector>

namespace ferry {

bool has_zstd_magic(int fd)
{
  unsigned char m[4] = {};
  ssize_t k;
  do k = ::pread(fd, m, 4, 0);
  while (k < 0 && errno == EINTR);
  return k == 4 && m[0] == 0x28 && m[1] == 0xB5 && m[2] == 0x2F && m[3] == 0xFD;
}

namespace {

struct DCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};

// Decompression proper: fills `out` from `in`; returns the bytes written, 0 at the end.
class Decoder {
public:
  Decoder(Reader& in, const std::string& what) : m_in(in), m_what(what), m_buf(ZSTD_DStreamInSize()), m_dctx(ZSTD_createDCtx())
  {
    if (!m_dctx) throw Error(Errc::io, what + ": zstd: out of memory");
  }
  std::size_t decode(char* out, std::size_t n)
  {
    ZSTD_outBuffer ob{out, n, 0};
    while (ob.pos < ob.size) {
      if (m_ib.pos == m_ib.size) {
        if (m_eof) break;
        std::size_t k = m_in.read(m_buf.data(), m_buf.size());
        if (k == 0) {
          m_eof = true;
          // ZSTD_decompressStream returns 0 exactly when a frame is complete.
          if (m_hint != 0 || !m_any) throw Error(Errc::invalid_manifest, m_what + ": zstd: truncated input");
          break;
        }
        m_any = true;
        m_ib = {m_buf.data(), k, 0};
      }
      m_hint = ZSTD_decompressStream(m_dctx.get(), &ob, &m_ib);
      if (ZSTD_isError(m_hint)) throw Error(Errc::invalid_manifest, m_what + ": zstd: " + ZSTD_getErrorName(m_hint));
    }
    return ob.pos;
  }

private:
  Reader& m_in;
  const std::string& m_what;
  std::vector<char> m_buf;
  ZSTD_inBuffer m_ib{nullptr, 0, 0};
  std::unique_ptr<ZSTD_DCtx, DCtxFree> m_dctx;
  std::size_t m_hint = 0;
  bool m_eof = false;
  bool m_any = false;
};

} // namespace

struct ZstdReader::Impl {
  static constexpr std::size_t k_buffer = 1 << 20;
  static constexpr std::size_t k_ahead = 4;

  std::unique_ptr<Reader> compressed;
  std::string what;
  Decoder decoder;
  // Background mode: buffers decoded ahead, handed over under the mutex.
  bool background;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::vector<char>> ready;
  std::vector<std::vector<char>> spare;  ///< buffers handed back, reused (no allocation per MiB)
  std::vector<char> current;
  std::size_t current_pos = 0;
  std::exception_ptr error;
  bool done = false;
  bool stop = false;
  std::thread thread;

  Impl(std::unique_ptr<Reader> in, std::string w, bool bg)
    : compressed(std::move(in)), what(std::move(w)), decoder(*compressed, what), background(bg)
  {
    if (background) thread = std::thread([this] { run(); });
  }
  ~Impl()
  {
    if (!background) return;
    {
      std::lock_guard lock(mutex);
      stop = true;
    }
    cv.notify_all();
    thread.join();
  }

  void run()
  {
    std::exception_ptr failure;
    try {
      for (;;) {
        std::vector<char> out;
        {
          std::lock_guard lock(mutex);
          if (!spare.empty()) {
            out = std::move(spare.back());
            spare.pop_back();
          }
        }
        out.resize(k_buffer);
        std::size_t n = decoder.decode(out.data(), out.size());
        if (n == 0) break;
        out.resize(n);
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return stop || ready.size() < k_ahead; });
        if (stop) return;
        ready.push_back(std::move(out));
        cv.notify_all();
      }
    } catch (...) {
      failure = std::current_exception();
    }
    std::lock_guard lock(mutex);
    error = failure;
    done = true;
    cv.notify_all();
  }

  std::size_t read(char* buf, std::size_t n)
  {
    if (!background) return decoder.decode(buf, n);
    if (current_pos == current.size()) {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return !ready.empty() || done; });
      if (ready.empty()) {
        if (error) std::rethrow_exception(error);
        return 0;
      }
      if (current.capacity() > 0) spare.push_back(std::move(current));
      current = std::move(ready.front());
      ready.pop_front();
      current_pos = 0;
      cv.notify_all();
    }
    std::size_t k = std::min(n, current.size() - current_pos);
    std::memcpy(buf, current.data() + current_pos, k);
    current_pos += k;
    return k;
  }
};

ZstdReader::ZstdReader(std::unique_ptr<Reader> compressed, std::string what, bool background)
  : m_impl(std::make_unique<Impl>(std::move(compressed), std::move(what), background))
{
}

ZstdReader::~ZstdReader() = default;

std::size_t ZstdReader::read(char* buf, std::size_t n) { return m_impl->read(buf, n); }

} // namespace ferry

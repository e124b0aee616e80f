// The compressed bundle writers (`.tar.zst`, `.tar.gz`): the tar stream through one
// encoder, a frame (a gzip member) ending at every blob and checkpoint so that an
// interrupted save resumes (issue 5). The zstd encoder is here; the gzip one is in
// writer_gzip.cpp.
#include "writer_plan.hpp"

#include <ferry/store/zstd.hpp>

#include <thread>

namespace ferry::detail {

namespace {

// The tar stream compressed by a FrameEncoder. Every blob written through write() ends a
// frame, and the sidecar records the compressed offset where it ends: a re-run keeps the
// verified prefix of frames and compresses the rest exactly as the first run would have.
class CompressedPlanWriter : public BundleWriter {
public:
  CompressedPlanWriter(fs::path path, Plan plan, const Options& options, std::unique_ptr<FrameEncoder> encoder)
    : BundleWriter(std::move(path)), m_plan(std::move(plan)), m_options(options), m_sidecar(sidecar_path()),
      m_encoder(std::move(encoder))
  {

    std::vector<std::size_t> fetched;
    for (std::size_t i = 0; i < m_plan.entries.size(); ++i)
      if (!m_plan.entries[i].bytes) fetched.push_back(i);

    fs::path partial = partial_path();
    std::size_t kept = 0;          // fetched entries taken over
    std::uint64_t kept_offset = 0;  // compressed bytes taken over
    std::vector<std::string> kept_lines;
    std::optional<std::string> part_line;
    if (options.resume && fs::exists(partial)) {
      auto lines = read_lines(sidecar_path());
      if (!lines.empty() && lines[0] == m_plan.id) {
        // Claimed frames: a prefix of the fetched entries with increasing end offsets, then
        // perhaps checkpoints of the next one ("partial <digest> <bytes> <end>", the last wins).
        std::vector<std::uint64_t> ends;
        struct Part {
          std::uint64_t bytes, end;
          std::string line;
        };
        std::optional<Part> part;
        std::error_code ec;
        std::uint64_t file_size = fs::file_size(partial, ec);
        for (std::size_t j = 1; j < lines.size() && ends.size() < fetched.size(); ++j) {
          std::istringstream in(lines[j]);
          std::string word, digest;
          std::uint64_t n = 0, end = 0;
          if (!(in >> word)) break;
          const Entry& next = m_plan.entries[fetched[ends.size()]];
          std::uint64_t floor = ends.empty() ? 0 : ends.back();
          if (word == "partial") {
            if (in >> digest >> n >> end && digest == next.desc.digest.str() && end <= file_size && end > floor) {
              if (n > 0 && n < next.desc.size) part = Part{n, end, lines[j]};
              else part.reset();
            }
            continue;
          }
          if (!(in >> end) || word != next.desc.digest.str() || end > file_size || end <= floor) break;
          ends.push_back(end);
          part.reset();
        }
        if (!ends.empty() || part) {
          UniqueFd fd(partial, O_RDONLY);
          auto decoded = m_encoder->decoder(
              std::make_unique<RegionReader>(fd.get(), 0, part ? part->end : ends.back(), partial.string()),
              partial.string());
          Reader& r = *decoded;
          std::size_t e = 0;
          bool ok = true;
          for (std::size_t j = 0; ok && j < ends.size(); ++j) {
            for (; ok && e <= fetched[j]; ++e) ok = entry_matches(r, m_plan.entries[e]);
            if (!ok) break;
            kept = j + 1;
            kept_offset = ends[j];
            kept_lines.push_back(lines[j + 1]);
          }
          if (ok && part) {
            // The entries before the cut-off blob, its header, then its first bytes.
            std::size_t target = fetched[kept];
            for (; ok && e < target; ++e) ok = entry_matches(r, m_plan.entries[e]);
            const Entry& t = m_plan.entries[target];
            const std::string header = t.header();
            std::string h(header.size(), '\0');
            try {
              ok = ok && read_exact(r, h.data(), h.size()) && h == header;
            } catch (const Error&) {
              ok = false;
            }
            std::optional<Hasher> hasher;
            if (ok) hasher = hash_prefix(r, t.desc.digest, part->bytes);
            char extra;
            bool at_end = false;
            try {
              at_end = hasher && r.read(&extra, 1) == 0;
            } catch (const Error&) {
            }
            if (at_end) {
              m_part.emplace(PartialBlob{t.desc.digest, part->bytes, std::move(*hasher)});
              m_reused_bytes += part->bytes;
              ++m_continued_blobs;
              part_line = part->line;
            }
          }
        }
      }
    }
    m_finished_offset = kept_offset;
    m_finished_cursor = kept ? fetched[kept - 1] + 1 : 0;
    m_lines = kept_lines;
    if (m_part) {
      // The next frames continue the cut-off blob where its last checkpoint left it.
      std::istringstream in(*part_line);
      std::string word, digest;
      std::uint64_t n = 0;
      in >> word >> digest >> n >> kept_offset;
      kept_lines.push_back(*part_line);
    }
    if (kept == 0 && !m_part) {
      std::error_code ec;
      fs::remove(partial, ec);
    }
    m_out = make_output(m_path, partial, options.volume_size);
    m_out->truncate(kept_offset);
    m_offset = kept_offset;
    m_sidecar.start(m_plan.id, kept_lines);
    m_pending.reserve(fetched.size());
    for (std::size_t j = 0; j < fetched.size(); ++j) {
      const auto& desc = m_plan.entries[fetched[j]].desc;
      if (j < kept) {
        ++m_reused_blobs;
        m_reused_bytes += desc.size;
      } else {
        m_pending.push_back(desc);
      }
    }
    m_cursor = m_part ? fetched[kept] : m_finished_cursor;
    m_progress = kept > 0 || m_part;
  }

  std::uint64_t resume_offset(const Digest& digest) const override
  {
    return m_part && m_part->digest == digest ? m_part->bytes : 0;
  }

  ~CompressedPlanWriter() override
  {
    if (m_committed) return;
    bool keep = m_options.resume && m_progress;
    m_out->close(keep);
    if (!keep) m_sidecar.remove();
  }

  bool ordered() const override { return true; }
  bool resumable() const override { return m_options.resume && m_progress && !m_committed; }

  void write(const Descriptor& desc, Reader& content) override
  {
    if (m_next >= m_pending.size() || m_pending[m_next].get().digest != desc.digest)
      throw Error(Errc::invalid_argument, desc.digest.str() + ": written out of the bundle's order");
    std::size_t index = m_plan.index.at(desc.digest);
    const Entry& e = m_plan.entries[index];
    std::optional<Partials::Partial> kept;
    if (m_part && m_part->digest == desc.digest) kept.emplace(Partials::Partial{m_part->bytes, std::move(m_part->hasher)});
    m_part.reset();
    if (!kept) {
      emit_memory_entries(index);
      const std::string header = e.header();
      compress(header.data(), header.size());
    }
    // Frames end at every checkpoint too, so a re-run can continue from there and still
    // produce the same bytes.
    copy_entry(
        e, content, std::move(kept), [&](const char* p, std::size_t n, std::uint64_t) { compress(p, n); },
        [&](std::uint64_t pos) {
          end_frame();
          m_sidecar.append("partial " + e.desc.digest.str() + " " + std::to_string(pos) + " " + std::to_string(m_offset));
          m_progress = true;
        },
        [&] {
          // The kept bytes were damaged, or the blob's bytes were wrong from the start (its
          // checkpoints in this run are of bytes that do not hash to its digest): back to the
          // last finished blob, so that writing this one again starts from its first byte
          // (here, or in a re-run), with a fresh encoder.
          m_encoder->reset();
          m_out->truncate(m_finished_offset);
          m_offset = m_finished_offset;
          m_cursor = m_finished_cursor;
          m_sidecar.start(m_plan.id, m_lines);
        });
    std::string pad(tar_padding(e.desc.size), '\0');
    compress(pad.data(), pad.size());
    end_frame();
    std::string line = e.desc.digest.str() + " " + std::to_string(m_offset);
    m_sidecar.append(line);
    m_lines.push_back(line);
    m_cursor = index + 1;
    m_finished_offset = m_offset;
    m_finished_cursor = m_cursor;
    ++m_next;
    m_progress = true;
  }

  void commit() override
  {
    if (m_next != m_pending.size())
      throw Error(Errc::io, m_path.string() + ": blob " + m_pending[m_next].get().digest.str() + " was not written");
    emit_memory_entries(m_plan.entries.size());
    std::string end(1024, '\0');
    compress(end.data(), end.size());
    end_frame();
    commit_output(*m_out, m_path, m_sidecar);
    m_committed = true;
  }

private:
  void emit_memory_entries(std::size_t until)
  {
    for (; m_cursor < until; ++m_cursor) {
      const Entry& e = m_plan.entries[m_cursor];
      if (!e.bytes) throw Error(Errc::invalid_argument, e.desc.digest.str() + ": skipped in the bundle's order");
      std::string block = e.header() + *e.bytes + std::string(tar_padding(e.desc.size), '\0');
      compress(block.data(), block.size());
    }
  }
  void compress(const char* data, std::size_t n) { run(data, n, false); }
  void end_frame() { run(nullptr, 0, true); }
  void run(const char* data, std::size_t n, bool end)
  {
    m_encoder->run(data, n, end, [&](const char* out, std::size_t k) {
      m_out->pwrite(out, k, m_offset);
      m_offset += k;
    });
  }

  Plan m_plan;
  Options m_options;
  Sidecar m_sidecar;
  std::unique_ptr<Output> m_out;
  std::unique_ptr<FrameEncoder> m_encoder;
  struct PartialBlob {
    Digest digest;
    std::uint64_t bytes;
    Hasher hasher;
  };
  std::uint64_t m_offset = 0;
  std::size_t m_cursor = 0;  ///< next entry to emit
  std::size_t m_next = 0;    ///< next pending blob
  std::optional<PartialBlob> m_part;       ///< the blob an interrupted run was in the middle of
  std::uint64_t m_finished_offset = 0;     ///< compressed bytes up to the last finished blob
  std::size_t m_finished_cursor = 0;       ///< the entry after it
  std::vector<std::string> m_lines;        ///< the sidecar's lines for finished blobs
  bool m_progress = false;
  bool m_committed = false;
};

// (Multi-threaded) zstd: one frame per run(…, end).
class ZstdEncoder : public FrameEncoder {
public:
  ZstdEncoder(int level, unsigned threads, std::string what)
    : m_level(level), m_threads(threads), m_what(std::move(what)), m_out(ZSTD_CStreamOutSize())
  {
    reset();
  }

  void reset() override
  {
    // A new compressor: resetting one whose worker threads are mid-frame crashed libzstd
    // 1.5.4 (freeing one waits for its jobs).
    m_cctx.reset(ZSTD_createCCtx());
    if (!m_cctx) throw Error(Errc::io, m_what + ": zstd: out of memory");
    ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_compressionLevel, m_level);
    unsigned threads = m_threads ? m_threads : std::max(1u, std::thread::hardware_concurrency());
    // Without multi-threading support in libzstd this fails and compression stays on one thread.
    ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_nbWorkers, static_cast<int>(threads));
    // Smaller jobs than zstd's default (4 windows) keep each worker's buffers, and so the
    // peak memory, small; the output depends on it, so it is fixed.
    ZSTD_CCtx_setParameter(m_cctx.get(), ZSTD_c_jobSize, 2 << 20);
  }

  void run(const char* data, std::size_t n, bool end, const std::function<void(const char*, std::size_t)>& sink) override
  {
    ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;
    ZSTD_inBuffer in{data, n, 0};
    for (;;) {
      ZSTD_outBuffer out{m_out.data(), m_out.size(), 0};
      std::size_t left = ZSTD_compressStream2(m_cctx.get(), &out, &in, mode);
      if (ZSTD_isError(left)) throw Error(Errc::io, m_what + ": zstd: " + ZSTD_getErrorName(left));
      sink(m_out.data(), out.pos);
      if (mode == ZSTD_e_continue ? in.pos == in.size : left == 0) return;
    }
  }

  std::unique_ptr<Reader> decoder(std::unique_ptr<Reader> compressed, const std::string& what) const override
  {
    return std::make_unique<ZstdReader>(std::move(compressed), what, false);
  }

private:
  int m_level;
  unsigned m_threads;
  std::string m_what;
  std::vector<char> m_out;
  std::unique_ptr<ZSTD_CCtx, ZstdCCtxFree> m_cctx;
};

} // namespace

std::unique_ptr<BundleWriter> make_compressed_writer(fs::path path, Plan plan, const BundleWriter::Options& options,
                                                     std::unique_ptr<FrameEncoder> encoder)
{
  return std::make_unique<CompressedPlanWriter>(std::move(path), std::move(plan), options, std::move(encoder));
}

std::unique_ptr<BundleWriter> make_zstd_writer(fs::path path, Plan plan, const BundleWriter::Options& options)
{
  auto encoder = std::make_unique<ZstdEncoder>(options.zstd_level, options.zstd_threads, path.string() + ".partial");
  return make_compressed_writer(std::move(path), std::move(plan), options, std::move(encoder));
}

} // namespace ferry::detail

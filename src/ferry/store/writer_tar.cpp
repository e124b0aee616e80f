// The `.tar` bundle writer: the archive laid out up front, blobs written into their regions
// from several threads at once (issue 5).
#include "writer_plan.hpp"


namespace ferry::detail {

namespace {

class TarPlanWriter : public UnorderedPlanWriter {
public:
  TarPlanWriter(fs::path path, Plan plan, const Options& options)
    : UnorderedPlanWriter(std::move(path), std::move(plan), options)
  {
    fs::path partial = partial_path();
    std::set<Digest> claimed;
    std::map<Digest, std::uint64_t> started;
    bool resumed = false;
    if (options.resume) {
      auto lines = read_lines(sidecar_path());
      std::error_code ec;
      if (!lines.empty() && lines[0] == m_plan.id && fs::file_size(partial, ec) == m_plan.tar_size && !ec) {
        resumed = true;
        for (std::size_t i = 1; i < lines.size(); ++i)
          if (Digest::is_valid(lines[i])) claimed.insert(Digest::parse(lines[i]));
        started = partial_lines(lines);
      }
    }
    if (!resumed) {
      std::error_code ec;
      fs::remove(sidecar_path(), ec);
      fs::remove(partial, ec);
    }
    m_out = make_output(m_path, partial, options.volume_size);
    if (!resumed) {
      // Reserve the space now: a disk too small fails here, before any download.
      m_out->reserve(m_plan.tar_size);
      m_sidecar.start(m_plan.id);
    } else {
      m_sidecar.open_append();
    }
    m_pending.reserve(m_plan.entries.size());
    for (const auto& e : m_plan.entries) {
      if (e.bytes) {
        std::string block = e.header() + *e.bytes + std::string(tar_padding(e.desc.size), '\0');
        m_out->pwrite(block.data(), block.size(), e.offset);
        continue;
      }
      RegionReader region(m_out->fd(), e.offset, e.end() - e.offset, partial.string());
      if (claimed.count(e.desc.digest) && entry_matches(region, e)) {
        ++m_reused_blobs;
        m_reused_bytes += e.desc.size;
        continue;
      }
      m_pending.push_back(e.desc);
      auto part = started.find(e.desc.digest);
      if (part == started.end() || part->second == 0 || part->second >= e.desc.size) continue;
      const std::string header = e.header();
      RegionReader head(m_out->fd(), e.offset, header.size() + part->second, partial.string());
      std::string h(header.size(), '\0');
      if (!read_exact(head, h.data(), h.size()) || h != header) continue;
      if (auto hasher = hash_prefix(head, e.desc.digest, part->second)) {
        m_partials.put(e.desc.digest, part->second, std::move(*hasher));
        m_reused_bytes += part->second;
        ++m_continued_blobs;
      }
    }
    m_progress = m_reused_bytes > 0;
  }

  ~TarPlanWriter() override
  {
    if (m_committed) return;
    bool keep = m_options.resume && m_progress;  // kept for a re-run
    m_out->close(keep);
    if (!keep) m_sidecar.remove();
  }

  void write(const Descriptor& desc, Reader& content) override
  {
    const Entry& e = entry(desc);
    auto kept = m_partials.take(e.desc.digest);
    if (!kept) {
      const std::string header = e.header();
      m_out->pwrite(header.data(), header.size(), e.offset);
    }
    copy_entry(
        e, content, std::move(kept),
        [&](const char* p, std::size_t n, std::uint64_t pos) { m_out->pwrite(p, n, e.data_offset() + pos); },
        [&](std::uint64_t pos) { checkpoint(e, pos); }, [&] { checkpoint(e, 0); });
    std::string pad(tar_padding(e.desc.size), '\0');
    m_out->pwrite(pad.data(), pad.size(), e.data_offset() + e.desc.size);
    finished(e.desc.digest);
  }

  void commit() override
  {
    check_all_written();
    std::string end(1024, '\0');
    m_out->pwrite(end.data(), end.size(), m_plan.tar_size - 1024);
    commit_output(*m_out, m_path, m_sidecar);
    m_committed = true;
  }

private:
  std::unique_ptr<Output> m_out;
};

} // namespace

std::unique_ptr<BundleWriter> make_tar_writer(fs::path path, Plan plan, const BundleWriter::Options& options)
{
  return std::make_unique<TarPlanWriter>(std::move(path), std::move(plan), options);
}

} // namespace ferry::detail

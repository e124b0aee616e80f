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
    m_fd = UniqueFd(partial, O_RDWR | O_CREAT);
    if (!resumed) {
      // Reserve the space now: a disk too small fails here, before any download.
      if (::fallocate(m_fd.get(), 0, 0, static_cast<off_t>(m_plan.tar_size)) != 0 && errno == ENOSPC)
        throw Error(Errc::no_space, partial.string() + ": not enough space for " + std::to_string(m_plan.tar_size) + " bytes");
      if (::ftruncate(m_fd.get(), static_cast<off_t>(m_plan.tar_size)) != 0) fail_errno(partial, "truncate", errno);
      m_sidecar.start(m_plan.id);
    } else {
      m_sidecar.open_append();
    }
    for (const auto& e : m_plan.entries) {
      if (e.bytes) {
        std::string block = e.header + *e.bytes + std::string(tar_padding(e.desc.size), '\0');
        pwrite_all(m_fd.get(), partial, block.data(), block.size(), e.offset);
        continue;
      }
      RegionReader region(m_fd.get(), e.offset, e.end() - e.offset, partial.string());
      if (claimed.count(e.desc.digest) && entry_matches(region, e)) {
        ++m_reused_blobs;
        m_reused_bytes += e.desc.size;
        continue;
      }
      m_pending.push_back(e.desc);
      auto part = started.find(e.desc.digest);
      if (part == started.end() || part->second == 0 || part->second >= e.desc.size) continue;
      RegionReader head(m_fd.get(), e.offset, e.header.size() + part->second, partial.string());
      std::string h(e.header.size(), '\0');
      if (!read_exact(head, h.data(), h.size()) || h != e.header) continue;
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
    m_fd.reset();
    if (m_options.resume && m_progress) return;  // kept for a re-run
    m_sidecar.remove();
    std::error_code ec;
    fs::remove(partial_path(), ec);
  }

  void write(const Descriptor& desc, Reader& content) override
  {
    const Entry& e = entry(desc);
    fs::path partial = partial_path();
    auto kept = m_partials.take(e.desc.digest);
    if (!kept) pwrite_all(m_fd.get(), partial, e.header.data(), e.header.size(), e.offset);
    copy_entry(
        e, content, std::move(kept),
        [&](const char* p, std::size_t n, std::uint64_t pos) { pwrite_all(m_fd.get(), partial, p, n, e.data_offset() + pos); },
        [&](std::uint64_t pos) { checkpoint(e, pos); }, [&] { checkpoint(e, 0); });
    std::string pad(tar_padding(e.desc.size), '\0');
    pwrite_all(m_fd.get(), partial, pad.data(), pad.size(), e.data_offset() + e.desc.size);
    finished(e.desc.digest);
  }

  void commit() override
  {
    check_all_written();
    fs::path partial = partial_path();
    std::string end(1024, '\0');
    pwrite_all(m_fd.get(), partial, end.data(), end.size(), m_plan.tar_size - 1024);
    commit_file(m_fd, partial, m_path, m_sidecar);
    m_committed = true;
  }

private:
  UniqueFd m_fd;
};

} // namespace

std::unique_ptr<BundleWriter> make_tar_writer(fs::path path, Plan plan, const BundleWriter::Options& options)
{
  return std::make_unique<TarPlanWriter>(std::move(path), std::move(plan), options);
}

} // namespace ferry::detail

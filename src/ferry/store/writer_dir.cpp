// The directory bundle writer: blobs in place under `<path>.partial/blobs/`, one syncfs at
// the end (issue 5).
#include "writer_plan.hpp"


namespace ferry::detail {

namespace {

// Blobs land in place under `<path>.partial/blobs/`, each through a temporary name and a
// rename, so a blob file that exists is whole (resume re-hashes it all the same); the
// sidecar names the plan and, for the record, each finished blob. One syncfs
// at the end instead of an fsync per blob.
class DirPlanWriter : public UnorderedPlanWriter {
public:
  DirPlanWriter(fs::path path, Plan plan, const Options& options)
    : UnorderedPlanWriter(std::move(path), std::move(plan), options)
  {
    fs::path partial = partial_path();
    bool resumed = false;
    std::map<Digest, std::uint64_t> started;
    if (options.resume && fs::is_directory(partial)) {
      auto lines = read_lines(sidecar_path());
      resumed = !lines.empty() && lines[0] == m_plan.id;
      if (resumed) started = partial_lines(lines);
    }
    if (!resumed) fs::remove_all(partial);
    std::vector<std::string> reused;
    std::set<std::string> dirs;
    m_pending.reserve(m_plan.entries.size());
    for (const auto& e : m_plan.entries) {
      if (e.name == "oci-layout" || e.name == "index.json") continue;  // at commit
      fs::path file = partial / e.name;
      if (dirs.insert(file.parent_path().string()).second) fs::create_directories(file.parent_path());
      if (e.bytes) {
        put(file, *e.bytes);
        continue;
      }
      bool have = false;
      if (resumed && fs::exists(file)) {
        FileReader r(file);
        have = content_matches(r, e.desc.digest, e.desc.size) && fs::file_size(file) == e.desc.size;
      }
      if (have) {
        ++m_reused_blobs;
        m_reused_bytes += e.desc.size;
        reused.push_back(e.desc.digest.str());
        continue;
      }
      m_pending.push_back(e.desc);
      // A blob cut off after a checkpoint: its temporary file holds at least that much.
      auto part = started.find(e.desc.digest);
      fs::path tmp = file.string() + ".tmp";
      std::error_code ec;
      if (part == started.end() || part->second == 0 || part->second >= e.desc.size || fs::file_size(tmp, ec) < part->second || ec)
        continue;
      FileReader r(tmp);
      if (auto hasher = hash_prefix(r, e.desc.digest, part->second)) {
        m_partials.put(e.desc.digest, part->second, std::move(*hasher));
        m_reused_bytes += part->second;
        ++m_continued_blobs;
        reused.push_back("partial " + e.desc.digest.str() + " " + std::to_string(part->second));
      }
    }
    m_sidecar.start(m_plan.id, reused);
    m_progress = m_reused_bytes > 0;
  }

  ~DirPlanWriter() override
  {
    if (m_committed) return;
    if (m_options.resume && m_progress) return;
    m_sidecar.remove();
    std::error_code ec;
    fs::remove_all(partial_path(), ec);
  }

  void write(const Descriptor& desc, Reader& content) override
  {
    const Entry& e = entry(desc);
    fs::path file = partial_path() / e.name;
    fs::path tmp = file.string() + ".tmp";
    {
      auto kept = m_partials.take(e.desc.digest);
      UniqueFd fd(tmp, O_WRONLY | O_CREAT | (kept ? 0 : O_TRUNC));
      if (kept && ::ftruncate(fd.get(), static_cast<off_t>(kept->size)) != 0) fail_errno(tmp, "truncate", errno);
      // A transfer cut off keeps its temporary file for a re-run; damaged bytes do not.
      copy_entry(
          e, content, std::move(kept),
          [&](const char* p, std::size_t n, std::uint64_t pos) { pwrite_all(fd.get(), tmp, p, n, pos); },
          [&](std::uint64_t pos) { checkpoint(e, pos); },
          [&] {
            std::error_code ec;
            fs::remove(tmp, ec);
            checkpoint(e, 0);
          });
    }
    if (::rename(tmp.c_str(), file.c_str()) != 0) fail_errno(file, "rename", errno);
    finished(desc.digest);  // the sidecar line is for people and tests; resume trusts the files
  }

  void commit() override
  {
    check_all_written();
    fs::path partial = partial_path();
    put(partial / "oci-layout", *m_plan.entries[0].bytes);
    put(partial / "index.json", *m_plan.entries[1].bytes);
    {
      UniqueFd dir(partial, O_RDONLY | O_DIRECTORY);
      if (::syncfs(dir.get()) != 0) fail_errno(partial, "syncfs", errno);
    }
    if (fs::exists(m_path)) fs::remove_all(m_path);
    if (::rename(partial.c_str(), m_path.c_str()) != 0) fail_errno(m_path, "rename", errno);
    m_committed = true;
    m_sidecar.remove();
    fsync_dir(m_path.has_parent_path() ? m_path.parent_path() : fs::path("."));
  }

private:
  static void put(const fs::path& file, const std::string& bytes)
  {
    fs::path tmp = file.string() + ".tmp";
    {
      UniqueFd fd(tmp, O_WRONLY | O_CREAT | O_TRUNC);
      write_all(fd.get(), tmp, bytes.data(), bytes.size());
    }
    if (::rename(tmp.c_str(), file.c_str()) != 0) fail_errno(file, "rename", errno);
  }
};

} // namespace

std::unique_ptr<BundleWriter> make_dir_writer(fs::path path, Plan plan, const BundleWriter::Options& options)
{
  return std::make_unique<DirPlanWriter>(std::move(path), std::move(plan), options);
}

} // namespace ferry::detail

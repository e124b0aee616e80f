#pragma once
/// Byte-level progress of blob transfers, for a progress display (issue 7). The library
/// reports; the CLI draws (on a terminal only). Implementations are called from several
/// threads at once.
#include <ferry/descriptor.hpp>
#include <ferry/util/reader.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ferry {

class Progress {
public:
  virtual ~Progress() = default;
  /// A phase begins: `items` blobs of `bytes` in all to move (`what`: "saving", "pushing to
  /// reg/repo", "verifying").
  virtual void start(const std::string& what, std::size_t items, std::uint64_t bytes) = 0;
  /// A blob starts moving; `already` of its bytes are there (a resumed blob).
  virtual void item_start(const Descriptor& desc, std::uint64_t already) = 0;
  /// `n` more bytes of `desc` moved.
  virtual void item_bytes(const Descriptor& desc, std::uint64_t n) = 0;
  /// `desc` is finished (or abandoned).
  virtual void item_done(const Descriptor& desc) = 0;
  /// The phase is over.
  virtual void finish() = 0;
};

/// Reports every byte read through it to `progress` as bytes of `desc`: item_start on
/// construction, item_done on destruction.
class ProgressReader : public Reader {
public:
  ProgressReader(std::unique_ptr<Reader> inner, const Descriptor& desc, Progress& progress, std::uint64_t already = 0)
    : m_inner(std::move(inner)), m_desc(desc), m_progress(progress)
  {
    m_progress.item_start(m_desc, already);
  }
  ~ProgressReader() override { m_progress.item_done(m_desc); }
  ProgressReader(const ProgressReader&) = delete;
  ProgressReader& operator=(const ProgressReader&) = delete;
  std::size_t read(char* buf, std::size_t n) override
  {
    std::size_t k = m_inner->read(buf, n);
    if (k > 0) m_progress.item_bytes(m_desc, k);
    return k;
  }

private:
  std::unique_ptr<Reader> m_inner;
  Descriptor m_desc;
  Progress& m_progress;
};

/// One phase on `progress` (which may be null): start() with `blobs`' count and total size
/// on construction, finish() on destruction, also when the phase fails.
class ProgressPhase {
public:
  /// `blobs`: descriptors, or references to them (BundleWriter::pending()).
  template <typename Blobs>
  ProgressPhase(Progress* progress, const std::string& what, const Blobs& blobs) : m_progress(progress)
  {
    if (!m_progress) return;
    std::uint64_t bytes = 0;
    for (const Descriptor& d : blobs) bytes += d.size;
    m_progress->start(what, blobs.size(), bytes);
  }
  ~ProgressPhase()
  {
    if (m_progress) m_progress->finish();
  }
  ProgressPhase(const ProgressPhase&) = delete;
  ProgressPhase& operator=(const ProgressPhase&) = delete;

private:
  Progress* m_progress;
};

/// `reader` wrapped in a ProgressReader when `progress` is set, else itself.
inline std::unique_ptr<Reader> with_progress(std::unique_ptr<Reader> reader, const Descriptor& desc, Progress* progress,
                                             std::uint64_t already = 0)
{
  if (!progress) return reader;
  return std::make_unique<ProgressReader>(std::move(reader), desc, *progress, already);
}

} // namespace ferry

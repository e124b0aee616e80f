#pragma once
// Progress bars on a terminal (issue 7): per-blob bars and a total with bytes, rate and ETA,
// redrawn in place on stderr at most ten times a second. Only when stderr is a terminal and
// -q is not given; log lines printed meanwhile go above the bars.
#include <ferry/progress.hpp>

#include <chrono>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace ferry::cli {

class TtyProgress : public Progress {
public:
  /// Draws on `out` (a terminal), `width` columns wide (0: ask the terminal).
  explicit TtyProgress(std::FILE* out, unsigned width = 0);
  ~TtyProgress() override;
  TtyProgress(const TtyProgress&) = delete;
  TtyProgress& operator=(const TtyProgress&) = delete;

  void start(const std::string& what, std::size_t items, std::uint64_t bytes) override;
  void item_start(const Descriptor& desc, std::uint64_t already) override;
  void item_bytes(const Descriptor& desc, std::uint64_t n) override;
  void item_done(const Descriptor& desc) override;
  void finish() override;
  /// Prints a log line above the bars, escaped (escape_for_terminal).
  void log(const std::string& line);

private:
  struct Item {
    std::string digest;
    std::uint64_t size = 0, done = 0;
  };
  void draw(bool force);  // with m_mutex held
  void erase();           // with m_mutex held
  unsigned width() const;

  std::mutex m_mutex;
  std::FILE* m_out;
  unsigned m_width;
  bool m_active = false;
  std::string m_what;
  std::size_t m_items = 0, m_items_done = 0;
  std::uint64_t m_total = 0, m_done = 0;
  std::vector<Item> m_running;
  std::chrono::steady_clock::time_point m_started{}, m_last_draw{};
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> m_samples;  // for the rate
  unsigned m_lines = 0;  // lines of the frame on screen
};

} // namespace ferry::cli

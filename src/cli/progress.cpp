#include "progress.hpp"
#include "common.hpp"

#include <ferry/util/text.hpp>

#include <algorithm>
#include <sys/ioctl.h>
#include <unistd.h>

namespace ferry::cli {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto k_frame = std::chrono::milliseconds(100);
constexpr std::size_t k_max_bars = 6;

std::string bar(std::uint64_t done, std::uint64_t total, unsigned cells)
{
  unsigned filled = total == 0 ? cells : static_cast<unsigned>(std::min<std::uint64_t>(cells, done * cells / total));
  std::string s = "[";
  for (unsigned i = 0; i < cells; ++i) s += i < filled ? "#" : (i == filled ? ">" : " ");
  return s + "]";
}

std::string duration(double seconds)
{
  auto s = static_cast<unsigned long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%luh%02lum", s / 3600, s % 3600 / 60);
  else std::snprintf(buf, sizeof buf, "%lum%02lus", s / 60, s % 60);
  return buf;
}

} // namespace

TtyProgress::TtyProgress(std::FILE* out, unsigned width) : m_out(out), m_width(width) {}

TtyProgress::~TtyProgress() { finish(); }

unsigned TtyProgress::width() const
{
  if (m_width) return m_width;
  winsize ws{};
  if (::ioctl(::fileno(m_out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

void TtyProgress::start(const std::string& what, std::size_t items, std::uint64_t bytes)
{
  std::lock_guard lock(m_mutex);
  erase();
  m_active = true;
  m_what = escape_for_terminal(what);  // it may name a repository from the bundle
  m_items = items;
  m_items_done = 0;
  m_total = bytes;
  m_done = 0;
  m_running.clear();
  m_started = Clock::now();
  m_samples.clear();
  m_samples.emplace_back(m_started, 0);
  draw(true);
}

void TtyProgress::item_start(const Descriptor& desc, std::uint64_t already)
{
  std::lock_guard lock(m_mutex);
  if (!m_active) return;
  std::string key = desc.digest.str();
  auto it = std::find_if(m_running.begin(), m_running.end(), [&](const Item& i) { return i.digest == key; });
  if (it != m_running.end()) {  // fetched again from the start (a damaged resume)
    m_done -= std::min(m_done, it->done);
    it->done = already;
  } else {
    m_running.push_back({key, desc.size, already});
  }
  m_done += already;
  draw(false);
}

void TtyProgress::item_bytes(const Descriptor& desc, std::uint64_t n)
{
  std::lock_guard lock(m_mutex);
  if (!m_active) return;
  std::string key = desc.digest.str();
  for (auto& i : m_running)
    if (i.digest == key) {
      i.done += n;
      break;
    }
  m_done += n;
  draw(false);
}

void TtyProgress::item_done(const Descriptor& desc)
{
  std::lock_guard lock(m_mutex);
  if (!m_active) return;
  std::string key = desc.digest.str();
  auto it = std::find_if(m_running.begin(), m_running.end(), [&](const Item& i) { return i.digest == key; });
  if (it == m_running.end()) return;
  if (it->done >= it->size) ++m_items_done;
  m_running.erase(it);
  draw(m_items_done == m_items);  // the last one is always drawn: the bar ends at 100%
}

void TtyProgress::finish()
{
  std::lock_guard lock(m_mutex);
  erase();
  m_active = false;
  m_running.clear();
}

void TtyProgress::log(const std::string& line)
{
  if (!take_line(m_out)) return;  // the line budget of print_line (common.hpp)
  std::lock_guard lock(m_mutex);
  erase();
  std::string text = escape_for_terminal(line) + "\n";  // as print_line: the one way log lines go out
  std::fwrite(text.data(), 1, text.size(), m_out);
  if (m_active) draw(true);
  std::fflush(m_out);
}

void TtyProgress::erase()
{
  if (m_lines == 0) return;
  std::fprintf(m_out, "\x1b[%uF\x1b[J", m_lines);  // to the frame's first line, clear to the end
  m_lines = 0;
  std::fflush(m_out);
}

void TtyProgress::draw(bool force)
{
  auto now = Clock::now();
  if (!force && now - m_last_draw < k_frame) return;
  m_last_draw = now;
  // Rate over the last few seconds; ETA from it.
  m_samples.emplace_back(now, m_done);
  while (m_samples.size() > 2 && now - m_samples.front().first > std::chrono::seconds(5)) m_samples.pop_front();
  double span = std::chrono::duration<double>(now - m_samples.front().first).count();
  double rate = span > 0.2 ? static_cast<double>(m_done - std::min(m_done, m_samples.front().second)) / span : 0;
  const unsigned cols = width() - 1;  // never wrap: the frame is redrawn by counting lines

  std::vector<std::string> lines;
  std::size_t shown = 0;
  for (const auto& i : m_running) {
    if (shown++ == k_max_bars) {
      lines.push_back("  ... and " + std::to_string(m_running.size() - k_max_bars) + " more");
      break;
    }
    std::string label = "  " + i.digest.substr(0, std::min<std::size_t>(i.digest.size(), 19)) + "... ";
    std::string tail = " " + human_bytes(i.done) + " / " + human_bytes(i.size);
    int cells = static_cast<int>(cols) - static_cast<int>(label.size() + tail.size()) - 2;
    lines.push_back(label + bar(i.done, i.size, static_cast<unsigned>(std::clamp(cells, 5, 40))) + tail);
  }
  unsigned pct = m_total ? static_cast<unsigned>(std::min<std::uint64_t>(100, m_done * 100 / m_total)) : 100;
  std::string eta = rate > 0 && m_done < m_total ? "  ETA " + duration(static_cast<double>(m_total - m_done) / rate) : "";
  std::string tail = " " + std::to_string(pct) + "%  " + human_bytes(m_done) + " / " + human_bytes(m_total) + "  " +
                     human_bytes(static_cast<std::uint64_t>(rate)) + "/s" + eta + "  " + std::to_string(m_items_done) +
                     "/" + std::to_string(m_items) + " blobs";
  // The numbers matter most: the label gives way first (its middle elided), then the bar.
  std::string head = m_what;
  int room = static_cast<int>(cols) - static_cast<int>(tail.size()) - 2 - 12;
  if (room < static_cast<int>(head.size())) {
    std::size_t keep = static_cast<std::size_t>(std::max(room, 10));
    if (keep < head.size()) head = head.substr(0, keep / 2) + "~" + head.substr(head.size() - (keep - keep / 2 - 1));
  }
  head += " ";
  int cells = static_cast<int>(cols) - static_cast<int>(head.size() + tail.size()) - 2;
  lines.push_back(head + bar(m_done, m_total, static_cast<unsigned>(std::clamp(cells, 5, 40))) + tail);

  std::string frame = m_lines ? "\x1b[" + std::to_string(m_lines) + "F\x1b[J" : std::string();
  for (auto& l : lines) {
    if (l.size() > cols) l.resize(cols);
    frame += l + "\n";
  }
  std::fwrite(frame.data(), 1, frame.size(), m_out);
  std::fflush(m_out);
  m_lines = static_cast<unsigned>(lines.size());
}

} // namespace ferry::cli

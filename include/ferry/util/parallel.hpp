#pragma once
/// Runs work items on a few threads; the first failure stops the rest and is rethrown.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace ferry {

template <typename T, typename Fn>
void parallel_for_each(const std::vector<T>& items, unsigned workers, Fn&& fn)
{
  workers = std::max(1u, std::min<unsigned>(workers, static_cast<unsigned>(items.size())));
  if (workers <= 1) {
    for (const auto& item : items) fn(item);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&] {
    for (;;) {
      std::size_t i = next.fetch_add(1);
      if (i >= items.size() || failed.load()) return;
      try {
        fn(items[i]);
      } catch (...) {
        std::lock_guard lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < workers; ++w) threads.emplace_back(run);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

/// Runs submitted tasks on `workers` threads. submit() blocks while `max_queued` tasks wait
/// (bounding the memory they hold). The first failure stops what has not started and is
/// rethrown by submit() or finish(). The destructor waits for the threads.
class TaskPool {
public:
  TaskPool(unsigned workers, std::size_t max_queued) : m_max_queued(std::max<std::size_t>(1, max_queued))
  {
    for (unsigned w = 0; w < std::max(1u, workers); ++w) m_threads.emplace_back([this] { run(); });
  }
  ~TaskPool()
  {
    {
      std::lock_guard lock(m_mutex);
      m_closing = true;
    }
    m_cv.notify_all();
    for (auto& t : m_threads) t.join();
  }
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  void submit(std::function<void()> task)
  {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_error || m_queue.size() < m_max_queued; });
    if (m_error) std::rethrow_exception(m_error);
    m_queue.push_back(std::move(task));
    m_cv.notify_all();
  }
  /// Waits until every task ran; rethrows the first failure.
  void finish()
  {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_error || (m_queue.empty() && m_running == 0); });
    if (m_error) std::rethrow_exception(m_error);
  }

private:
  void run()
  {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [&] { return m_closing || !m_queue.empty(); });
        if (m_queue.empty()) return;
        task = std::move(m_queue.front());
        m_queue.pop_front();
        if (m_error) continue;  // failed: drop what has not started
        ++m_running;
      }
      try {
        task();
      } catch (...) {
        std::lock_guard lock(m_mutex);
        if (!m_error) m_error = std::current_exception();
      }
      {
        std::lock_guard lock(m_mutex);
        --m_running;
      }
      m_cv.notify_all();
    }
  }

  std::size_t m_max_queued;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<std::function<void()>> m_queue;
  std::size_t m_running = 0;
  std::exception_ptr m_error;
  bool m_closing = false;
  std::vector<std::thread> m_threads;
};

} // namespace ferry

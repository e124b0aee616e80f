#pragma once
/// Runs work items on a few threads; the first failure stops the rest and is rethrown.
#include <algorithm>
#include <atomic>
#include <cstddef>
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

} // namespace ferry

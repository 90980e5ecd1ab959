// engine::thread_pool -- a fixed set of worker threads for data-parallel loops.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace engine {

class thread_pool {
 public:
  explicit thread_pool(int n_threads);  // n_threads <= 0: hardware_concurrency
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  int size() const;  // threads taking part in parallel_for, the calling thread included

  // Calls fn(begin, end) on disjoint chunks covering [0, n), on all threads; returns when done.
  // The first exception thrown by fn is rethrown here (after all chunks have finished).
  // Calls from inside fn (nested) and calls with n == 1 run on the calling thread.
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn);

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace engine

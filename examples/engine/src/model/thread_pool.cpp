#include "model/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace engine {
namespace {

// True on pool workers and on a thread that is inside parallel_for: nested calls run inline.
thread_local bool t_inside_pool = false;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// Idle threads poll this long before they sleep, so that back-to-back parallel_for calls (one
// per matmul in a decode step) do not pay a futex wake-up each.
constexpr auto kSpin = std::chrono::microseconds(100);

// The chunk index of a ticket while its job's parameters are being written: above any count.
constexpr uint64_t kClosed = 0xFFFFFFFFu;

// Polls `done()` with pause instructions for up to kSpin; true if it became true.
template <class F> bool spin_until(F done) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() - start > kSpin) return done();
  }
}

}  // namespace

// Work distribution: a job is split into n_chunks chunks; `ticket` holds (job id << 32 | next
// unclaimed chunk) and threads claim chunks by compare-exchange on it, so a thread that wakes
// late (after the job was finished by others and a new one was published) can never claim a
// chunk of the old job with the new job's parameters or vice versa: the ticket is closed
// (index kClosed) before the parameters change and opened after. The caller waits for
// `done` == n_chunks, not for every worker: on an oversubscribed machine it may do all chunks.
struct thread_pool::state {
  std::vector<std::thread> workers;
  std::mutex call_mutex;  // one parallel_for at a time

  // The current job's parameters (atomics: a late thread may read them while they change;
  // its compare-exchange on `ticket` then fails and it retries).
  std::atomic<const std::function<void(int64_t, int64_t)>*> fn{nullptr};
  std::atomic<int64_t> n{0}, chunk{1}, n_chunks{0};
  std::atomic<uint64_t> ticket{0};
  std::atomic<int64_t> done{0};
  uint32_t job_id = 0;

  std::mutex m;  // guards sleeping: generation changes and stop are announced under it
  std::condition_variable cv_start, cv_done;
  std::atomic<uint64_t> generation{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> caller_sleeping{false};

  std::mutex error_mutex;
  std::exception_ptr first_error;

  void work() {
    for (;;) {
      uint64_t t = ticket.load(std::memory_order_acquire);
      const int64_t idx = static_cast<int64_t>(t & 0xFFFFFFFFu);
      // Acquire: a value of the next job seen here makes its closed ticket visible to the
      // compare-exchange below, which then fails.
      const int64_t nch = n_chunks.load(std::memory_order_acquire);
      const int64_t cn = chunk.load(std::memory_order_acquire);
      const int64_t total = n.load(std::memory_order_acquire);
      const auto* f = fn.load(std::memory_order_acquire);
      if (idx >= nch) return;
      if (!ticket.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel)) continue;
      const int64_t begin = idx * cn, end = std::min(total, begin + cn);
      try {
        (*f)(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!first_error) first_error = std::current_exception();
      }
      if (done.fetch_add(1, std::memory_order_seq_cst) + 1 == nch &&
          caller_sleeping.load(std::memory_order_seq_cst)) {
        std::lock_guard<std::mutex> lock(m);
        cv_done.notify_one();
      }
    }
  }

  void worker_loop() {
    t_inside_pool = true;
    uint64_t seen = 0;
    for (;;) {
      if (!spin_until([&] { return generation.load(std::memory_order_acquire) != seen; })) {
        std::unique_lock<std::mutex> lock(m);
        cv_start.wait(lock, [&] { return stop.load() || generation.load() != seen; });
      }
      if (stop.load()) return;
      seen = generation.load(std::memory_order_acquire);
      work();
    }
  }
};

thread_pool::thread_pool(int n_threads) : state_(std::make_unique<state>()) {
  if (n_threads <= 0)
    n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  state_->workers.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i)
    state_->workers.emplace_back([s = state_.get()] { s->worker_loop(); });
}

thread_pool::~thread_pool() {
  {
    std::lock_guard<std::mutex> lock(state_->m);
    state_->stop = true;
    state_->generation.fetch_add(1);
  }
  state_->cv_start.notify_all();
  for (auto& t : state_->workers) t.join();
}

int thread_pool::size() const { return static_cast<int>(state_->workers.size()) + 1; }

void thread_pool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (n == 1 || state_->workers.empty() || t_inside_pool) {
    fn(0, n);
    return;
  }
  state& s = *state_;
  std::lock_guard<std::mutex> call_lock(s.call_mutex);
  // A few chunks per thread balance uneven progress (other processes on the cores).
  const int64_t n_chunks = std::min<int64_t>(n, int64_t{size()} * 4);
  const int64_t chunk = (n + n_chunks - 1) / n_chunks;
  // Close the ticket before the parameters change: a late thread that read the last job's
  // exhausted ticket must fail its compare-exchange, not claim a chunk past the old count with
  // the new job's parameters (which ran that chunk twice and counted one chunk too many).
  ++s.job_id;
  s.ticket.store(uint64_t{s.job_id} << 32 | kClosed, std::memory_order_seq_cst);
  s.fn.store(&fn, std::memory_order_release);
  s.n.store(n, std::memory_order_release);
  s.chunk.store(chunk, std::memory_order_release);
  s.n_chunks.store((n + chunk - 1) / chunk, std::memory_order_release);
  s.done.store(0, std::memory_order_relaxed);
  s.first_error = nullptr;
  s.ticket.store(uint64_t{s.job_id} << 32, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(s.m);
    s.generation.fetch_add(1, std::memory_order_release);
  }
  s.cv_start.notify_all();

  t_inside_pool = true;
  s.work();
  t_inside_pool = false;

  const int64_t total = s.n_chunks.load(std::memory_order_relaxed);
  if (!spin_until([&] { return s.done.load(std::memory_order_acquire) == total; })) {
    std::unique_lock<std::mutex> lock(s.m);
    s.caller_sleeping.store(true, std::memory_order_seq_cst);
    s.cv_done.wait(lock, [&] { return s.done.load(std::memory_order_seq_cst) == total; });
    s.caller_sleeping.store(false);
  }
  if (s.first_error) std::rethrow_exception(s.first_error);
}

}  // namespace engine

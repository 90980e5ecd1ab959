// engine::serve::scheduler -- the slots of a server and the one thread that runs the model.
//
// Each slot owns a KV cache (engine::kv_store) and the tokens it holds. Requests (serve/job.hpp)
// wait in a bounded queue; a free slot takes the one whose prompt shares the longest prefix with
// what the slot's cache holds (then the least recently used slot), and that prefix is not
// computed again. The scheduler thread owns the model (it has one batch's scratch): each step()
// advances every active slot by one token, all slots' tokens in one model::decode batch.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kv/kv_select.hpp"
#include "model/model.hpp"
#include "serve/job.hpp"
#include "serve/metrics.hpp"
#include "serve/text_stream.hpp"
#include "text/tokenizer.hpp"

namespace engine::serve {

struct scheduler_options {
  int n_slots = 1;
  int n_ctx = 4096;        // per slot
  int queue = 64;          // requests that may wait for a slot; beyond: refused (HTTP 503)
  bool ctx_shift = false;  // a full slot drops tokens after n_keep and generation goes on
  kv_options kv;
  forward_options fwd;
};

// A slot as /slots and /metrics report it.
struct slot_info {
  int id = 0;
  bool busy = false;
  int n_cached = 0;  // tokens in the cache
  int n_ctx = 0;
  std::string policy;  // kv_store::describe()
  uint64_t bytes = 0, f16_bytes = 0;
  double bits_per_value = 0;
  uint64_t n_requests = 0;
};

class scheduler {
 public:
  scheduler(model& m, const tokenizer& tok, thread_pool& pool, scheduler_options o,
            server_metrics& metrics);
  ~scheduler();  // shutdown() and join
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  const scheduler_options& options() const { return o_; }

  // Throws engine::error when `policy` is not a valid policy or its cache for one slot's
  // context needs more bytes than the slot's allocation (the message names both sizes).
  void check_policy(const std::string& policy) const;

  // Queues a job; false when every slot is busy and `queue` jobs already wait, or the server is
  // shutting down.
  bool submit(const std::shared_ptr<job>& j);

  // Stops taking jobs: queued ones end with an error, active ones run to their end; returns
  // when the scheduler thread has finished them.
  void shutdown();
  bool shutting_down() const;

  std::vector<slot_info> slots() const;
  int queued() const;

  // Runs `fn` on the scheduler's thread while no slot is active (slot save/restore); returns
  // its error message, empty on success. Refused (message) when the slot is busy.
  std::string with_idle_slot(int id,
                             const std::function<void(kv_store&, std::vector<int32_t>&)>& fn);

 private:
  struct slot {
    int id = 0;
    std::unique_ptr<kv_store> kv;
    std::string policy;           // the policy string the cache was built with ("" = default)
    std::vector<int32_t> tokens;  // what the cache holds, in order
    std::vector<float> logits;    // [n_vocab] after the last token
    std::shared_ptr<job> j;       // the active job, or null
    std::unique_ptr<sampler> smp;
    std::unique_ptr<text_stream> ts;
    bool prefilled = false;
    double last_used = 0;
    uint64_t n_requests = 0;
    slot_info info;  // kept current for slots()
  };

  void run();
  // Gives queued jobs to free slots (lock held).
  void assign();
  // Advances every active slot by one token: prefill for newly assigned jobs, then sample, and
  // run the sampled tokens of all slots that go on through the model as one batch.
  void step();
  void prefill(slot& s);
  // Makes room for one more token in a full slot (context shift); false when shift is off or the
  // request keeps too much.
  bool shift(slot& s);
  void finish(slot& s, finish_reason r, std::string err = {});
  void rebuild(slot& s, const std::string& policy);
  void refresh_info(slot& s);  // lock held

  model& m_;
  const tokenizer& tok_;
  thread_pool& pool_;
  scheduler_options o_;
  server_metrics& metrics_;
  uint64_t slot_bytes_ = 0;  // the default policy's cache bytes: each slot's allocation

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<job>> queue_;
  std::vector<slot> slots_;
  bool stopping_ = false;
  std::function<void()> idle_task_;  // with_idle_slot's work, run by the scheduler thread
  std::thread thread_;
};

}  // namespace engine::serve

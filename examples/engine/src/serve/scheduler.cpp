#include "serve/scheduler.hpp"

#include <algorithm>
#include <future>

#include "error.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/memory_plan.hpp"

namespace engine::serve {

namespace {

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

uint64_t micros(double seconds) { return uint64_t(std::max(0.0, seconds) * 1e6); }

}  // namespace

scheduler::scheduler(model& m, const tokenizer& tok, thread_pool& pool, scheduler_options o,
                     server_metrics& metrics)
    : m_(m), tok_(tok), pool_(pool), o_(std::move(o)), metrics_(metrics) {
  slot_bytes_ = kv_bytes(m_, o_.n_ctx, o_.kv);
  slots_.resize(size_t(o_.n_slots));
  for (int i = 0; i < o_.n_slots; ++i) {
    slot& s = slots_[size_t(i)];
    s.id = i;
    s.logits.resize(size_t(m_.config().n_vocab));
    rebuild(s, "");
  }
  thread_ = std::thread([this] { run(); });
}

scheduler::~scheduler() {
  shutdown();
  if (thread_.joinable()) thread_.join();
}

void scheduler::check_policy(const std::string& policy) const {
  kv_options o = o_.kv;
  o.policy = policy;
  const uint64_t need = kv_bytes(m_, o_.n_ctx, o);  // throws for a bad policy
  if (need > slot_bytes_)
    throw make_error("kv_policy '" + policy + "' needs " + std::to_string(need) + " bytes (" +
                         cli::human_bytes(double(need)) + ") for the slot's " +
                         std::to_string(o_.n_ctx) + " tokens, more than the slot's allocation of " +
                         std::to_string(slot_bytes_) + " bytes (" +
                         cli::human_bytes(double(slot_bytes_)) + ")",
                     "kv_policy");
}

void scheduler::rebuild(slot& s, const std::string& policy) {
  kv_options o = o_.kv;
  if (!policy.empty()) o.policy = policy;
  s.kv.reset();
  s.kv = make_kv(m_, o_.n_ctx, o);
  s.policy = policy;
  s.tokens.clear();
  std::lock_guard<std::mutex> lock(mu_);
  refresh_info(s);
}

void scheduler::refresh_info(slot& s) {
  s.info.id = s.id;
  s.info.busy = s.j != nullptr;
  s.info.n_cached = int(s.tokens.size());
  s.info.n_ctx = o_.n_ctx;
  s.info.policy = s.kv->describe();
  s.info.bytes = s.kv->bytes();
  s.info.f16_bytes = s.kv->f16_bytes();
  s.info.bits_per_value = s.kv->bits_per_value();
  s.info.n_requests = s.n_requests;
}

bool scheduler::submit(const std::shared_ptr<job>& j) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Free slots take queued jobs at once: they are room beyond the --queue waiting places.
    const int free = int(
        std::count_if(slots_.begin(), slots_.end(), [](const slot& s) { return s.j == nullptr; }));
    if (stopping_ || int(queue_.size()) >= o_.queue + free) {
      metrics_.rejected++;
      return false;
    }
    j->t_submit = cli::now_s();
    queue_.push_back(j);
    metrics_.requests++;
  }
  cv_.notify_all();
  return true;
}

void scheduler::shutdown() {
  std::deque<std::shared_ptr<job>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    dropped.swap(queue_);
  }
  for (auto& j : dropped) j->end(finish_reason::error, "the server is shutting down");
  cv_.notify_all();
}

bool scheduler::shutting_down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

std::vector<slot_info> scheduler::slots() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<slot_info> out;
  for (const slot& s : slots_) out.push_back(s.info);
  return out;
}

int scheduler::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return int(queue_.size());
}

std::string scheduler::with_idle_slot(
    int id, const std::function<void(kv_store&, std::vector<int32_t>&)>& fn) {
  if (id < 0 || id >= o_.n_slots)
    return "no slot " + std::to_string(id) + " (slots 0.." + std::to_string(o_.n_slots - 1) + ")";
  std::promise<std::string> done;
  auto result = done.get_future();
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) return "the server is shutting down";
    // One task at a time: wait for an earlier one to be taken.
    cv_.wait(lock, [&] { return !idle_task_; });
    idle_task_ = [&, id] {
      slot& s = slots_[size_t(id)];
      if (s.j) {
        done.set_value("slot " + std::to_string(id) + " is busy");
        return;
      }
      try {
        fn(*s.kv, s.tokens);
        std::lock_guard<std::mutex> l(mu_);
        refresh_info(s);
        done.set_value("");
      } catch (const std::exception& e) {
        s.tokens.clear();
        s.kv->truncate(0);
        done.set_value(e.what());
      }
    };
  }
  cv_.notify_all();
  return result.get();
}

void scheduler::assign() {
  // Each free slot takes, among the queued jobs, the one sharing the longest prefix with its
  // cache; free slots are offered jobs least recently used first. Jobs are taken in queue order:
  // the oldest job goes to the free slot whose cache shares most with it (then LRU).
  while (!queue_.empty()) {
    std::shared_ptr<job> j = queue_.front();
    slot* best = nullptr;
    size_t best_common = 0;
    for (slot& s : slots_) {
      if (s.j) continue;
      const bool same_policy = s.policy == j->params.kv_policy;
      const size_t c = same_policy ? common_prefix(s.tokens, j->params.prompt) : 0;
      if (!best || c > best_common || (c == best_common && s.last_used < best->last_used)) {
        best = &s;
        best_common = c;
      }
    }
    if (!best) return;
    queue_.pop_front();
    best->j = j;
    best->prefilled = false;
    best->n_requests++;
    best->info.busy = true;
    best->info.n_requests = best->n_requests;
    j->slot = best->id;
  }
}

void scheduler::run() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      assign();
      const auto active = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const slot& s) { return s.j; });
      };
      cv_.wait(lock, [&] { return active() || !queue_.empty() || idle_task_ || stopping_; });
      assign();
      if (idle_task_) task.swap(idle_task_);
      if (!task && stopping_ && !active()) return;
    }
    if (task) {
      task();
      cv_.notify_all();  // a with_idle_slot caller may be waiting to post its task
      continue;
    }
    step();
  }
}

void scheduler::finish(slot& s, finish_reason r, std::string err) {
  job& j = *s.j;
  if (r != finish_reason::error && r != finish_reason::cancelled) j.emit(s.ts->finish());
  j.t_end = cli::now_s();
  s.last_used = j.t_end;
  std::shared_ptr<job> keep;
  {
    std::lock_guard<std::mutex> lock(mu_);  // submit() counts free slots under the lock
    keep = std::move(s.j);
    refresh_info(s);
  }
  keep->end(r, std::move(err));
}

void scheduler::prefill(slot& s) {
  job& j = *s.j;
  const gen_params& p = j.params;
  j.t_start = cli::now_s();
  if (s.policy != p.kv_policy) rebuild(s, p.kv_policy);
  // Reuse the common prefix, but always run the last prompt token to get its logits.
  size_t common = common_prefix(s.tokens, p.prompt);
  if (common == p.prompt.size()) --common;
  s.kv->truncate(int(common));
  if (s.kv->size() < int(common)) common = size_t(s.kv->size());  // the cache started over
  s.tokens.resize(common);
  const std::span<const int32_t> rest(p.prompt.data() + common, p.prompt.size() - common);
  m_.forward(rest, int(common), *s.kv, pool_, s.logits.data(), 1, o_.fwd);
  s.tokens.insert(s.tokens.end(), rest.begin(), rest.end());
  j.n_prompt = int(p.prompt.size());
  j.n_reused = int(common);
  s.smp = std::make_unique<sampler>(p.sp);
  s.ts = std::make_unique<text_stream>(p.stop);
  s.prefilled = true;
  const double dt = cli::now_s() - j.t_start;
  metrics_.prompt_tokens += rest.size();
  metrics_.reused_tokens += common;
  metrics_.prompt_us += micros(dt);
}

bool scheduler::shift(slot& s) {
  if (!o_.ctx_shift) return false;
  job& j = *s.j;
  const int n = int(s.tokens.size());
  const int want = j.params.n_keep < 0 ? int(j.params.prompt.size()) : j.params.n_keep;
  const int keep = std::min(want, n);
  const int rest = n - keep;
  const int drop = std::min(rest, j.params.n_discard > 0 ? j.params.n_discard : rest / 2);
  if (drop < 1) return false;
  // The cache drops the range in place and re-RoPEs the later keys; one that cannot is filled
  // again from the kept tokens.
  if (!s.kv->erase(keep, keep + drop)) {
    std::vector<int32_t> kept(s.tokens.begin(), s.tokens.begin() + keep);
    kept.insert(kept.end(), s.tokens.begin() + keep + drop, s.tokens.end());
    s.kv->truncate(0);
    s.tokens.clear();
    m_.forward(kept, 0, *s.kv, pool_, s.logits.data(), 1, o_.fwd);
    metrics_.prompt_tokens += kept.size();
    s.tokens = std::move(kept);
    j.n_shifted += drop;
    metrics_.shifted_tokens += uint64_t(drop);
    return true;
  }
  s.tokens.erase(s.tokens.begin() + keep, s.tokens.begin() + keep + drop);
  j.n_shifted += drop;
  metrics_.shifted_tokens += uint64_t(drop);
  return true;
}

void scheduler::step() {
  // Cancelled jobs (the client went away) free their slot first.
  for (slot& s : slots_)
    if (s.j && s.j->cancelled.load()) finish(s, finish_reason::cancelled);
  // New jobs: their prompt goes through the model (prefix reuse) before their first token.
  for (slot& s : slots_) {
    if (!s.j || s.prefilled) continue;
    try {
      prefill(s);
    } catch (const std::exception& e) {
      s.tokens.clear();
      s.kv->truncate(0);
      finish(s, finish_reason::error, e.what());
    }
  }
  // Sample each active slot's next token; the slots that go on run it through the model.
  const double t0 = cli::now_s();
  const int n_vocab = m_.config().n_vocab;
  std::vector<slot*> next;
  for (slot& s : slots_) {
    if (!s.j) continue;
    job& j = *s.j;
    const int32_t t = s.smp->sample(s.logits.data(), n_vocab);
    if (tok_.is_eog(t)) {
      finish(s, finish_reason::stop);
      continue;
    }
    if (j.n_gen == 0) j.t_first = cli::now_s();
    j.n_gen++;
    j.generated.push_back(t);
    metrics_.gen_tokens++;
    j.emit(s.ts->push(tok_.token_to_piece(t, false)));
    if (s.ts->stopped()) {
      finish(s, finish_reason::stop);
    } else if ((j.params.max_tokens >= 0 && j.n_gen >= j.params.max_tokens) ||
               (int(s.tokens.size()) >= s.kv->capacity() && !shift(s))) {
      finish(s, finish_reason::length);
    } else {
      s.tokens.push_back(t);
      next.push_back(&s);
    }
  }
  // The sampled tokens of all going slots in one batch: the weights are read once for all, each
  // slot's attention reads its own cache, and each slot's logits are bit-identical to running its
  // token alone. decode() refuses a bad item before any cache changes; then each slot runs alone,
  // so that only the slot at fault ends with the error.
  if (!next.empty()) {
    std::vector<decode_item> items;
    for (slot* s : next)
      items.push_back({s->tokens.back(), int(s->tokens.size()) - 1, s->kv.get(), s->logits.data()});
    try {
      m_.decode(items, pool_, o_.fwd);
    } catch (const std::exception&) {
      for (slot* s : next) {
        try {
          const int32_t t = s->tokens.back();
          m_.forward({&t, 1}, int(s->tokens.size()) - 1, *s->kv, pool_, s->logits.data(), 1,
                     o_.fwd);
        } catch (const std::exception& e) {
          s->tokens.clear();
          s->kv->truncate(0);
          finish(*s, finish_reason::error, e.what());
        }
      }
    }
  }
  metrics_.step_us += micros(cli::now_s() - t0);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (slot& s : slots_) s.info.n_cached = int(s.tokens.size());
  }
}

}  // namespace engine::serve

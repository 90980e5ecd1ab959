#include "kv/kv_strata.hpp"

#include <algorithm>
#include <cstdlib>
#include <exception>

#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/plan.hpp>
#include <strata/policy/parse.hpp>

#include "error.hpp"
#include "kv/kv_test_codebooks.hpp"
#include "model/model.hpp"
#include "model/rope.hpp"
#include "model/thread_pool.hpp"

namespace engine {

namespace {

// strata reports errors as std::exception with "error: ..." messages: rethrow as engine::error.
template <class F> auto rethrow(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const error&) {
    throw;
  } catch (const std::exception& e) {
    const std::string w = e.what();
    throw error(w.rfind("error: ", 0) == 0 ? w : "error: " + w + " (strata kv cache)");
  }
}

}  // namespace

kv_strata::kv_strata(const model& m, int n_ctx, const std::string& policy, int max_batch)
    : kv_store(m.config(), n_ctx), policy_(policy) {
  const model_config& c = m.config();
  rope_ = c.rope;
  n_rot_ = c.n_rot;
  rope_layers_ = c.layers;
  rope_freqs_ = m.rope_freqs();
  if (c.head_k != c.head_v)
    throw make_error("strata's cache needs equal K and V head sizes (model has " +
                         std::to_string(c.head_k) + " and " + std::to_string(c.head_v) + ")",
                     "kv_strata");
  if (const char* e = std::getenv("STRATA_SPLIT_KEYS")) split_keys_ = std::max(0, std::atoi(e));
  rethrow([&] {
    strata::cache_options opt;
    opt.n_ctx = size_t(n_ctx);
    opt.max_batch = size_t(std::max(0, max_batch));
    if (auto r = test_codebook_resolver()) opt.kernels = r;  // test-only (kv_test_codebooks.hpp)
    if (const char* e = std::getenv("STRATA_KEY_TILES"); e && *e)  // A/B of turbo4's key tiles
      opt.key_tiles = strata::parse_key_tile_use(e);
    cache_ =
        std::make_unique<strata::runtime_kv_cache>(m.layers(), strata::parse_policy(policy), opt);
    return 0;
  });
}

kv_strata::~kv_strata() = default;

void kv_strata::append(int layer, int pos0, int n, const float* k, const float* v) {
  if (pos0 < 0 || n < 0 || pos0 + n > capacity_)
    throw make_error("positions " + std::to_string(pos0) + ".." + std::to_string(pos0 + n) +
                         " outside the cache (capacity " + std::to_string(capacity_) + ")",
                     "kv_strata::append");
  rethrow([&] {
    cache_->append(size_t(layer), pos0, k, v, size_t(n));
    return 0;
  });
  if (layer == n_layer_ - 1) size_ = pos0 + n;
}

void kv_strata::prepare(int layer, int pos0, int n, const float* q, const float* k) {
  // k-balance: a layer's first batch (the prompt) sets its per-channel K scales.
  if (!cache_->policy().k_balance || n <= 0 || size_t(layer) >= cache_->map().n_layers() ||
      !cache_->map()[size_t(layer)].has_kv || pos0 > 0)
    return;
  rethrow([&] {
    strata::rotary_pairs pairs;
    if (n_rot_ > 0)
      pairs.kind =
          rope_ == rope_style::neox ? strata::rotary_pairs::halves : strata::rotary_pairs::adjacent;
    pairs.n_rot = size_t(n_rot_);
    cache_->balance_k(size_t(layer), q, size_t(n), k, size_t(n), pairs);
    return 0;
  });
}

void kv_strata::attend(int layer, int pos0, int n, const float* q, float* out, float scale,
                       thread_pool& pool) {
  const int n_kv = n_head_kv_;
  const int threads = pool.size();
  // A decode step or a small batch (one query group of the cache's attention loop, so each K/V
  // byte is read once per call) over enough keys: split each head's keys too (split-K), so
  // that n_kv x chunks jobs share out evenly over the threads.
  if (split_keys_ > 0 && threads > 1 && n > 0 && n * (n_head_ / n_kv) <= 32) {
    const strata::key_range keys =
        rethrow([&] { return cache_->visible_keys(size_t(layer), pos0, size_t(n)); });
    const size_t chunks =
        strata::key_chunks(size_t(n_kv), size_t(threads), keys.size(), size_t(split_keys_));
    if (chunks > 1) {
      attend_split(layer, pos0, n, q, out, scale, pool, keys, chunks);
      return;
    }
  }
  // Split over KV heads and, for a batch, over query rows: each job writes its own rows/heads.
  int q_chunks = 1;
  if (n > 1 && n_kv < 2 * threads) q_chunks = std::min(n, (2 * threads + n_kv - 1) / n_kv);
  const int per = (n + q_chunks - 1) / q_chunks;
  const size_t q_row = size_t(n_head_) * head_k_, o_row = size_t(n_head_) * head_v_;
  rethrow([&] {
    pool.parallel_for(int64_t(n_kv) * q_chunks, [&](int64_t begin, int64_t end) {
      for (int64_t job = begin; job < end; ++job) {
        const int h = int(job % n_kv), qc = int(job / n_kv);
        const int t0 = qc * per, t1 = std::min(n, t0 + per);
        if (t0 >= t1) continue;
        strata::attention_params p;
        p.scale = scale;
        p.kv_head_begin = size_t(h);
        p.kv_head_end = size_t(h) + 1;
        cache_->attend(size_t(layer), q + size_t(t0) * q_row, size_t(t1 - t0), pos0 + t0,
                       out + size_t(t0) * o_row, p);
      }
    });
    return 0;
  });
}

void kv_strata::attend_split(int layer, int pos0, int n, const float* q, float* out, float scale,
                             thread_pool& pool, strata::key_range keys, size_t chunks) {
  // Job (h, i): KV head h over key chunk i, into out (chunk 0) or a part buffer, with the
  // rows' log-sum-exp; then the parts are merged into out.
  const int n_kv = n_head_kv_;
  const size_t rows = size_t(n) * size_t(n_head_), part = rows * size_t(head_v_);
  part_out_.resize((chunks - 1) * part);
  part_lse_.resize(chunks * rows);
  rethrow([&] {
    pool.parallel_for(int64_t(n_kv) * int64_t(chunks), [&](int64_t begin, int64_t end) {
      for (int64_t job = begin; job < end; ++job) {
        const size_t h = size_t(job % n_kv), i = size_t(job / n_kv);
        const strata::key_range r = keys.chunk(chunks, i);
        strata::attention_params p;
        p.scale = scale;
        p.kv_head_begin = h;
        p.kv_head_end = h + 1;
        p.key_begin = r.begin;
        p.key_end = r.end;
        p.lse = part_lse_.data() + i * rows;
        cache_->attend(size_t(layer), q, size_t(n), pos0,
                       i == 0 ? out : part_out_.data() + (i - 1) * part, p);
      }
    });
    return 0;
  });
  parts_.clear();
  for (size_t i = 0; i < chunks; ++i)
    parts_.push_back(
        {i == 0 ? out : part_out_.data() + (i - 1) * part, part_lse_.data() + i * rows});
  strata::merge_attention(parts_, rows, size_t(head_v_), out);
}

void kv_strata::truncate(int pos) {
  pos = std::clamp(pos, 0, size_);
  rethrow([&] {
    cache_->truncate(pos);
    return 0;
  });
  size_ = pos;
  if (pos == 0) return;
  // A sliding-window layer whose ring dropped tokens the next position still sees cannot
  // continue: start over.
  for (int il = 0; il < n_layer_; ++il) {
    const int w = window_[size_t(il)];
    if (w > 0 && cache_->pos_begin(size_t(il)) > std::max(0, pos - w + 1)) {
      cache_->clear();
      size_ = 0;
      return;
    }
  }
}

void kv_strata::save_state(const std::string& path) const {
  rethrow([&] {
    cache_->save(path);
    return 0;
  });
}

void kv_strata::load_state(const std::string& path, int n_tokens) {
  size_ = 0;
  rethrow([&] {
    cache_->load(path);
    return 0;
  });
  const int64_t end = cache_->pos_end(size_t(n_layer_ - 1));
  if (end != int64_t(n_tokens)) {
    cache_->clear();
    throw make_error("the state file holds positions up to " + std::to_string(end) + ", not " +
                         std::to_string(n_tokens),
                     "load " + path);
  }
  size_ = n_tokens;
}

bool kv_strata::erase(int begin, int end) {
  begin = std::clamp(begin, 0, size_);
  end = std::clamp(end, begin, size_);
  if (begin == end) return true;
  const int len = end - begin, new_size = size_ - len;
  // The next query (at new_size) sees positions > new_size - window on a sliding layer.
  for (int il = 0; il < n_layer_; ++il) {
    const int w = window_[size_t(il)];
    if (w <= 0 || cache_->size(size_t(il)) == 0) continue;
    const int64_t p0 = cache_->pos_begin(size_t(il));
    const int64_t p0_after = p0 < begin ? p0 : std::max<int64_t>(p0, end) - len;
    if (p0_after > std::max(0, new_size - w + 1)) return false;
  }
  // Every moved key turns by the same delta: one table per layer (RoPE base differs by layer).
  const int delta = -len;
  std::vector<rope_table> tables;
  for (int il = 0; il < n_layer_; ++il)
    tables.emplace_back(&delta, 1, n_rot_, rope_layers_[size_t(il)], rope_freqs_);
  rethrow([&] {
    cache_->erase(begin, end,
                  [&](size_t layer, size_t, int64_t, int64_t, float* row, size_t head_dim) {
                    tables[layer].apply(row, 1, int(head_dim), rope_);
                  });
    return 0;
  });
  size_ = new_size;
  return true;
}

size_t kv_strata::bytes() const { return cache_->bytes(); }

size_t kv_strata::side_bytes() const { return cache_->side_bytes(); }

size_t kv_strata::f16_bytes() const {
  size_t total = 0;
  for (int il = 0; il < n_layer_; ++il)
    total += cache_->capacity(size_t(il)) * size_t(n_head_kv_) * size_t(head_k_ + head_v_) * 2;
  return total;
}

double kv_strata::bits_per_value() const {
  // The bytes the cache holds plus its side data (K means, k-balance scales: strata::plan's side
  // line, allocated once the prompt sets them), over what f16 rows of the same capacity would
  // take: a sliding-window layer's shorter ring counts with its own length, as in the chooser's
  // bits (policy_choice.cpp). (Averaging the layers' bits per token instead read 4.52 for a
  // Gemma 3 cache of 2,048 tokens whose bytes give 4.49.)
  const strata::cache_options& o = cache_->options();
  strata::plan_options po;
  po.max_batch = o.max_batch;
  po.subtract_k_mean = o.subtract_k_mean;
  const double side = double(strata::plan(cache_->policy(), o.n_ctx, po).side);
  return (double(cache_->bytes()) + side) * 16.0 / double(f16_bytes());
}

std::string kv_strata::describe() const { return policy_ + test_codebook_note(); }

std::string kv_strata::table() const { return cache_->policy().table(); }

}  // namespace engine

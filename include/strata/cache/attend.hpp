#pragma once
// The attention loop of the cache, for one KV head and its query heads, in four named steps:
//   prepare_queries  each query row scaled (score scale, K balance) and rotated like the keys
//   score_tile       a key tile's scores with the K codec's dot kernel (or its key-tile
//                    kernel where the store is tiled, row_store.hpp), straight from the
//                    compressed rows (or the recent window's f16 rows), then the f32 online
//                    softmax of each row (softmax.hpp) over the keys the row may see
//   accumulate_v     the tile's weights times its V rows with the V codec's axpy kernel
//                    (skipping parts whose weights are all below sparse_v)
//   finish_rows      each row divided by its softmax sum, rotated back, written to out (and,
//                    for split-K, its log-sum-exp to lse)
// Query tokens go in groups of tiling.query_rows rows (tokens x query heads), so each K/V tile
// is read once per group; a tile is tiling.keys(rows) keys, cut at the ring's wrap and at the
// start of the recent window.
//
// The matrix-product path (prefill: groups of at least tiling.gemm_rows rows): keys stored as key
// tiles are gathered to plain rows once per tile and scored by the row kernel (which serves
// many query rows better than the tile dot's per-query tables); a tile's value
// rows are decoded to f32 once and out += P V is one f32 matrix product (strata::gemm_f32,
// register-blocked) instead of the codec's axpy; for keys of a float format (one value per
// block: f32, f16, bf16) the tile's keys are decoded too and the scores are Q K^T
// (strata::gemm_nt_f32, lanes along the head dim as the dot kernels). Other K codecs keep their dot
// kernel (whose query is int8 for the integer ones), so the scores, and a prefill against
// token-by-token, are as before.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include <strata/cache/layer_state.hpp>
#include <strata/cache/options.hpp>
#include <strata/cache/scratch.hpp>
#include <strata/cache/softmax.hpp>
#include <strata/kernels/kernels.hpp>

namespace strata::detail {

// One attend() call as the loop needs it. q and out: [n_q][n_heads][head_dim].
struct attend_call {
  const float* q = nullptr;
  std::size_t n_q = 0;
  std::int64_t first_pos = 0;
  float* out = nullptr;
  std::size_t n_heads = 0;
  float scale = 0.0f, softcap = 0.0f, sparse_v = 0.0f;
  attention_tiling tiling = {};
  rotation_ops rotation = {};
  // Split-K: only logical slots [slot_begin, slot_end) are attended; lse (when set, as
  // attention_params::lse) gets each row's log-sum-exp over them.
  std::int64_t slot_begin = 0;
  std::int64_t slot_end = std::numeric_limits<std::int64_t>::max();
  float* lse = nullptr;
};

class head_attention {
 public:
  head_attention(const layer_state& L, std::size_t h, const attend_call& c)
      : L_(L),
        c_(c),
        h_(h),
        d_(L.head_dim),
        g_(c.n_heads / L.n_kv_heads),
        qb_(std::max<std::size_t>(1, c.tiling.query_rows / g_)),
        T_(c.tiling.keys(std::min(c.n_q, qb_) * g_)) {
    const std::size_t rows_max = std::min(c.n_q, qb_) * g_;
    qr_ = scratch(rows_max * d_, 0);
    acc_ = scratch(rows_max * d_, 1);
    S_ = scratch(rows_max * T_, 2);
    ml_ = scratch(rows_max * 2, 3);  // running max, running sum
    gemm_ = c.tiling.gemm_rows > 0 && rows_max >= c.tiling.gemm_rows;
    if (gemm_) {
      gemm_k_ =
          L.k.kern.layout.block_values == 1 && (!L.rk.on() || L.rk.kern.layout.block_values == 1);
      // a tile's decoded rows (T_ x d_: keys, then values)
      F_ = scratch(T_ * d_, 5);
      // a tile's rows in the plain layout, gathered from key tiles (a row is at most d_ floats)
      B_ = reinterpret_cast<std::byte*>(scratch(T_ * d_, 6));
    }
  }

  void run() {
    for (std::size_t t0 = 0; t0 < c_.n_q; t0 += qb_) {
      const std::size_t nt = std::min(qb_, c_.n_q - t0);
      prepare_queries(t0, nt);
      attend_group(t0, nt);
      finish_rows(t0, nt);
    }
  }

 private:
  // A key tile: logical slots [s0, s1), at ring slot phys, or at recent slot rs when recent.
  struct tile {
    std::int64_t s0, s1;
    std::size_t phys, rs;
    bool recent;
  };

  // Visible logical slots of query token t: [lo(t), hi(t)] (both non-decreasing in t), within
  // the call's key range [slot_begin, slot_end).
  std::int64_t hi(std::size_t t) const {
    return std::min<std::int64_t>(
        {std::int64_t(L_.count) - 1, c_.first_pos + std::int64_t(t) - L_.pos0, c_.slot_end - 1});
  }
  std::int64_t lo(std::size_t t) const {
    if (!L_.sliding) return std::max<std::int64_t>(0, c_.slot_begin);
    return std::max<std::int64_t>(
        {0, c_.slot_begin, c_.first_pos + std::int64_t(t) - std::int64_t(L_.window) + 1 - L_.pos0});
  }

  void prepare_queries(std::size_t t0, std::size_t nt) {
    for (std::size_t t = 0; t < nt; ++t) {
      for (std::size_t j = 0; j < g_; ++j) {
        float* r = qr_ + (t * g_ + j) * d_;
        L_.kt.query(h_, c_.q + ((t0 + t) * c_.n_heads + h_ * g_ + j) * d_, c_.scale, d_, r);
        if (L_.k.kern.layout.rotated) c_.rotation.forward(r, d_);
      }
    }
    const std::size_t rows = nt * g_;
    std::fill(acc_, acc_ + rows * d_, 0.0f);
    for (std::size_t r = 0; r < rows; ++r) {
      ml_[2 * r] = -std::numeric_limits<float>::infinity();
      ml_[2 * r + 1] = 0.0f;
    }
  }

  // The tile starting at s0: T_ keys at most, ending before s_hi + 1, the ring's wrap, the
  // recent rows' wrap, and (outside the recent window) its start s_rec.
  tile next_tile(std::int64_t s0, std::int64_t s_hi, std::int64_t s_rec) const {
    tile k{s0, 0, L_.slot(std::size_t(s0)), 0, s0 >= s_rec};
    if (k.recent) k.rs = L_.recent_slot(L_.pos0, std::size_t(s0));
    k.s1 = std::min<std::int64_t>(
        {s0 + std::int64_t(T_), s_hi + 1, s0 + std::int64_t(L_.cap - k.phys),
         k.recent ? s0 + std::int64_t(L_.r_cap - k.rs) : std::max(s_rec, s0 + 1)});
    return k;
  }

  void attend_group(std::size_t t0, std::size_t nt) {
    const std::int64_t s_lo = lo(t0), s_hi = hi(t0 + nt - 1);
    // Logical slots >= s_rec come from the recent window's f16 rows (when the side has one).
    const std::int64_t s_rec = L_.r_cap > 0 ? L_.recent_lo() - L_.pos0 : std::int64_t(L_.count);
    std::size_t ta = 0, tb = 0;  // active query tokens of the tile (relative to t0)
    for (std::int64_t s0 = s_lo; s0 <= s_hi;) {
      const tile k = next_tile(s0, s_hi, s_rec);
      while (ta < nt && hi(t0 + ta) < k.s0) ++ta;
      while (tb < nt && lo(t0 + tb) < k.s1) ++tb;
      if (ta < tb) {
        score_tile(k, t0, ta, tb);
        accumulate_v(k, ta * g_, (tb - ta) * g_);
      }
      s0 = k.s1;
    }
  }

  void score_tile(const tile& k, std::size_t t0, std::size_t ta, std::size_t tb) {
    const std::size_t n = std::size_t(k.s1 - k.s0);
    const std::size_t r0 = ta * g_, nr = (tb - ta) * g_;
    const row_store& keys = k.recent && L_.rk.on() ? L_.rk : L_.k;
    const std::size_t slot = k.recent && L_.rk.on() ? k.rs : k.phys;
    if (gemm_k_) {
      // keys decoded (n x d_), scores = Q K^T
      decode_rows(keys, slot, n, F_);
      gemm_nt_f32(qr_ + r0 * d_, d_, F_, d_, S_, T_, nr, n, d_);
    } else if (gemm_ && keys.tiled()) {
      // many query rows per key: the row kernel over the tile's rows, gathered once
      keys.kern.dot(qr_ + r0 * d_, nr, d_, keys.rows(h_, slot, n, B_), keys.row_bytes(), n, S_, T_);
    } else {
      keys.dot(h_, qr_ + r0 * d_, nr, d_, slot, n, S_, T_);
    }
    for (std::size_t t = ta; t < tb; ++t) {
      const std::int64_t a = std::max(lo(t0 + t), k.s0) - k.s0;
      const std::int64_t b = std::min(hi(t0 + t) + 1, k.s1) - k.s0;
      for (std::size_t j = 0; j < g_; ++j) {
        const std::size_t r = t * g_ + j;
        online_softmax_row(S_ + (r - r0) * T_, n, std::size_t(std::max<std::int64_t>(a, 0)),
                           std::size_t(std::max<std::int64_t>(b, 0)), c_.softcap, ml_[2 * r],
                           ml_[2 * r + 1], acc_ + r * d_, d_);
      }
    }
  }

  // V in parts of key_tile keys when sparse V may skip some (the whole tile otherwise).
  void accumulate_v(const tile& k, std::size_t r0, std::size_t nr) {
    const std::size_t n = std::size_t(k.s1 - k.s0);
    const bool sparse = c_.sparse_v > 0.0f;
    const std::size_t part = sparse ? std::max<std::size_t>(1, c_.tiling.key_tile) : n;
    const row_store& vals = k.recent && L_.rv.on() ? L_.rv : L_.v;
    const std::size_t slot = k.recent && L_.rv.on() ? k.rs : k.phys;
    bool decoded = false;
    for (std::size_t c0 = 0; c0 < n; c0 += part) {
      const std::size_t cn = std::min(part, n - c0);
      if (sparse) {
        float w = 0.0f;
        for (std::size_t r = 0; r < nr; ++r) w = std::max(w, max_of(S_ + r * T_ + c0, cn));
        if (w < c_.sparse_v) continue;
      }
      if (gemm_) {
        if (!decoded) decode_rows(vals, slot, n, F_);
        decoded = true;
        gemm_f32(S_ + c0, T_, F_ + c0 * d_, d_, acc_ + r0 * d_, d_, nr, d_, cn, true);
      } else {
        vals.axpy(h_, S_ + c0, nr, T_, slot + c0, cn, d_, acc_ + r0 * d_);
      }
    }
  }

  // Rows slot .. slot + n - 1 of this head in `rows`, decoded to f32 (n x d_, stored order).
  void decode_rows(const row_store& rows, std::size_t slot, std::size_t n, float* x) const {
    const std::byte* r = rows.rows(h_, slot, n, B_);
    for (std::size_t j = 0; j < n; ++j) rows.kern.decode(r + j * rows.row_bytes(), d_, x + j * d_);
  }

  void finish_rows(std::size_t t0, std::size_t nt) {
    for (std::size_t t = 0; t < nt; ++t) {
      for (std::size_t j = 0; j < g_; ++j) {
        const std::size_t r = t * g_ + j;
        float* a = acc_ + r * d_;
        const float l = ml_[2 * r + 1];
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        for (std::size_t c = 0; c < d_; ++c) a[c] *= inv;
        if (L_.v.kern.layout.rotated) c_.rotation.inverse(a, d_);
        const std::size_t row = (t0 + t) * c_.n_heads + h_ * g_ + j;
        std::memcpy(c_.out + row * d_, a, d_ * sizeof(float));
        if (c_.lse)
          c_.lse[row] =
              l > 0.0f ? ml_[2 * r] + std::log(l) : -std::numeric_limits<float>::infinity();
      }
    }
  }

  const layer_state& L_;
  const attend_call& c_;
  std::size_t h_, d_, g_, qb_, T_;
  float *qr_, *acc_, *S_, *ml_;
  bool gemm_ = false, gemm_k_ = false;  // the matrix-product path for V (and K)
  float* F_ = nullptr;                  // its decoded tiles
  std::byte* B_ = nullptr;              // and their rows gathered from key tiles
};

}  // namespace strata::detail

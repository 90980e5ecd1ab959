#pragma once
// Position edits of one layer that move keys: re-RoPE of stored K rows (shift) and removing a
// range of positions from the middle of a layer (erase, llama-server's context shift: keep the
// first n_keep tokens, drop n_discard after them, move the rest down). Only the moved tokens'
// keys are decoded, handed to the caller's rerope and encoded again; the others keep their
// bytes. The cache's API (runtime_kv_cache.hpp) calls these on every layer that owns a cache.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <strata/cache/layer_state.hpp>
#include <strata/cache/options.hpp>
#include <strata/cache/scratch.hpp>

namespace strata::detail {

// rerope(layer, kv_head, from, to, row, head_dim): row holds the key appended at position
// `from` (decoded, unrotated, K transform undone) and must become the key at `to`.
struct no_rerope {
  void operator()(std::size_t, std::size_t, std::int64_t, std::int64_t, float*,
                  std::size_t) const noexcept {}
};

// Tokens [t0, t1) of L (logical order) move by delta positions: each K row is decoded,
// restored, passed to rerope and encoded again in its slot.
template <class Fn>
void rerope_ring(layer_state& L, std::size_t li, std::size_t t0, std::size_t t1, std::int64_t delta,
                 const rotation_ops& rot, Fn& rerope) {
  const std::size_t d = L.head_dim;
  float* row = scratch(d, 0);
  float* tmp = scratch(d, 1);
  for (std::size_t t = t0; t < t1; ++t) {
    const std::size_t slot = L.slot(t);
    const std::int64_t pos = L.pos0 + static_cast<std::int64_t>(t);
    for (std::size_t h = 0; h < L.n_kv_heads; ++h) {
      L.k.decode(h, slot, d, rot.inverse, row);
      L.kt.inverse(h, row, d);
      rerope(li, h, pos, pos + delta, row, d);
      L.k.encode(L.kt.forward(h, row, d, row), tmp, d, rot.forward, h, slot);
    }
  }
}

// Copies the K and V rows of ring slot `from` to slot `to` (every KV head).
inline void copy_slot(layer_state& L, std::size_t from, std::size_t to) {
  for (row_store* s : {&L.k, &L.v})
    for (std::size_t h = 0; h < s->heads; ++h) s->copy(h, from, to);
}

// The recent window's rows (f16, slot = position % r_cap) of positions [p0, p1), read out
// before an erase moves them to p - delta... and written back by `put`.
struct recent_rows {
  std::int64_t p0 = 0, p1 = 0;
  std::vector<std::byte> k, v;  // [position][kv_head][row bytes]

  void take(const layer_state& L, std::int64_t lo, std::int64_t hi) {
    p0 = lo, p1 = std::max(lo, hi);
    const std::size_t n = std::size_t(p1 - p0);
    for (auto [s, out] : {std::pair{&L.rk, &k}, std::pair{&L.rv, &v}}) {
      if (!s->on()) continue;
      out->resize(n * s->heads * s->row_bytes());
      for (std::size_t t = 0; t < n; ++t)
        for (std::size_t h = 0; h < s->heads; ++h)
          s->get(h, L.recent_slot(p0, t), 1, out->data() + (t * s->heads + h) * s->row_bytes());
    }
  }
  // Writes the rows back at their positions + delta; K rows pass through rerope.
  template <class Fn>
  void put(layer_state& L, std::size_t li, std::int64_t delta, const rotation_ops& rot,
           bool rerope_k, Fn& rerope) const {
    const std::size_t d = L.head_dim, n = std::size_t(p1 - p0);
    const bool rotated = L.k.kern.layout.rotated;
    float* row = scratch(d, 0);
    float* tmp = scratch(d, 1);
    for (auto [s, in] : {std::pair{&L.rk, &k}, std::pair{&L.rv, &v}}) {
      if (!s->on()) continue;
      const bool keys = s == &L.rk;
      for (std::size_t t = 0; t < n; ++t)
        for (std::size_t h = 0; h < s->heads; ++h) {
          const std::byte* src = in->data() + (t * s->heads + h) * s->row_bytes();
          const std::size_t dst = L.recent_slot(p0 + delta, t);
          if (!keys || !rerope_k) {
            s->put(h, dst, 1, src);
            continue;
          }
          // The row holds the key as the K codec saw it: transformed, rotated when K is.
          const std::int64_t pos = p0 + std::int64_t(t);
          s->kern.decode(src, d, row);
          if (rotated) rot.inverse(row, d);
          L.kt.inverse(h, row, d);
          rerope(li, h, pos, pos + delta, row, d);
          const float* stored = L.kt.forward(h, row, d, row);
          if (rotated) {
            std::memcpy(tmp, stored, d * sizeof(float));
            rot.forward(tmp, d);
            stored = tmp;
          }
          s->encode_at(stored, d, h, dst);
        }
    }
  }
};

// Removes positions [begin, end) from L: tokens before `begin` keep their positions and bytes,
// tokens at `end` and after move down by end - begin (their keys through rerope when
// `rerope_k`). The fewer rows of the two sides are copied within the ring. Positions outside
// the layer's range are simply absent (a sliding layer may hold only the newest tokens).
template <class Fn>
void erase_positions(layer_state& L, std::size_t li, std::int64_t begin, std::int64_t end,
                     const rotation_ops& rot, bool rerope_k, Fn& rerope) {
  if (L.count == 0 || begin >= L.pos_end() || begin >= end) return;
  const std::int64_t len = end - begin;
  const auto index = [&](std::int64_t pos) {
    return std::size_t(std::clamp<std::int64_t>(pos - L.pos0, 0, std::int64_t(L.count)));
  };
  const std::size_t head = index(begin), first_tail = index(end), gone = first_tail - head;
  const std::int64_t old_rlo = L.r_cap ? L.recent_lo() : L.pos_end();
  recent_rows recent;
  if (L.r_cap) recent.take(L, std::max(old_rlo, end), L.pos_end());

  if (rerope_k) rerope_ring(L, li, first_tail, L.count, -len, rot, rerope);
  if (gone > 0) {
    if (head <= L.count - first_tail) {  // move the head up to the tail
      for (std::size_t t = head; t-- > 0;) copy_slot(L, L.slot(t), L.slot(t + gone));
      L.start = (L.start + gone) % L.cap;
    } else {  // move the tail down to the head
      for (std::size_t t = first_tail; t < L.count; ++t) copy_slot(L, L.slot(t), L.slot(t - gone));
    }
  }
  L.count -= gone;
  if (head == 0) L.pos0 = std::max(L.pos0, end) - len;
  if (L.r_cap) {
    recent.put(L, li, -len, rot, rerope_k, rerope);
    L.r_lo = old_rlo <= begin ? old_rlo : std::max(old_rlo, end) - len;
  }
}

}  // namespace strata::detail

#pragma once
// What a runtime_kv_cache is built with (cache_options) and what one attention call takes
// (attention_params): sizes, the rotation, where kernels and layouts come from, K mean
// subtraction and the attention loop's tiling. Set once when the cache is built.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

#include <strata/cache/layer_kernels.hpp>
#include <strata/codec/layout.hpp>
#include <strata/rotation/hadamard.hpp>

namespace strata {

// How rows are rotated before a rotated codec encodes them (and queries before dot).
struct rotation_ops {
  void (*forward)(float* x, std::size_t n) = nullptr;
  void (*inverse)(float* x, std::size_t n) = nullptr;
  std::uint64_t id = 0;  // identifies the rotation in state files

  // id: R::seed when R has one (hadamard<Seed>), else 0 (identity).
  template <class R> static rotation_ops of() {
    std::uint64_t id = 0;
    if constexpr (requires { R::seed; }) id = static_cast<std::uint64_t>(R::seed) + 1;
    return {&R::forward, &R::inverse, id};
  }
};

using default_rotation = hadamard<>;

struct attention_params {
  float scale = 0.0f;    // score scale; 0 means 1/sqrt(head_dim)
  float softcap = 0.0f;  // > 0: scores become softcap * tanh(score / softcap)
  // "Sparse V": skip the V of a key tile when every weight in it, relative to its row's
  // running max, is below this (each skipped value's final softmax weight is below it too).
  // 0 = off. docs/policies.md has the measured effect.
  float sparse_v = 0.0f;
  // Only KV heads [kv_head_begin, kv_head_end) and their query heads are computed (the rest of
  // `out` is left untouched): give disjoint ranges to threads to parallelize one layer.
  std::size_t kv_head_begin = 0;
  std::size_t kv_head_end = std::numeric_limits<std::size_t>::max();
  // Split-K: only keys at positions [key_begin, key_end) are attended (intersected with what
  // each query sees: causal, sliding window; the recent window and the ring as ever). Each call
  // writes its range's normalized output; strata::merge_attention (cache/split_k.hpp) combines
  // the calls of disjoint ranges into the output of one call over their union.
  std::int64_t key_begin = std::numeric_limits<std::int64_t>::min();
  std::int64_t key_end = std::numeric_limits<std::int64_t>::max();
  // When set: [n_q][n_heads] floats, the log-sum-exp of each computed query row's scores over
  // its keys in the range (ln of its softmax sum plus its max, softcap applied; -inf when the
  // row sees no key there), what merge_attention weighs the calls by. Rows of other KV heads
  // are left untouched.
  float* lse = nullptr;
};

// How the attention loop walks the cache (bench/attention_bench.cpp, docs/policies.md "Tile
// size"). Query rows (query tokens x the query heads of one KV head) are processed in groups of
// query_rows; each K/V tile is decoded once per group (for a decode step, once), and smaller
// groups keep their accumulators in L1. A tile holds at least key_tile keys and, when the group
// has few rows, up to score_floats / rows (rounded down to 64 keys): a decode step (4 rows of
// the Llama-8B shape) calls dot/axpy on 2048 keys at a time, measured 5-16 % faster than 256
// for the turbo codecs and the q8_0-K pairs, while a prefill group keeps 256. A prefill group
// of 128 rows (32 tokens of the Llama-8B shape) takes the matrix-product path (gemm_rows) and
// decodes each tile once per 128 rows (docs/kernels.md "Prefill"; 32 before it).
// Sparse V skips per key_tile keys whatever the tile.
struct attention_tiling {
  std::size_t key_tile = 256;
  std::size_t query_rows = 128;
  std::size_t score_floats = 8192;
  // Groups of at least gemm_rows rows take the matrix-product path (cache/attend.hpp: a tile's
  // values, and keys of a float format, decoded to f32 once per group and multiplied with
  // strata::gemm_f32); 0: never.
  std::size_t gemm_rows = 16;

  // Keys per tile for groups of up to `rows` rows.
  std::size_t keys(std::size_t rows) const {
    const std::size_t by_scores = rows ? score_floats / rows / 64 * 64 : 0;
    return by_scores > key_tile ? by_scores : key_tile;
  }
};

enum class key_tile_use { native, always, never };

// "native", "always" or "never" (e.g. from an environment variable such as STRATA_KEY_TILES in
// the example engine and the benchmarks); anything else is an error naming it.
inline key_tile_use parse_key_tile_use(std::string_view s) {
  if (s == "native") return key_tile_use::native;
  if (s == "always") return key_tile_use::always;
  if (s == "never") return key_tile_use::never;
  throw std::invalid_argument("error: key tiles \"" + std::string(s) +
                              "\": expected native, always or never (key_tile_use)");
}

// Gives the kernels of codec `id` for rows of `head_dim` values (throws when they do not fit).
using kernel_resolver = codec_kernels (*)(codec_id id, std::uint32_t head_dim);

struct cache_options {
  std::size_t n_ctx = 4096;  // tokens every global-attention layer can hold
  // Sliding-window layers hold min(n_ctx, window + max_batch - 1) tokens (a ring: the oldest
  // are overwritten), enough for appending up to max_batch tokens at a time. 0: n_ctx (full).
  std::size_t max_batch = 0;
  rotation_ops rotation = rotation_ops::of<default_rotation>();
  // Where each layer's kernels come from: the fastest kernels of the standard codecs by
  // default; kv_cache<Policy> passes the kernels of its policy's codec types.
  kernel_resolver kernels = &layer_kernels;
  // The layouts of the same codec set (layout_of<Set>), for the policy report and the byte
  // counts; the cache checks that every layer's kernels agree with it.
  layout_resolver layouts = &layout_of<standard_codecs>;
  // Subtract a per-channel K mean (per layer and KV head, fixed from the first batch appended
  // to an empty layer) from every key before it is encoded. Exact for attention (softmax is
  // invariant to adding q.m to every score of a query) and lowers the error of compressed K
  // when channels have a bias; docs/policies.md has the measurement. read_k and shift's rerope
  // see the keys with the mean added back. The means (n_kv_heads x head_dim floats per layer)
  // are outside bytes().
  bool subtract_k_mean = false;
  attention_tiling tiling = {};
  // Rows of codecs with the key-tile layout (turbo4 with groups of 64 and 128; strata/codec/
  // key_tile.hpp) are stored as key tiles and scored and summed by the tile kernels: `native`
  // where the target dispatch picks runs tile kernels of its own (tile_kernels_native(): x86
  // AVX2), `always` everywhere (the scalar reference elsewhere), `never`: plain rows and the row
  // kernels. The bytes are the same; state files hold plain rows either way.
  key_tile_use key_tiles = key_tile_use::native;
};

}  // namespace strata

// engine::matmul (model/matmul.hpp): the public entry points, and the per-target dispatch to
// the weight kernels of model/matmul/ (Highway, compiled once per target, dispatched at run time):
//   job.hpp              one matmul call as the kernels see it
//   common-inl.hpp       what a weight format provides (weight_format<T>), shared lane helpers
//   legacy-inl.hpp       the formats Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 (block layout, both readers)
//   kquants-inl.hpp      the formats Q2_K Q3_K Q4_K Q5_K Q6_K
//   floats-inl.hpp       the formats F32 F16 BF16
//   dot_lanes-inl.hpp    the portable drivers (any target)
//   dot_x86-inl.hpp      the x86 drivers (AVX2, AVX3, AVX3_DL with AVX-512 VNNI)
//   activations-inl.hpp  activations quantized for the integer path
// Which driver runs a weight type follows its row of io/ggml_types.hpp (matmul_path).

#ifndef ENGINE_MATMUL_COMMON
#define ENGINE_MATMUL_COMMON

// Also compile the AVX3_DL target (Ice Lake / Zen 4: AVX-512 VNNI) for this file only.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
// The token tiles keep arrays of vectors, which SVE's sizeless types cannot be: on AArch64
// this file compiles NEON (and the scalar fallback) only, and SVE machines run NEON.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)
#endif

#include "model/matmul.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "io/ggml_types.hpp"
#include "io/quant.hpp"
#include "model/matmul/job.hpp"

#endif  // ENGINE_MATMUL_COMMON

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "model/matmul.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include "model/matmul/activations-inl.hpp"
#include "model/matmul/common-inl.hpp"
#include "model/matmul/dot_lanes-inl.hpp"
#include "model/matmul/dot_x86-inl.hpp"
#include "model/matmul/floats-inl.hpp"
#include "model/matmul/kquants-inl.hpp"
#include "model/matmul/legacy-inl.hpp"

HWY_BEFORE_NAMESPACE();
namespace engine {
namespace HWY_NAMESPACE {
namespace {

// Rows [r0, r1) for all tokens: blocks of rows that stay in L1 while the token tiles pass
// (kernels for 8, 4, 2 and 1 tokens; a null one is skipped). Every kernel of a weight format
// sums a token's products in the same order, so a token's result does not depend on the tile
// it lands in, nor on how many tokens the call has (batch-invariant).
template <class K>
HWY_INLINE void tiles(const job& jb, int64_t r0, int64_t r1, K kernel8, K kernel4, K kernel2,
                      K kernel1) {
  constexpr int64_t kRowBlock = 16;
  for (int64_t rb = r0; rb < r1; rb += kRowBlock) {
    const int64_t re = std::min(r1, rb + kRowBlock);
    int64_t t = 0;
    if (kernel8)
      for (; t + 8 <= jb.n_tokens; t += 8) kernel8(jb, rb, re, t);
    for (; t + 4 <= jb.n_tokens; t += 4) kernel4(jb, rb, re, t);
    if (kernel2)
      for (; t + 2 <= jb.n_tokens; t += 2) kernel2(jb, rb, re, t);
    for (; t < jb.n_tokens; ++t) kernel1(jb, rb, re, t);
  }
}

template <class F, bool kFine> void run_q_act(const job& jb, int64_t r0, int64_t r1) {
  using kernel = void (*)(const job&, int64_t, int64_t, int64_t);
#ifdef ENGINE_MATMUL_X86
  // Legacy formats prefill with rows_x86_t8 (another order) when the call allows it (xdT set).
  kernel k8 = rows_x86<F, 8, kFine>;
  if constexpr (F::kSub == 1)
    if (jb.xdT) k8 = rows_x86_t8<F, kFine>;
  tiles<kernel>(jb, r0, r1, k8, rows_x86<F, 4, kFine>, rows_x86<F, 2, kFine>,
                rows_x86<F, 1, kFine>);
#else
  tiles<kernel>(jb, r0, r1, nullptr, rows_q<F, 4, kFine>, nullptr, rows_q<F, 1, kFine>);
#endif
}
// Rows [r0, r1) of the job for weight type T, by its matmul path (none: activation formats,
// which check_shapes refuses before any kernel runs).
template <ggml_type T, matmul_path P> void run(const job& jb, int64_t r0, int64_t r1) {
  if constexpr (P == matmul_path::floats) {
    using kernel = void (*)(const job&, int64_t, int64_t, int64_t);
    tiles<kernel>(jb, r0, r1, nullptr, rows_f<weight_format<T>, 4>, nullptr,
                  rows_f<weight_format<T>, 1>);
  } else if constexpr (P == matmul_path::ints) {
    if (jb.fine)
      run_q_act<weight_format<T>, true>(jb, r0, r1);
    else
      run_q_act<weight_format<T>, false>(jb, r0, r1);
  }
}

}  // namespace

void quantize_blocks(const float* x, int64_t n_blocks, int8_t* q, float* d, float* sum16,
                     bool fine) {
  if (fine)
    quantize_blocks_act<true>(x, n_blocks, q, d, sum16);
  else
    quantize_blocks_act<false>(x, n_blocks, q, d, sum16);
}

// The activations of n_tokens tokens (nb blocks each) as the byte planes that this target's
// one-token kernels read (AVX3_DL: make_byte_planes); false where no kernel reads them.
bool byte_planes(const int8_t* q, int64_t nb, int64_t n_tokens, int8_t* out) {
#ifdef ENGINE_MATMUL_VNNI512
  make_byte_planes(q, nb, n_tokens, out);
  return true;
#else
  (void)q, (void)nb, (void)n_tokens, (void)out;
  return false;
#endif
}

// The per-target entry: rows [r0, r1) of the job, for weight type `type` (switch once per chunk).
void matmul_rows(ggml_type type, const job& jb, int64_t r0, int64_t r1) {
  switch (type) {
#define ENGINE_MATMUL_CASE(name, value, values, bytes, path) \
  case ggml_type::name: return run<ggml_type::name, matmul_path::path>(jb, r0, r1);
    ENGINE_GGML_TYPES(ENGINE_MATMUL_CASE)
#undef ENGINE_MATMUL_CASE
  }
}
#undef ENGINE_MATMUL_X86
#undef ENGINE_MATMUL_VNNI
#undef ENGINE_MATMUL_VNNI512

}  // namespace HWY_NAMESPACE
}  // namespace engine
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace engine {

using matmul_detail::job;

HWY_EXPORT(matmul_rows);

bool matmul_quantizes_activations(ggml_type type) {
  const ggml_type_info* info = find_ggml_type(type);
  return info && info->matmul == matmul_path::ints;
}

HWY_EXPORT(quantize_blocks);
HWY_EXPORT(byte_planes);

namespace {
void size_activations(int64_t n_in, int64_t n_tokens, q8_activations& out, bool fine) {
  if (n_in % 32 != 0)
    throw make_error("row length " + std::to_string(n_in) + " is not a multiple of 32",
                     "quantize_activations");
  const int64_t nb = n_in / 32;
  out.n_in = n_in;
  out.n_tokens = n_tokens;
  out.fine = fine;
  out.q.resize(static_cast<size_t>(2 * n_in * n_tokens));
  out.d.resize(static_cast<size_t>(nb * n_tokens));
  out.sum16.resize(static_cast<size_t>(2 * nb * n_tokens));
}
// Blocks [b0, b1) of all tokens' blocks.
void quantize_range(const float* x, q8_activations& out, int64_t b0, int64_t b1) {
  HWY_DYNAMIC_DISPATCH(quantize_blocks)
  (x + b0 * 32, b1 - b0, out.q.data() + b0 * 64, out.d.data() + b0, out.sum16.data() + 2 * b0,
   out.fine);
}
}  // namespace

void quantize_activations(const float* x, int64_t n_in, int64_t n_tokens, q8_activations& out,
                          activations act) {
  if (act == activations::exact)
    throw make_error("exact activations are not quantized", "quantize_activations");
  size_activations(n_in, n_tokens, out, act == activations::fine);
  quantize_range(x, out, 0, n_in / 32 * n_tokens);
}

namespace {

void check_shapes(const tensor& W, const char* where) {
  if (W.ne[2] != 1 || W.ne[3] != 1)
    throw make_error("weight '" + W.name + "' is not a 2-D tensor", where);
  if (W.data == nullptr) throw make_error("weight '" + W.name + "' has no data", where);
  const ggml_type_info* info = find_ggml_type(W.type);
  if (!info || info->matmul == matmul_path::none)
    throw make_error("weight '" + W.name + "' has type " + std::string(type_name(W.type)) +
                         ", which matmul does not support",
                     where);
}

size_t row_bytes(const tensor& W) {
  return static_cast<size_t>(W.ne[0] / block_values(W.type) * block_bytes(W.type));
}

bool is_q4(ggml_type t) { return t == ggml_type::Q4_0 || t == ggml_type::Q4_1; }

// Per-thread scratch (activations, dequantized rows) reused across calls.
thread_local q8_activations t_act;
thread_local std::vector<float> t_xdT, t_xsT;
thread_local std::vector<int8_t> t_planes;
thread_local std::vector<float> t_row;

void matmul_exact(const tensor& W, const float* x, int64_t n_tokens, float* y, thread_pool& pool) {
  const int64_t n_in = W.ne[0], n_out = W.ne[1];
  const size_t rb = row_bytes(W);
  pool.parallel_for(n_out, [&](int64_t r0, int64_t r1) {
    t_row.resize(static_cast<size_t>(n_in));
    for (int64_t r = r0; r < r1; ++r) {
      dequantize(W.type, W.data + static_cast<size_t>(r) * rb, t_row.data(), n_in);
      const float* w = t_row.data();
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * n_in;
        double s[4] = {0, 0, 0, 0};  // four f64 partial sums (vectorizable)
        int64_t c = 0;
        for (; c + 4 <= n_in; c += 4)
          for (int k = 0; k < 4; ++k)
            s[k] += static_cast<double>(w[c + k]) * static_cast<double>(xt[c + k]);
        for (; c < n_in; ++c) s[0] += static_cast<double>(w[c]) * static_cast<double>(xt[c]);
        y[t * n_out + r] = static_cast<float>((s[0] + s[1]) + (s[2] + s[3]));
      }
    }
  });
}

}  // namespace

void matmul(const tensor& W, const float* x, int64_t n_tokens, float* y, thread_pool& pool,
            activations act, bool batch_invariant) {
  const matmul_output one[1] = {{&W, y}};
  matmul(one, x, n_tokens, pool, act, batch_invariant);
}

void matmul(std::span<const matmul_output> outs, const float* x, int64_t n_tokens,
            thread_pool& pool, activations act, bool batch_invariant) {
  if (outs.empty()) return;
  const tensor& W0 = *outs[0].W;
  for (const matmul_output& o : outs) {
    check_shapes(*o.W, "matmul");
    if (o.W->ne[0] != W0.ne[0])
      throw make_error("weight '" + o.W->name + "' has rows of " + std::to_string(o.W->ne[0]) +
                           " values, '" + W0.name + "' of " + std::to_string(W0.ne[0]) +
                           ": one activation cannot feed both",
                       "matmul");
  }
  if (n_tokens <= 0) return;
  if (outs.size() > kMaxOutputs) {
    matmul(outs.first(kMaxOutputs), x, n_tokens, pool, act, batch_invariant);
    matmul(outs.subspan(kMaxOutputs), x, n_tokens, pool, act, batch_invariant);
    return;
  }
  if (act == activations::exact) {
    for (const matmul_output& o : outs) matmul_exact(*o.W, x, n_tokens, o.y, pool);
    return;
  }
  // One activation feeds every weight only where all of them take the same kind (integer or
  // float); otherwise each runs on its own.
  const bool ints = matmul_quantizes_activations(W0.type);
  for (const matmul_output& o : outs)
    if (matmul_quantizes_activations(o.W->type) != ints) {
      for (const matmul_output& p : outs) matmul({&p, 1}, x, n_tokens, pool, act, batch_invariant);
      return;
    }
  job base{};
  base.n_in = W0.ne[0];
  base.n_tokens = n_tokens;
  const int8_t* planes = nullptr;  // AVX3_DL's byte planes, for the Q4_0 / Q4_1 weights
  if (ints) {
    size_activations(base.n_in, n_tokens, t_act, act == activations::fine);
    base.fine = t_act.fine;
    const int64_t n_blocks = base.n_in / 32 * n_tokens;
    if (n_tokens >= 8) {
      q8_activations& act = t_act;  // the workers fill the caller's buffers
      pool.parallel_for(n_blocks, [&](int64_t b0, int64_t b1) { quantize_range(x, act, b0, b1); });
    } else {
      quantize_range(x, t_act, 0, n_blocks);
    }
    base.xq = t_act.q.data();
    base.xd = t_act.d.data();
    base.xs = t_act.sum16.data();
    // Decode-sized calls: the byte planes of the one-token Q4_0 / Q4_1 kernels, where the
    // target has them (AVX3_DL). Other targets and formats read xq alone.
    const int64_t nb8 = base.n_in / 256 * 8;
    if (base.fine && n_tokens <= 8 && nb8 > 0 &&
        std::any_of(outs.begin(), outs.end(), [&](const auto& o) { return is_q4(o.W->type); })) {
      t_planes.resize(static_cast<size_t>(nb8 * matmul_detail::kPlaneBytes * n_tokens + 64));
      int8_t* p = t_planes.data() + (-reinterpret_cast<uintptr_t>(t_planes.data()) & 63);
      if (HWY_DYNAMIC_DISPATCH(byte_planes)(t_act.q.data(), base.n_in / 32, n_tokens, p))
        planes = p;
    }
    // Legacy formats prefill faster in another order (rows_x86_t8), when invariance is not asked.
    const bool legacy = std::any_of(outs.begin(), outs.end(),
                                    [](const auto& o) { return block_values(o.W->type) == 32; });
    if (n_tokens > 8 && !batch_invariant && legacy) {
      const int64_t nb = base.n_in / 32;  // token-major copies of the scales for rows_x86_t8
      t_xdT.resize(static_cast<size_t>(nb * n_tokens));
      t_xsT.resize(static_cast<size_t>(2 * nb * n_tokens));
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t b = 0; b < nb; ++b) {
          t_xdT[static_cast<size_t>(b * n_tokens + t)] = t_act.d[static_cast<size_t>(t * nb + b)];
          for (int h = 0; h < 2; ++h)
            t_xsT[static_cast<size_t>((2 * b + h) * n_tokens + t)] =
                t_act.sum16[static_cast<size_t>(t * 2 * nb + 2 * b + h)];
        }
      base.xdT = t_xdT.data();  // per weight below: for 32-value blocks only
      base.xsT = t_xsT.data();
    }
  } else {
    base.xf = x;
  }
  // One job per weight; the calls' rows in chunks of at least 8 (small next to the row work),
  // numbered through all the weights so that one parallel_for runs them all.
  constexpr int64_t kRowsPerItem = 8;
  job jobs[kMaxOutputs];
  int64_t first_item[kMaxOutputs + 1] = {0};
  for (size_t i = 0; i < outs.size(); ++i) {
    const tensor& W = *outs[i].W;
    job& jb = jobs[i];
    jb = base;
    jb.w = W.data;
    jb.row_bytes = row_bytes(W);
    jb.n_out = W.ne[1];
    jb.y = outs[i].y;
    jb.xp = is_q4(W.type) ? planes : nullptr;
    if (block_values(W.type) != 32) jb.xdT = jb.xsT = nullptr;
    first_item[i + 1] = first_item[i] + (jb.n_out + kRowsPerItem - 1) / kRowsPerItem;
  }
  const size_t n_jobs = outs.size();
  pool.parallel_for(first_item[n_jobs], [&](int64_t i0, int64_t i1) {
    for (size_t j = 0; j < n_jobs; ++j) {
      const int64_t a = std::max(i0, first_item[j]), b = std::min(i1, first_item[j + 1]);
      if (a >= b) continue;
      const job& jb = jobs[j];
      HWY_DYNAMIC_DISPATCH(matmul_rows)
      (outs[j].W->type, jb, (a - first_item[j]) * kRowsPerItem,
       std::min(jb.n_out, (b - first_item[j]) * kRowsPerItem));
    }
  });
}

void matmul_reference_q8(const tensor& W, const float* x, int64_t n_tokens, float* y,
                         activations act) {
  check_shapes(W, "matmul_reference_q8");
  const int64_t n_in = W.ne[0], n_out = W.ne[1];
  std::vector<float> xr(static_cast<size_t>(n_in * n_tokens));
  if (matmul_quantizes_activations(W.type)) {
    q8_activations a;
    quantize_activations(x, n_in, n_tokens, a, act == activations::exact ? activations::fine : act);
    for (int64_t i = 0; i < n_in * n_tokens; ++i)
      xr[static_cast<size_t>(i)] = dequantized_activation(a, i);
  } else {
    std::copy(x, x + n_in * n_tokens, xr.begin());
  }
  std::vector<float> row(static_cast<size_t>(n_in));
  const size_t rb = row_bytes(W);
  for (int64_t r = 0; r < n_out; ++r) {
    dequantize(W.type, W.data + static_cast<size_t>(r) * rb, row.data(), n_in);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double s = 0;
      for (int64_t c = 0; c < n_in; ++c)
        s += static_cast<double>(row[static_cast<size_t>(c)]) *
             xr[static_cast<size_t>(t * n_in + c)];
      y[t * n_out + r] = static_cast<float>(s);
    }
  }
}

void get_row(const tensor& W, int64_t r, float* out) {
  if (r < 0 || r >= W.rows())
    throw make_error(
        "row " + std::to_string(r) + " is out of range [0, " + std::to_string(W.rows()) + ")",
        "get_row of '" + W.name + "'");
  const size_t rb = static_cast<size_t>(W.ne[0] / block_values(W.type) * block_bytes(W.type));
  dequantize(W.type, W.data + static_cast<size_t>(r) * rb, out, W.ne[0]);
}

}  // namespace engine
#endif  // HWY_ONCE

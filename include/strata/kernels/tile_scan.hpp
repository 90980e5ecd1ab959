#pragma once
// Scalar reference of the key-tile scan kernels (strata/codec/key_tile.hpp has the layout;
// tiled-inl.hpp the SIMD kernels, which perform these operations and give these bits on every
// target), for turbo4 keys and values:
//
// tile_dot (scores of float queries against tiled keys), "fast scan": per query q (dim values)
//   1. one table of 16 bytes per dimension d: T_d[k] = nearbyint((q_d c_k - lo_d) / delta),
//      c the codebook, lo_d = min_k q_d c_k, delta = max_d |q_d| (c_15 - c_0) / 255, so that
//      0 <= T_d[k] <= 255 and q_d c_k = lo_d + delta T_d[k] within delta / 2; bias_b = sum of
//      lo_d over block b's dimensions (each product and sum an explicit fma: the same bits
//      wherever it is compiled);
//   2. per key and block b: A = sum_d T_d[index_d] (exact, below 2^16 for groups up to 256),
//      t = fma(float(A), delta, bias_b); the key's score is s_0 t_0 for the first block, then
//      fma(s_b, t_b, score) block after block (s_b the block's scale).
//   Error against the exact product with the decoded key: per dimension at most s delta / 2
//   (the table's rounding; no 7-bit codebook image and no int8 query as in the row dot).
//
// tile_axpy (out_i += sum_j w_ij value_j over tiled values), per query row i, pair of tiles
// (tiles 2p and 2p + 1 of the store) and block:
//   1. x_j = w_ij f_j over the pair's 64 rows (f_j = s_j unit, the 7-bit codebook image's unit,
//      codec_traits.hpp; 0 for rows outside the call), m = max_j |x_j|,
//      q_j = nearbyint(x_j 127 / m), d = m / 127 (all 0 when m = 0): int8_axpy.hpp's step 2
//      with the pair as the group;
//   2. per element e of the block and lane n < 8 (rows 4n .. 4n + 3 of each tile of the pair
//      that the call touches; the other is never read): P = sum_j q_j cb_i8[index_je] exact in
//      int32 (the SIMD kernels add the two tiles' pair products in 16 bits: |q c| <= 127 * 63,
//      four products at most 32004), acc_en = fma(float(P), d, acc_en), acc starting at 0;
//   3. at the end, out_ie += ((acc_0 + acc_4) + (acc_2 + acc_6)) + ((acc_1 + acc_5) + (acc_3 +
//      acc_7)) per element.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <strata/codec/half.hpp>
#include <strata/codec/key_tile.hpp>
#include <strata/kernels/codec_traits.hpp>

namespace strata::kernels {

// One query's tables (step 1 of tile_dot): lut[d * 16 + k], bias per block, delta.
struct tile_query {
  std::vector<std::uint8_t> lut;
  std::vector<float> bias;
  float delta = 0.0f;
};

template <tiled_codec Codec> void make_tile_query(const float* q, std::size_t dim, tile_query& tq) {
  using traits = turbo_traits<Codec>;
  constexpr std::size_t G = Codec::block_values;
  constexpr auto cb = traits::codebook();
  constexpr float lo_c = cb.front(), hi_c = cb.back();
  tq.lut.assign(dim * 16, 0);
  tq.bias.assign(dim / G, 0.0f);
  float mx = 0.0f;
  for (std::size_t d = 0; d < dim; ++d) mx = std::max(mx, std::fabs(q[d]));
  const float range = mx * (hi_c - lo_c);
  tq.delta = range / 255.0f;
  // A query of zeros (or one whose range overflows) scores every key 0 (+ bias).
  const float inv = range > 0.0f && std::isfinite(range) ? 255.0f / range : 0.0f;
  for (std::size_t d = 0; d < dim; ++d) {
    const float qd = q[d];
    const float c = qd >= 0.0f ? lo_c : hi_c;
    const float lo = qd * c;
    tq.bias[d / G] = std::fma(qd, c, tq.bias[d / G]);
    for (std::size_t k = 0; k < 16; ++k) {
      const float v = std::nearbyint(std::fma(qd, cb[k], -lo) * inv);
      tq.lut[d * 16 + k] = std::uint8_t(v > 0.0f ? (v < 255.0f ? v : 255.0f) : 0.0f);
    }
  }
}

// scores[i * score_stride + k] for keys first + k (k < n_keys) of the tiled store at tiles.
template <tiled_codec Codec>
void tile_dot_reference(const float* q, std::size_t n_q, std::size_t dim, const void* tiles,
                        std::size_t first, std::size_t n_keys, float* scores,
                        std::size_t score_stride) {
  using geo = strata::detail::tile_geometry<Codec>;
  constexpr std::size_t G = Codec::block_values, H = G / 2;
  const std::size_t nb = dim / G, tile_bytes = tile_rows * nb * sizeof(typename Codec::block);
  const auto* base = static_cast<const unsigned char*>(tiles);
  tile_query tq;
  for (std::size_t i = 0; i < n_q; ++i) {
    make_tile_query<Codec>(q + i * dim, dim, tq);
    for (std::size_t k = 0; k < n_keys; ++k) {
      const std::size_t j = first + k, r = j % tile_rows;
      const unsigned char* t = base + j / tile_rows * tile_bytes;
      float score = 0.0f;
      for (std::size_t b = 0; b < nb; ++b, t += geo::block_tile_bytes) {
        std::uint16_t h;
        std::memcpy(&h, t + geo::scale_at(r), 2);
        const float s = f16_to_f32(h);
        std::uint32_t a = 0;
        for (std::size_t e = 0; e < H; ++e) {
          const unsigned byte = t[geo::index_at(e, r)];
          a += tq.lut[(b * G + e) * 16 + (byte & 15u)] + tq.lut[(b * G + e + H) * 16 + (byte >> 4)];
        }
        const float tb = std::fma(float(a), tq.delta, tq.bias[b]);
        score = b == 0 ? s * tb : std::fma(s, tb, score);
      }
      scores[i * score_stride + k] = score;
    }
  }
}

// out[i * dim + c] += sum_k w[i * w_stride + k] * value_{first + k}[c], k < n_values.
template <tiled_codec Codec>
void tile_axpy_reference(const float* w, std::size_t n_q, std::size_t w_stride, const void* tiles,
                         std::size_t first, std::size_t n_values, std::size_t dim, float* out) {
  using geo = strata::detail::tile_geometry<Codec>;
  using traits = turbo_traits<Codec>;
  constexpr std::size_t G = Codec::block_values, H = G / 2, PR = 2 * tile_rows;
  constexpr auto cb = traits::codebook_i8();
  if (n_values == 0) return;
  const std::size_t nb = dim / G, tile_bytes = tile_rows * nb * sizeof(typename Codec::block);
  const auto* base = static_cast<const unsigned char*>(tiles);
  const std::size_t t0 = first / tile_rows, t1 = (first + n_values - 1) / tile_rows;
  const auto in_call = [&](std::size_t j) { return j >= first && j < first + n_values; };
  std::vector<float> acc(dim * 8);
  for (std::size_t i = 0; i < n_q; ++i) {
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (std::size_t p = t0 / 2; p <= t1 / 2; ++p) {  // tiles 2p and 2p + 1
      for (std::size_t b = 0; b < nb; ++b) {
        const auto block_of = [&](std::size_t t) {
          return base + t * tile_bytes + b * geo::block_tile_bytes;
        };
        float x[PR];
        float m = 0.0f;
        for (std::size_t k = 0; k < PR; ++k) {
          const std::size_t j = 2 * p * tile_rows + k;
          x[k] = 0.0f;
          if (in_call(j)) {
            std::uint16_t h;
            std::memcpy(&h, block_of(j / tile_rows) + geo::scale_at(k % tile_rows), 2);
            x[k] = w[i * w_stride + (j - first)] * (f16_to_f32(h) * traits::unit);
          }
          m = std::max(m, std::fabs(x[k]));
        }
        const float inv = m > 0.0f ? 127.0f / m : 0.0f, d = m / 127.0f;
        std::int32_t qw[PR];
        for (std::size_t k = 0; k < PR; ++k) qw[k] = std::int32_t(std::nearbyint(x[k] * inv));
        for (std::size_t e = 0; e < G; ++e) {
          const std::size_t byte_row = e % H;
          const bool high = e >= H;
          for (std::size_t n = 0; n < 8; ++n) {
            std::int32_t sum = 0;
            for (std::size_t u = 0; u < 2; ++u) {
              const std::size_t t = 2 * p + u;
              if (t < t0 || t > t1) continue;  // a tile outside the call is never read
              const unsigned char* tb = block_of(t);
              for (std::size_t r = 4 * n; r < 4 * n + 4; ++r) {
                const unsigned byte = tb[geo::index_at(byte_row, r)];
                sum += qw[u * tile_rows + r] * cb[high ? byte >> 4 : byte & 15u];
              }
            }
            float& a = acc[(b * G + e) * 8 + n];
            a = std::fma(float(sum), d, a);
          }
        }
      }
    }
    for (std::size_t c = 0; c < dim; ++c) {
      const float* a = &acc[c * 8];
      const float s = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
      out[i * dim + c] += s;
    }
  }
}

}  // namespace strata::kernels

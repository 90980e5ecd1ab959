#pragma once
// Shared by the codec quality test and the codec report tool: synthetic head vectors, a
// rotate + encode + decode + unrotate round trip through the reference codecs, error metrics
// and a small attention model (softmax(q K^T / sqrt(d)) V) to judge codecs by what attention
// computes, not only by MSE.

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <strata/codec/codecs.hpp>
#include <strata/reference/encode.hpp>
#include <strata/rotation/hadamard.hpp>
#include <strata/rotation/identity.hpp>

namespace strata::quality {

// n rows of d N(0, 1) values.
inline std::vector<float> gaussian_rows(std::size_t n, std::size_t d, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> v(n * d);
  for (auto& x : v) x = nd(rng);
  return v;
}

// Like real K: n_outliers fixed channels (chosen by seed) are `factor` times larger.
inline std::vector<float> outlier_rows(std::size_t n, std::size_t d, std::size_t n_outliers,
                                       float factor, std::uint64_t seed) {
  auto v = gaussian_rows(n, d, seed);
  std::mt19937_64 rng(seed ^ 0xabcdefull);
  std::vector<std::size_t> ch(d);
  for (std::size_t i = 0; i < d; ++i) ch[i] = i;
  std::shuffle(ch.begin(), ch.end(), rng);
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t k = 0; k < n_outliers; ++k) v[r * d + ch[k]] *= factor;
  return v;
}

// Encode each row (rotated first when Codec::rotated, with Rotation), decode, unrotate.
// Encode is a callable (const float*, size_t, void*) so tests can swap in variants.
template <class Codec, class Rotation, class Encode>
std::vector<float> round_trip_rows(const std::vector<float>& x, std::size_t d, Encode encode) {
  std::vector<float> y(x.size()), row(d);
  std::vector<unsigned char> blocks(d / Codec::block_values * Codec::block_bytes);
  for (std::size_t r = 0; r < x.size() / d; ++r) {
    std::copy_n(x.data() + r * d, d, row.data());
    if constexpr (Codec::rotated) Rotation::forward(row.data(), d);
    encode(row.data(), d, blocks.data());
    reference::decode<Codec>(blocks.data(), d, y.data() + r * d);
    if constexpr (Codec::rotated) Rotation::inverse(y.data() + r * d, d);
  }
  return y;
}

template <class Codec, class Rotation = hadamard<>>
std::vector<float> round_trip_rows(const std::vector<float>& x, std::size_t d) {
  return round_trip_rows<Codec, Rotation>(
      x, d, [](const float* p, std::size_t n, void* o) { reference::encode<Codec>(p, n, o); });
}

// sum |x - y|^2 / sum |x|^2: per-coordinate MSE after normalising each vector's energy.
inline double relative_mse(const std::vector<float>& x, const std::vector<float>& y) {
  double e = 0, s = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    e += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
    s += double(x[i]) * x[i];
  }
  return e / s;
}

// Mean over rows of |x - y|^2 / |x|^2 (each row normalised to unit norm first).
inline double mean_row_relative_mse(const std::vector<float>& x, const std::vector<float>& y,
                                    std::size_t d) {
  double acc = 0;
  const std::size_t n = x.size() / d;
  for (std::size_t r = 0; r < n; ++r) {
    double e = 0, s = 0;
    for (std::size_t c = 0; c < d; ++c) {
      const double a = x[r * d + c], b = y[r * d + c];
      e += (a - b) * (a - b);
      s += a * a;
    }
    acc += s > 0 ? e / s : 0.0;
  }
  return acc / double(n);
}

// Inner products with random Gaussian queries: relative RMS error
// sqrt(sum (<q, y> - <q, x>)^2 / sum <q, x>^2) and relative bias sum (<q,y> - <q,x>) <q,x> /
// sum <q,x>^2 (> 0: scores inflated).
struct ip_error {
  double rms = 0, bias = 0;
};
inline ip_error inner_product_error(const std::vector<float>& x, const std::vector<float>& y,
                                    std::size_t d, std::uint64_t seed) {
  const std::size_t n = x.size() / d;
  auto q = gaussian_rows(n, d, seed);
  double e2 = 0, s2 = 0, b = 0;
  for (std::size_t r = 0; r < n; ++r) {
    double t = 0, a = 0;
    for (std::size_t c = 0; c < d; ++c) {
      t += double(q[r * d + c]) * x[r * d + c];
      a += double(q[r * d + c]) * y[r * d + c];
    }
    e2 += (a - t) * (a - t);
    s2 += t * t;
    b += (a - t) * t;
  }
  return {std::sqrt(e2 / s2), b / s2};
}

// A synthetic attention problem: n_keys keys with outlier channels (like real K), Gaussian
// values, and queries that point at a few keys each so softmax is peaked (as in real heads).
struct attention_problem {
  std::size_t d, n_keys, n_queries;
  std::vector<float> q, k, v;
};

inline attention_problem make_attention(std::size_t d, std::size_t n_keys, std::size_t n_queries,
                                        std::uint64_t seed) {
  attention_problem p{d,
                      n_keys,
                      n_queries,
                      {},
                      outlier_rows(n_keys, d, 4, 6.0f, seed),
                      gaussian_rows(n_keys, d, seed + 1)};
  std::mt19937_64 rng(seed + 2);
  auto noise = gaussian_rows(n_queries, d, seed + 3);
  p.q.resize(n_queries * d);
  for (std::size_t i = 0; i < n_queries; ++i) {
    // A query is 0.7 of a (scaled) key plus noise: a few keys get most of the weight.
    const std::size_t j = rng() % n_keys;
    for (std::size_t c = 0; c < d; ++c)
      p.q[i * d + c] = 0.7f * p.k[j * d + c] * 0.25f + 0.5f * noise[i * d + c];
  }
  return p;
}

// out_i = softmax(q_i K^T / sqrt(d)) V, in double.
inline std::vector<double> attention(const attention_problem& p, const std::vector<float>& k,
                                     const std::vector<float>& v) {
  std::vector<double> out(p.n_queries * p.d, 0.0), s(p.n_keys);
  for (std::size_t i = 0; i < p.n_queries; ++i) {
    double mx = -1e300;
    for (std::size_t j = 0; j < p.n_keys; ++j) {
      double t = 0;
      for (std::size_t c = 0; c < p.d; ++c) t += double(p.q[i * p.d + c]) * k[j * p.d + c];
      s[j] = t / std::sqrt(double(p.d));
      mx = std::max(mx, s[j]);
    }
    double z = 0;
    for (auto& t : s) z += (t = std::exp(t - mx));
    for (std::size_t j = 0; j < p.n_keys; ++j)
      for (std::size_t c = 0; c < p.d; ++c) out[i * p.d + c] += s[j] / z * v[j * p.d + c];
  }
  return out;
}

// Mean cosine similarity and mean relative L2 error of attention outputs against exact ones.
struct attention_error {
  double cosine = 0, rel_l2 = 0;
};
inline attention_error compare_attention(const std::vector<double>& exact,
                                         const std::vector<double>& approx, std::size_t d) {
  attention_error e;
  const std::size_t n = exact.size() / d;
  for (std::size_t i = 0; i < n; ++i) {
    double ab = 0, aa = 0, bb = 0, dd = 0;
    for (std::size_t c = 0; c < d; ++c) {
      const double a = exact[i * d + c], b = approx[i * d + c];
      ab += a * b;
      aa += a * a;
      bb += b * b;
      dd += (a - b) * (a - b);
    }
    e.cosine += ab / std::sqrt(aa * bb);
    e.rel_l2 += std::sqrt(dd / aa);
  }
  e.cosine /= double(n);
  e.rel_l2 /= double(n);
  return e;
}

// Entropy of the attention weights (nats), averaged over queries: shows how peaked it is.
inline double attention_entropy(const attention_problem& p) {
  double h = 0;
  std::vector<double> s(p.n_keys);
  for (std::size_t i = 0; i < p.n_queries; ++i) {
    double mx = -1e300;
    for (std::size_t j = 0; j < p.n_keys; ++j) {
      double t = 0;
      for (std::size_t c = 0; c < p.d; ++c) t += double(p.q[i * p.d + c]) * p.k[j * p.d + c];
      s[j] = t / std::sqrt(double(p.d));
      mx = std::max(mx, s[j]);
    }
    double z = 0;
    for (auto& t : s) z += (t = std::exp(t - mx));
    for (auto t : s) h -= t / z > 0 ? t / z * std::log(t / z) : 0.0;
  }
  return h / double(p.n_queries);
}

// Test-only alternative for head dims that are not a power of two: a block-diagonal randomized
// Hadamard on the binary decomposition of d (80 = 64 + 16, 576 = 512 + 64), the scheme
// strata::hadamard was measured against (docs/codecs.md).
template <std::uint64_t Seed = 0x7374726174611ull> struct block_diagonal_hadamard {
  static void apply(float* x, std::size_t d, bool forward) {
    std::size_t start = 0;
    while (start < d) {
      const std::size_t p = std::bit_floor(d - start);
      detail::signed_hadamard(x + start, p, hadamard<Seed>::sign_bits.data(), start, forward);
      start += p;
    }
  }
  static void forward(float* x, std::size_t d) { apply(x, d, true); }
  static void inverse(float* x, std::size_t d) { apply(x, d, false); }
};

// Reference encode of a turbo codec with a given scale rule (for the norm-correction study).
// Index picks the indices (norm: the rule the norm-correction study measured).
template <class Codec, turbo_scale_rule Rule, turbo_index_rule Index = turbo_index_rule::norm>
void encode_with_rule(const float* x, std::size_t n, void* out) {
  auto* dst = static_cast<unsigned char*>(out);
  for (std::size_t i = 0; i < n / Codec::block_values; ++i) {
    typename Codec::block b{};
    reference::detail::encode_turbo_block<Rule, Codec::bits, Codec::group, typename Codec::codebook,
                                          Index>(x + i * Codec::block_values, b);
    std::memcpy(dst + i * Codec::block_bytes, &b, Codec::block_bytes);
  }
}

// Calls f(turbo<B, G>{}) with G = turbo_group_for(d).
template <int B, class F> decltype(auto) with_turbo_group(std::size_t d, F&& f) {
  switch (turbo_group_for(d)) {
    case 128: return f(turbo<B, 128>{});
    case 64: return f(turbo<B, 64>{});
    case 32: return f(turbo<B, 32>{});
    default: return f(turbo<B, 16>{});
  }
}

}  // namespace strata::quality

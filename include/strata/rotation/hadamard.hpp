#pragma once
// hadamard<Seed>: a randomized Walsh-Hadamard rotation, x -> H D x / sqrt(P), with D a diagonal
// of random +-1 signs (splitmix64 seeded by Seed, a constexpr table) and H the P x P Hadamard
// matrix applied by an in-place butterfly; orthonormal, so inverse = transpose.
//
// Head dims that are not a power of two (80, 96, 192, 576, ...): with P the largest power of two
// <= d, forward applies the signed Hadamard to [0, P) and then a second one (other signs) to
// [d - P, d). The two overlapping pieces mix every coordinate with every other (an outlier
// anywhere is spread over all d outputs), unlike a block-diagonal rotation on power-of-two
// pieces, which leaves an outlier inside its piece. docs/codecs.md "Head dims that are not a
// power of two" has the measurement. Power-of-two d use one pass.
//
// turbo_group_for(d) is the turbo group the cache uses for head dim d: the largest of
// 128, 64, 32, 16 that divides d (0 when none does: turbo cannot store that head dim).

#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

namespace strata {

constexpr std::size_t turbo_group_for(std::size_t head_dim) {
  for (std::size_t g : {std::size_t{128}, std::size_t{64}, std::size_t{32}, std::size_t{16}})
    if (head_dim % g == 0 && head_dim != 0) return g;
  return 0;
}

namespace detail {

constexpr std::uint64_t splitmix64_next(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline constexpr std::size_t hadamard_max_dim = 4096;

// 2 * hadamard_max_dim sign bits (bit set = negate): the first half for the first pass, the
// second half for the second pass of a non-power-of-two dim.
template <std::uint64_t Seed>
constexpr std::array<std::uint64_t, 2 * hadamard_max_dim / 64> hadamard_sign_bits() {
  std::array<std::uint64_t, 2 * hadamard_max_dim / 64> bits{};
  std::uint64_t state = Seed;
  for (auto& w : bits) w = splitmix64_next(state);
  return bits;
}

// In-place unnormalized Walsh-Hadamard transform of n = 2^k values.
inline void fwht(float* x, std::size_t n) {
  for (std::size_t h = 1; h < n; h *= 2)
    for (std::size_t i = 0; i < n; i += 2 * h)
      for (std::size_t j = i; j < i + h; ++j) {
        const float a = x[j], b = x[j + h];
        x[j] = a + b;
        x[j + h] = a - b;
      }
}

// Flip the sign of x[i] where bit (offset + i) of the table is set.
inline void apply_signs(float* x, std::size_t n, const std::uint64_t* bits, std::size_t offset) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t b = offset + i;
    const std::uint32_t flip = std::uint32_t((bits[b / 64] >> (b % 64)) & 1u) << 31;
    std::uint32_t u;
    std::memcpy(&u, x + i, 4);
    u ^= flip;
    std::memcpy(x + i, &u, 4);
  }
}

// One orthonormal signed Hadamard pass on n = 2^k values: forward H D / sqrt(n), inverse
// D H / sqrt(n).
inline void signed_hadamard(float* x, std::size_t n, const std::uint64_t* bits, std::size_t offset,
                            bool forward) {
  if (forward) apply_signs(x, n, bits, offset);
  fwht(x, n);
  const float s = float(1.0 / std::sqrt(double(n)));
  for (std::size_t i = 0; i < n; ++i) x[i] *= s;
  if (!forward) apply_signs(x, n, bits, offset);
}

inline void check_rotation_dim(std::size_t d, const char* where) {
  if (d > hadamard_max_dim)
    throw std::invalid_argument("error: head dim " + std::to_string(d) + " exceeds " +
                                std::to_string(hadamard_max_dim) + " (" + where + ")");
}

}  // namespace detail

template <std::uint64_t Seed = 0x7374726174611ull> struct hadamard {
  static constexpr const char* name = "hadamard";
  static constexpr std::uint64_t seed = Seed;
  static constexpr std::size_t max_dim = detail::hadamard_max_dim;
  static constexpr std::array<std::uint64_t, 2 * detail::hadamard_max_dim / 64> sign_bits =
      detail::hadamard_sign_bits<Seed>();

  // x[0, d) -> R x, R orthonormal. d <= max_dim.
  static void forward(float* x, std::size_t d) {
    detail::check_rotation_dim(d, "strata::hadamard::forward");
    if (d == 0) return;
    const std::size_t p = std::bit_floor(d);
    detail::signed_hadamard(x, p, sign_bits.data(), 0, true);
    if (p != d) detail::signed_hadamard(x + (d - p), p, sign_bits.data(), max_dim, true);
  }

  // x[0, d) -> R^T x.
  static void inverse(float* x, std::size_t d) {
    detail::check_rotation_dim(d, "strata::hadamard::inverse");
    if (d == 0) return;
    const std::size_t p = std::bit_floor(d);
    if (p != d) detail::signed_hadamard(x + (d - p), p, sign_bits.data(), max_dim, false);
    detail::signed_hadamard(x, p, sign_bits.data(), 0, false);
  }
};

}  // namespace strata

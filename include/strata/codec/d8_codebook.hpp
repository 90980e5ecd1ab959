#pragma once
// The 2-bit lattice codebook of strata::vq2: 65,536 points of the half-integer coset of the
// D8 lattice, D8 + (1/2, ..., 1/2) = { y : every y_i in Z + 1/2, sum(y) even }, chosen as a
// ball around the origin. A point is an "abs pattern" a (8 odd numbers a_i in {1, 3, 5, 7},
// y_i = +-a_i / 2) and signs; flipping one sign changes sum(y) by an odd number, so exactly
// half of the 256 sign patterns of a pattern are in the lattice: 7 free sign bits.
//   - patterns: the 512 of smallest |a|^2, ties in lexicographic order of (a_0, ..., a_7)
//     (levels |a|^2 <= 48 give 451, then 61 of the 344 with |a|^2 = 56);
//   - a 16-bit code is pattern | flips << 9: the pattern's base vector b (a, with b_7 = -a_7
//     when a's base sign pattern needs one negative coordinate) with coordinates 0..6 negated
//     where the flip bits are set and coordinate 7 negated when their count is odd.
// Against the scalar Lloyd-Max quantizer of turbo2 (the same 2 bits per value, one fp16 scale
// per group) this is a vector quantizer: the ball gives shaping gain and D8 packing gain.
// Measured on rotated Gaussian rows (docs/codecs.md): mean cosine 0.952 against turbo2's 0.940.
//
// Encoding one chunk (encode_chunk) is exact in the metric of |v| rounded to 1/256: the
// nearest point of the whole coset first (round every coordinate to a half-integer, then fix
// the sum's parity at the coordinate nearest a midpoint), which is the answer when its pattern
// is one of the 512; otherwise a search of all 512 patterns (best signs for each in closed
// form). All integer, so every build gives the same bytes.

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace strata::d8 {

// Parity of the low 8 bits (the count of set bits mod 2), without std::popcount: this header is
// also compiled inside the SSE4/AVX2/AVX3 kernel targets, whose target strings let g++ emit
// POPCNT, a CPUID feature Highway's run-time checks do not test (tests/isa/isa_gate.py).
constexpr unsigned parity8(unsigned x) { return (0x6996u >> ((x ^ (x >> 4)) & 0xFu)) & 1u; }
static_assert(parity8(0) == 0 && parity8(1) == 1 && parity8(0x81) == 0 && parity8(0xFE) == 1 &&
                  parity8(0xFF) == 0,
              "parity8");

inline constexpr int patterns = 512;       // 9 bits
inline constexpr int sign_patterns = 128;  // 7 bits
inline constexpr int levels = 4;           // a_i in {1, 3, 5, 7}

// Digit i (0..3) of a tuple t = sum digit_i * 4^(7 - i); a_i = 2 * digit_i + 1.
constexpr int digit(unsigned t, int i) { return int(t >> (2 * (7 - i))) & 3; }

struct codebook {
  std::array<std::uint16_t, patterns> tuple{};                       // pattern -> t
  std::array<std::uint16_t, patterns> sorted_tuple{};                // the patterns' t, ascending
  std::array<std::uint16_t, patterns> sorted_pattern{};              // pattern of sorted_tuple[k]
  std::array<std::array<std::int8_t, 8>, patterns> base{};           // b (odd half-units, signed)
  std::array<std::array<std::int16_t, patterns>, 8> abs_by_coord{};  // a_i of each pattern
  std::array<std::int32_t, patterns> norm2{};                        // |a|^2
  std::array<std::uint8_t, patterns> parity{};      // (sum a / 2) mod 2: negatives needed
  std::array<std::uint64_t, sign_patterns> flip{};  // 0xFF bytes where b is negated
};

namespace detail {
// |a|^2 = 8 + 8 * level, level = sum of w(digit): w = 0, 1, 3, 6 for a = 1, 3, 5, 7. The 512
// patterns lie within level 6 (795 tuples), listed here in ascending t by a depth-first walk.
inline constexpr int kWeight[4] = {0, 1, 3, 6};
inline constexpr int kMaxLevel = 6;
inline constexpr int kCandidates = 795;
struct candidates {
  std::array<std::uint16_t, kCandidates> t{};
  std::array<std::uint8_t, kCandidates> level{};
  int n = 0;
};
constexpr void walk(candidates& c, int i, unsigned t, int level) {
  if (i == 8) {
    c.t[std::size_t(c.n)] = std::uint16_t(t);
    c.level[std::size_t(c.n)] = std::uint8_t(level);
    ++c.n;
    return;
  }
  for (int d = 0; d < 4; ++d)
    if (level + kWeight[d] <= kMaxLevel) walk(c, i + 1, t * 4u + unsigned(d), level + kWeight[d]);
}
}  // namespace detail

constexpr codebook make_codebook() {
  codebook c{};
  detail::candidates cand{};
  detail::walk(cand, 0, 0u, 0);
  std::array<int, detail::kMaxLevel + 1> count{}, first{}, seen{};
  for (int k = 0; k < cand.n; ++k) ++count[cand.level[std::size_t(k)]];
  for (int l = 0, n = 0; l <= detail::kMaxLevel; ++l) {
    first[std::size_t(l)] = n;
    n += count[std::size_t(l)];
  }
  int k = 0;
  for (int j = 0; j < cand.n; ++j) {  // ascending t: lexicographic within a level
    const int l = cand.level[std::size_t(j)];
    const int p = first[std::size_t(l)] + seen[std::size_t(l)]++;
    if (p >= patterns) continue;
    c.tuple[std::size_t(p)] = cand.t[std::size_t(j)];
    c.sorted_tuple[std::size_t(k)] = cand.t[std::size_t(j)];
    c.sorted_pattern[std::size_t(k)] = std::uint16_t(p);
    ++k;
  }
  for (int p = 0; p < patterns; ++p) {
    int sum = 0, n2 = 0;
    for (int i = 0; i < 8; ++i) {
      const int a = 2 * digit(c.tuple[std::size_t(p)], i) + 1;
      c.abs_by_coord[std::size_t(i)][std::size_t(p)] = std::int16_t(a);
      c.base[std::size_t(p)][std::size_t(i)] = std::int8_t(a);
      sum += a;
      n2 += a * a;
    }
    c.norm2[std::size_t(p)] = n2;
    c.parity[std::size_t(p)] = std::uint8_t((sum / 2) & 1);
    if (c.parity[std::size_t(p)])
      c.base[std::size_t(p)][7] = std::int8_t(-c.base[std::size_t(p)][7]);
  }
  for (int f = 0; f < sign_patterns; ++f) {
    const int full = f | int(parity8(unsigned(f)) << 7);
    std::uint64_t m = 0;
    for (int i = 0; i < 8; ++i)
      if ((full >> i) & 1) m |= std::uint64_t(0xFF) << (8 * i);
    c.flip[std::size_t(f)] = m;
  }
  return c;
}

inline constexpr codebook book = make_codebook();
static_assert(book.norm2[0] == 8 && book.norm2[450] == 48 && book.norm2[451] == 56 &&
                  book.norm2[patterns - 1] == 56,
              "d8 codebook: 451 patterns up to |a|^2 = 48, then 61 at 56");

// The 8 signed odd half-units of a code (value_i = k_i / 2 before the group's scale).
inline void decode_chunk(std::uint16_t code, std::int8_t* k) {
  const unsigned p = code & 511u, f = code >> 9;
  const unsigned full = f | (parity8(f) << 7);
  for (int i = 0; i < 8; ++i) {
    const int b = book.base[p][std::size_t(i)];
    k[i] = std::int8_t(((full >> i) & 1u) ? -b : b);
  }
}

namespace detail {
// Pattern of tuple t, or -1 when t is not one of the 512 (a branch-free binary search).
inline int pattern_of(unsigned t) {
  std::size_t lo = 0;
  for (std::size_t step = patterns / 2; step > 0; step /= 2)
    lo += book.sorted_tuple[lo + step - 1] < t ? step : 0;
  return book.sorted_tuple[lo] == t ? int(book.sorted_pattern[lo]) : -1;
}
// Code of pattern p with negated coordinates neg (bit i: y_i < 0; a lattice point).
inline std::uint16_t make_code(int p, unsigned neg) {
  const unsigned f = neg ^ (unsigned(book.parity[std::size_t(p)]) << 7);
  return std::uint16_t(unsigned(p) | ((f & 0x7Fu) << 9));
}
}  // namespace detail

namespace detail {
// |v_i| in units of 1/256 and the signs (bit i: v_i < 0).
inline unsigned quantize_abs(const float* v, std::int32_t* u) {
  unsigned neg = 0;
  for (int i = 0; i < 8; ++i) {
    const float m = std::fabs(v[i]);
    u[i] = std::int32_t((m < 64.0f ? m : 64.0f) * 256.0f + 0.5f);
    neg |= unsigned(v[i] < 0.0f) << i;
  }
  return neg;
}

// The nearest point of the coset: a_i = 2 floor(|v_i|) + 1 (error e_i = u_i - 128 a_i); with
// the wrong parity, the coordinate farthest from its half-integer moves to its second nearest
// one (cost 65536 - 512 |e_i|, least for the largest |e_i|). True, with its code, when the
// point is one of the codebook's.
inline bool nearest_in_ball(const std::int32_t* u, unsigned neg, std::uint16_t& code) {
  std::int32_t a[8], e[8];
  int sum = 0;
  for (int i = 0; i < 8; ++i) {
    a[i] = 2 * (u[i] >> 8) + 1;
    e[i] = u[i] - 128 * a[i];
    sum += a[i];
  }
  unsigned n = neg;
  if (((parity8(n) ^ unsigned(sum / 2)) & 1u) != 0) {
    int j = 0;
    for (int i = 1; i < 8; ++i)
      if (std::abs(e[i]) > std::abs(e[j])) j = i;
    if (e[j] >= 0)
      a[j] += 2;
    else if (a[j] > 1)
      a[j] -= 2;
    else
      n ^= 1u << j;  // |v_j| < 1/2: across zero
  }
  bool inside = true;
  unsigned t = 0;
  for (int i = 0; i < 8; ++i) {
    inside = inside && a[i] <= 7;
    t = t * 4u + unsigned((a[i] - 1) / 2 & 3);
  }
  if (!inside) return false;
  const int p = pattern_of(t);
  if (p < 0) return false;
  code = make_code(p, n);
  return true;
}

// Every pattern with its best signs (v's signs, and when their count has the wrong parity the
// coordinate of least u_i a_i negated): the distance up to terms common to all patterns,
// 64 |a|^2 - sum u_i a_i (+ 2 min u_i a_i when flipped). Returns the lowest pattern of least
// cost; the kernels compute the same integers in SIMD lanes.
inline int best_pattern(const std::int32_t* u, unsigned neg) {
  const unsigned nv = parity8(neg);
  int best = 0;
  std::int32_t least = std::numeric_limits<std::int32_t>::max();
  for (int p = 0; p < patterns; ++p) {
    std::int32_t s = 0, m = std::numeric_limits<std::int32_t>::max();
    for (int i = 0; i < 8; ++i) {
      const std::int32_t x = u[i] * std::int32_t(book.abs_by_coord[std::size_t(i)][std::size_t(p)]);
      s += x;
      m = x < m ? x : m;
    }
    const std::int32_t flip = ((nv ^ book.parity[std::size_t(p)]) & 1u) ? 2 * m : 0;
    const std::int32_t cost = 64 * book.norm2[std::size_t(p)] - s + flip;
    if (cost < least) least = cost, best = p;
  }
  return best;
}

// The code of pattern `best` with its best signs.
inline std::uint16_t code_with_signs(int best, const std::int32_t* u, unsigned neg) {
  const unsigned nv = parity8(neg);
  unsigned nb = neg;
  if (((nv ^ book.parity[std::size_t(best)]) & 1u) != 0) {
    int j = 0;
    std::int32_t m = std::numeric_limits<std::int32_t>::max();
    for (int i = 0; i < 8; ++i) {
      const std::int32_t x =
          u[i] * std::int32_t(book.abs_by_coord[std::size_t(i)][std::size_t(best)]);
      if (x < m) m = x, j = i;
    }
    nb ^= 1u << j;
  }
  return make_code(best, nb);
}
}  // namespace detail

// Nearest codeword to v[0..8) (finite; in the codebook's units: half-integers). Ties: the
// fast path's rounding (first coordinate), then the lowest pattern. Search: best_pattern, or a
// function returning the same pattern (the SIMD kernels').
template <class Search> std::uint16_t encode_chunk_with(const float* v, Search&& search) {
  std::int32_t u[8];
  const unsigned neg = detail::quantize_abs(v, u);
  std::uint16_t code = 0;
  if (detail::nearest_in_ball(u, neg, code)) return code;
  return detail::code_with_signs(search(u, neg), u, neg);  // outside the ball: every pattern
}

inline std::uint16_t encode_chunk(const float* v) {
  return encode_chunk_with(
      v, [](const std::int32_t* u, unsigned neg) { return detail::best_pattern(u, neg); });
}

}  // namespace strata::d8

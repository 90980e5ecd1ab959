#pragma once
// Scalar packing of turbo<Bits, Group> indices (one byte per index in, the planar block layout
// of docs/formats.md out) and back. constexpr; shared by the reference kernels and the tests.

#include <cstddef>
#include <cstdint>

namespace strata {

namespace detail {
// Two bits of each index, S and S + 1, in Bits 2's layout: out[j] (j < G/4) bits 2k..2k+1 hold
// those of element j + k*G/4, k = 0..3 (Bits 2, the low bits of Bits 3, bits 4..5 of Bits 6).
template <int Group, int S> constexpr void pack_pairs(const std::uint8_t* q, std::uint8_t* out) {
  constexpr int Q = Group / 4;
  for (int j = 0; j < Q; ++j) {
    std::uint8_t v = 0;
    for (int k = 0; k < 4; ++k) v = std::uint8_t(v | (((q[j + k * Q] >> S) & 3) << (2 * k)));
    out[j] = v;
  }
}
// The inverse: sets bits S, S + 1 of q (S == 0: the whole index; else ORs them in).
template <int Group, int S> constexpr void unpack_pairs(const std::uint8_t* in, std::uint8_t* q) {
  constexpr int Q = Group / 4;
  for (int j = 0; j < Q; ++j)
    for (int k = 0; k < 4; ++k) {
      const std::uint8_t v = std::uint8_t(((in[j] >> (2 * k)) & 3) << S);
      q[j + k * Q] = S == 0 ? v : std::uint8_t(q[j + k * Q] | v);
    }
}
}  // namespace detail

template <int Bits, int Group> constexpr void turbo_pack(const std::uint8_t* q, std::uint8_t* idx) {
  static_assert(Bits >= 2 && Bits <= 6);
  if constexpr (Bits >= 4) {
    for (int j = 0; j < Group / 2; ++j)
      idx[j] = std::uint8_t((q[j] & 0xf) | ((q[j + Group / 2] & 0xf) << 4));
    if constexpr (Bits == 5) {
      constexpr int E = Group / 8;
      for (int j = 0; j < E; ++j) {
        std::uint8_t hi = 0;
        for (int k = 0; k < 8; ++k) hi = std::uint8_t(hi | (((q[j + k * E] >> 4) & 1) << k));
        idx[Group / 2 + j] = hi;
      }
    } else if constexpr (Bits == 6) {
      detail::pack_pairs<Group, 4>(q, idx + Group / 2);
    }
  } else {
    detail::pack_pairs<Group, 0>(q, idx);
    if constexpr (Bits == 3) {
      constexpr int Q = Group / 4, E = Group / 8;
      for (int j = 0; j < E; ++j) {
        std::uint8_t hi = 0;
        for (int k = 0; k < 8; ++k) hi = std::uint8_t(hi | (((q[j + k * E] >> 2) & 1) << k));
        idx[Q + j] = hi;
      }
    }
  }
}

template <int Bits, int Group>
constexpr void turbo_unpack(const std::uint8_t* idx, std::uint8_t* q) {
  static_assert(Bits >= 2 && Bits <= 6);
  if constexpr (Bits >= 4) {
    for (int j = 0; j < Group / 2; ++j) {
      q[j] = idx[j] & 0xf;
      q[j + Group / 2] = idx[j] >> 4;
    }
    if constexpr (Bits == 5) {
      constexpr int E = Group / 8;
      for (int j = 0; j < E; ++j)
        for (int k = 0; k < 8; ++k)
          q[j + k * E] = std::uint8_t(q[j + k * E] | (((idx[Group / 2 + j] >> k) & 1) << 4));
    } else if constexpr (Bits == 6) {
      detail::unpack_pairs<Group, 4>(idx + Group / 2, q);
    }
  } else {
    detail::unpack_pairs<Group, 0>(idx, q);
    if constexpr (Bits == 3) {
      constexpr int Q = Group / 4, E = Group / 8;
      for (int j = 0; j < E; ++j)
        for (int k = 0; k < 8; ++k)
          q[j + k * E] = std::uint8_t(q[j + k * E] | (((idx[Q + j] >> k) & 1) << 2));
    }
  }
}

}  // namespace strata

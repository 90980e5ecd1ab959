#pragma once
// Scalar packing of turbo<Bits, Group> indices (one byte per index in, the planar block layout
// of docs/formats.md out) and back. constexpr; shared by the reference kernels and the tests.

#include <cstddef>
#include <cstdint>

namespace strata {

template <int Bits, int Group> constexpr void turbo_pack(const std::uint8_t* q, std::uint8_t* idx) {
  static_assert(Bits >= 2 && Bits <= 5);
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
    }
  } else {
    constexpr int Q = Group / 4;
    for (int j = 0; j < Q; ++j)
      idx[j] = std::uint8_t((q[j] & 3) | ((q[j + Q] & 3) << 2) | ((q[j + 2 * Q] & 3) << 4) |
                            ((q[j + 3 * Q] & 3) << 6));
    if constexpr (Bits == 3) {
      constexpr int E = Group / 8;
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
  static_assert(Bits >= 2 && Bits <= 5);
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
    }
  } else {
    constexpr int Q = Group / 4;
    for (int j = 0; j < Q; ++j)
      for (int k = 0; k < 4; ++k) q[j + k * Q] = (idx[j] >> (2 * k)) & 3;
    if constexpr (Bits == 3) {
      constexpr int E = Group / 8;
      for (int j = 0; j < E; ++j)
        for (int k = 0; k < 8; ++k)
          q[j + k * E] = std::uint8_t(q[j + k * E] | (((idx[Q + j] >> k) & 1) << 2));
    }
  }
}

}  // namespace strata

#pragma once
// The identity rotation: rows are stored as they are (for codecs that do not rotate, and as the
// baseline that shows what the Hadamard rotation buys).

#include <cstddef>

namespace strata {

struct identity_rotation {
  static constexpr const char* name = "identity";
  static void forward(float*, std::size_t) {}
  static void inverse(float*, std::size_t) {}
};

}  // namespace strata

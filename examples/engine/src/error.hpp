// engine::error -- the one exception type of the example engine.
#pragma once

#include <stdexcept>
#include <string>

namespace engine {

// Thrown for bad input; what() reads "error: <what> (<where>)". Tools print it and exit 1.
struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Builds an error whose message follows the convention above.
inline error make_error(const std::string& what, const std::string& where) {
  return error("error: " + what + " (" + where + ")");
}

}  // namespace engine

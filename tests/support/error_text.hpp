// strata_test::error_text(f): the what() of the exception f() throws, "" when it returns.
#pragma once

#include <exception>
#include <string>

namespace strata_test {

template <class F> std::string error_text(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace strata_test

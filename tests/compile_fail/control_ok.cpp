// Must compile: the control for the compile-fail tests (same harness, a valid policy). It
// includes kv_cache.hpp alone, as the example in that header's comment does, so a preset the
// example names must come with it.
#include <strata/kv_cache.hpp>
using C = strata::kv_cache<strata::boundary_v<>>;
int main() { return sizeof(C) == 0; }

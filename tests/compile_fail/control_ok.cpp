// Must compile: the control for the compile-fail tests (same harness, a valid policy).
#include <strata/kv_cache.hpp>
#include <strata/policy/presets.hpp>
using C = strata::kv_cache<strata::boundary_v<>>;
int main() { return sizeof(C) == 0; }

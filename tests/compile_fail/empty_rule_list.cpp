// Must not compile: a layered policy without rules.
#include <strata/codec/codecs.hpp>
#include <strata/policy/policy.hpp>
using P = strata::layered<strata::uniform<strata::f16>>;
int main() { return sizeof(P); }

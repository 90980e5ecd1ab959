// Must not compile: int is not a layer selector.
#include <strata/codec/codecs.hpp>
#include <strata/policy/policy.hpp>
using R = strata::v_rule<int, strata::q8_0>;
int main() { return sizeof(R); }

// Must not compile: int is not a codec.
#include <strata/codec/codecs.hpp>
#include <strata/policy/policy.hpp>
using P = strata::uniform<int, strata::q8_0>;
int main() { return sizeof(P); }

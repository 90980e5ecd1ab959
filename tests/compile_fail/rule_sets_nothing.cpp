// Must not compile: a rule that sets neither K nor V.
#include <strata/codec/codecs.hpp>
#include <strata/policy/policy.hpp>
using R = strata::rule<strata::first_n<2>, strata::keep, strata::keep>;
int main() { return sizeof(R); }

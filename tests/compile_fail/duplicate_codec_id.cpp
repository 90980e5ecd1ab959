// Must not compile: two codec types with the same id (turbo3) in one policy.
#include <strata/kv_cache.hpp>
using P = strata::layered<
    strata::uniform<strata::q8_0, strata::turbo<3>>,
    strata::v_rule<strata::first_n<1>, strata::turbo<3, 128, strata::fork_codebook<3>>>>;
using C = strata::kv_cache<P, strata::default_rotation,
                           strata::codec_set<strata::q8_0, strata::turbo<3>,
                                             strata::turbo<3, 128, strata::fork_codebook<3>>>>;
int main() { return sizeof(C); }

// Must not compile: the policy names turbo<2>, which the cache's codec set lacks.
#include <strata/kv_cache.hpp>
using C = strata::kv_cache<strata::uniform<strata::q8_0, strata::turbo<2>>,
                           strata::default_rotation, strata::codec_set<strata::f16, strata::q8_0>>;
int main() { return sizeof(C); }

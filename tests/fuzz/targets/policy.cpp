// Fuzz target: the KV policy parser (strata/policy/parse.hpp) on arbitrary text.
// Properties: bad input throws std::invalid_argument with a well-formed message quoting the
// policy; a parsed policy's canonical string parses to a policy that resolves every layer of
// several layer maps to the same codecs, and is its own canonical string; report() and bytes()
// work on every map whose layers all match a rule.
#include <string>

#include <strata/policy/parse.hpp>
#include <strata/policy/report.hpp>

#include "targets.hpp"

namespace strata_fuzz {

namespace {

std::vector<strata::layer_map> maps() {
  std::vector<strata::layer_map> m;
  m.push_back(strata::layer_map::dense(1, 1, 64));
  m.push_back(strata::layer_map::dense(30, 3, 64));
  m.push_back(strata::layer_map::hybrid(12, 4, 3, 2, 128));
  std::vector<strata::layer_info> g(18);  // Gemma 3: five sliding layers, then a global one
  for (std::size_t i = 0; i < g.size(); ++i) {
    g[i].n_kv_heads = 1;
    g[i].head_dim = 256;
    g[i].n_heads = 4;
    if (i % 6 != 5) g[i].kind = strata::attention_kind::sliding, g[i].window = 512;
  }
  m.emplace_back(std::move(g));
  return m;
}

}  // namespace

void policy(input in) {
  static const std::vector<strata::layer_map> layer_maps = maps();
  const std::string text(in.begin(), in.end());
  strata::policy_spec spec;
  try {
    spec = strata::parse_policy(text);
  } catch (const std::invalid_argument& e) {
    check(well_formed(e.what()), "parse error message is not 'error: ... (...)'", e.what());
    check(std::string_view(e.what()).find("(policy \"") != std::string_view::npos,
          "parse error does not quote the policy");
    return;
  }
  const std::string canon = spec.to_string();
  strata::policy_spec again;
  try {
    again = strata::parse_policy(canon);
  } catch (const std::invalid_argument&) {
    check(false, "the canonical string of a parsed policy does not parse");
  }
  check(again.to_string() == canon, "the canonical string is not its own canonical string");
  check(again.recent == spec.recent && again.k_balance == spec.k_balance,
        "the canonical string loses recent= or k-balance");
  for (const strata::layer_map& m : layer_maps) {
    check(spec.resolve(m) == again.resolve(m), "the canonical string resolves differently");
    try {
      spec.check_every_rule_matches(m);
    } catch (const std::invalid_argument& e) {
      check(well_formed(e.what()), "unmatched-rule message is not 'error: ... (...)'", e.what());
      continue;
    }
    const strata::policy_report r = strata::report(spec, m);
    check(r.bytes(4096, 0) > 0, "a policy report with zero bytes");
  }
}

std::vector<bytes> policy_seeds() {
  std::vector<bytes> s;
  for (const char* p :
       {"q8_0", "-ctk q8_0 -ctv turbo3", "la7", "boundary-v", "la1 -ctk turbo3 -ctv turbo3",
        "v:first2,last2=q8_0;v=turbo2;k=q8_0", "kv:every3+1=f16;k=turbo4;v=vq2;recent=64",
        "k:sliding=bf16;v:global=q4_0;k-balance", "kv:2-5,7=f32;k=turbo2;v=turbo3",
        "--cache-type-k f16 --cache-type-v turbo4 boundary-v-4-4"})
    s.push_back(to_bytes(p));
  return s;
}

}  // namespace strata_fuzz

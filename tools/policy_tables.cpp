// Prints the per-layer policy tables of docs/policies.md: for each example model and preset,
// the K/V codec of every layer, the effective bits per value (strata's block sizes and the
// TurboQuant fork's bit rates) and the KV bytes at 32K tokens.
//   build/bin/strata_policy_tables
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <strata/layer_map.hpp>
#include <strata/policy/parse.hpp>
#include <strata/policy/report.hpp>

namespace {

// The bit rates the fork's published table counts (q8_0 8.5, turbo2 2.5); NaN for codecs it
// gives no rate for, printed as "-".
double fork_bits(strata::codec_id c, std::uint32_t) {
  switch (c) {
    case strata::codec_id::q8_0: return 8.5;
    case strata::codec_id::turbo2: return 2.5;
    case strata::codec_id::f16: return 16;
    default: return std::nan("");
  }
}

struct model {
  const char* name;
  strata::layer_map map;
};

}  // namespace

int main() {
  const std::vector<model> models = {
      {"40-layer dense (8 KV heads x 128, e.g. Qwen3-14B)",
       strata::layer_map::dense(40, 8, 128, 40)},
      {"28-layer dense (4 KV heads x 128, e.g. Qwen2.5-7B)",
       strata::layer_map::dense(28, 4, 128, 28)},
      {"64-layer hybrid (KV on layers 3, 7, ..., 63; 2 KV heads x 256, Qwen3-Next style)",
       strata::layer_map::hybrid(64, 4, 3, 2, 256, 16)},
  };
  const char* policies[] = {
      "f16", "q8_0", "-ctk q8_0 -ctv turbo2", "la7", "boundary-v-4-4", "la1", "la2", "la5", "la6"};
  const std::size_t n_ctx = 32768;
  for (const auto& m : models) {
    std::printf("### %s\n\n", m.name);
    std::printf("| policy | K bits | V bits | K+V bits | V bits (fork rates) | KV MiB at 32K |\n");
    std::printf("|---|---|---|---|---|---|\n");
    for (const char* p : policies) {
      const auto r = strata::report(strata::parse_policy(p), m.map);
      const double fork_v = r.bits_v(fork_bits);
      char fork[16] = "-";
      if (!std::isnan(fork_v)) std::snprintf(fork, sizeof fork, "%.2f", fork_v);
      std::printf("| `%s` | %.3f | %.3f | %.3f | %s | %.1f |\n", p, r.bits_k(), r.bits_v(),
                  r.bits(), fork, double(r.bytes(n_ctx)) / (1 << 20));
    }
    for (const char* p : {"la7", "la1", "la6"})
      std::printf("\nPer layer, `%s`:\n\n%s", p,
                  strata::report(strata::parse_policy(p), m.map).table().c_str());
    std::printf("\n");
  }
}

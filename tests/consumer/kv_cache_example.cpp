// The example in strata/kv_cache.hpp's header comment as a program: a Boundary V cache for a
// 40-layer model with 8 KV heads of 128 values, 64 tokens appended to every layer, one decode
// step of 32 query heads. tests/consumer builds it both ways (header-only and strata::kernels).
#include <cstdio>
#include <vector>

#include <strata/kv_cache.hpp>

int main() {
  using cache = strata::kv_cache<strata::boundary_v<>>;  // Boundary V, K q8_0
  cache c(strata::layer_map::dense(40, 8, 128, 32), {.n_ctx = 8192});
  const std::size_t n = 64, kv = 8 * 128;
  std::vector<float> k(n * kv), v(n * kv), q(32 * 128, 0.5f), out(32 * 128);
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = v[i] = float(i % 17) / 17.0f - 0.5f;
  for (std::size_t layer = 0; layer < 40; ++layer) c.append(layer, 0, k.data(), v.data(), n);
  c.attend(39, q.data(), 1, std::int64_t(n), out.data());
  std::printf("%zu KiB for %zu tokens, out[0] = %.4f\n", c.bytes() / 1024, n, double(out[0]));
  return out[0] == out[0] ? 0 : 1;
}

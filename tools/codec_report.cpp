// strata_codec_report: prints the quality tables of docs/codecs.md (reference codecs, scalar).
//   build-*/bin/strata_codec_report [n_vectors]      (default 20000 vectors of d = 128)
// Sections: per-codec quality on Gaussian vectors; turbo scale rule (norm correction) judged by
// attention outputs; rotations for head dims that are not a power of two.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "../tests/codec/quality.hpp"

using namespace strata;
using namespace strata::quality;

namespace {

template <class C>
void codec_row(const std::vector<float>& x, std::size_t d, double lloyd_max, int index_bits = 0,
               const char* label = nullptr) {
  const auto y = round_trip_rows<C>(x, d);
  const double mse = relative_mse(x, y);
  const auto ip = inner_product_error(x, y, d, 777);
  const double shannon = std::pow(4.0, -C::bits_per_value);
  auto fmt = [](double v) { return v > 0 ? std::to_string(v).substr(0, 5) : std::string(" - "); };
  std::printf("| %-20s | %3zu | %3zu | %6.3f | %.3e | %s | %7.2f | %s | %.2e | %+.2e |\n",
              label ? label : C::name, C::block_bytes, C::block_values, C::bits_per_value, mse,
              fmt(lloyd_max > 0 ? mse / lloyd_max : 0).c_str(), mse / shannon,
              fmt(index_bits ? mse / std::pow(4.0, -index_bits) : 0).c_str(), ip.rms, ip.bias);
}

template <int B>
void scale_rule_rows(const std::vector<float>& x, const attention_problem& p,
                     const std::vector<double>& exact) {
  using C = turbo<B>;
  auto row = [&](const char* rule_name, auto encode) {
    const auto y = round_trip_rows<C, hadamard<>>(x, 128, encode);
    const auto ip = inner_product_error(x, y, 128, 99);
    const auto k = round_trip_rows<C, hadamard<>>(p.k, 128, encode);
    const auto v = round_trip_rows<C, hadamard<>>(p.v, 128, encode);
    const auto kv = compare_attention(exact, attention(p, k, v), 128);
    const auto ko = compare_attention(exact, attention(p, k, p.v), 128);
    const auto vo = compare_attention(exact, attention(p, p.k, v), 128);
    std::printf("| %s | %-14s | %.5f | %+.4f | %.4f | %.5f | %.4f | %.4f |\n", C::name, rule_name,
                relative_mse(x, y), ip.bias, kv.rel_l2, kv.cosine, ko.rel_l2, vo.rel_l2);
  };
  row("plain", encode_with_rule<C, turbo_scale_rule::plain>);
  row("norm_corrected", encode_with_rule<C, turbo_scale_rule::norm_corrected>);
  row("least_squares", encode_with_rule<C, turbo_scale_rule::least_squares>);
  row("unbiased", encode_with_rule<C, turbo_scale_rule::unbiased>);
}

// One row of the scale-search table (docs/codecs.md "Scale search"): Gaussian rows x (d = 256),
// attention problem p with outlier keys; K-only and V-only attention error.
template <class C, class Encode>
void search_row(const char* label, const std::vector<float>& x, const attention_problem& p,
                const std::vector<double>& exact, Encode encode) {
  const std::size_t d = p.d;
  const auto y = round_trip_rows<C, hadamard<>>(x, d, encode);
  const auto ip = inner_product_error(x, y, d, 99);
  const auto k = round_trip_rows<C, hadamard<>>(p.k, d, encode);
  const auto v = round_trip_rows<C, hadamard<>>(p.v, d, encode);
  const auto ko = compare_attention(exact, attention(p, k, p.v), d);
  const auto vo = compare_attention(exact, attention(p, p.k, v), d);
  std::printf("| %-11s | %6.4f | %-26s | %.6f | %.4e | %+.2e | %.5f | %.5f |\n", C::name,
              C::bits_per_value, label, relative_mse(x, y), ip.rms, ip.bias, ko.rel_l2, vo.rel_l2);
}

template <int B, int G>
void search_rows(const std::vector<float>& x, const attention_problem& p,
                 const std::vector<double>& exact) {
  using C = turbo<B, G>;
  using S = turbo_scale_rule;
  using I = turbo_index_rule;
  search_row<C>("norm, norm-corrected (old)", x, p, exact,
                encode_with_rule<C, S::norm_corrected, I::norm>);
  search_row<C>("searched, least squares", x, p, exact,
                encode_with_rule<C, S::least_squares, I::searched>);
  search_row<C>("searched, norm-corrected", x, p, exact,
                encode_with_rule<C, S::norm_corrected, I::searched>);
  search_row<C>("absmax, absmax", x, p, exact, encode_with_rule<C, S::absmax, I::absmax>);
  search_row<C>("absmax, least squares", x, p, exact,
                encode_with_rule<C, S::least_squares, I::absmax>);
}

template <int B> void rotation_rows(std::size_t d, std::size_t n, std::size_t n_out, float factor) {
  const auto g = gaussian_rows(n, d, 5);
  const auto o = outlier_rows(n, d, n_out, factor, 6);
  with_turbo_group<B>(d, [&](auto codec) {
    using C = decltype(codec);
    const double gh = mean_row_relative_mse(g, round_trip_rows<C, hadamard<>>(g, d), d);
    const double oh = mean_row_relative_mse(o, round_trip_rows<C, hadamard<>>(o, d), d);
    const double ob =
        mean_row_relative_mse(o, round_trip_rows<C, block_diagonal_hadamard<>>(o, d), d);
    const double oi = mean_row_relative_mse(o, round_trip_rows<C, identity_rotation>(o, d), d);
    std::printf(
        "| %3zu | %zu at %gx | %s | %3d | %.5f | %.5f (%.2fx) | %.5f (%.2fx) | %.5f (%.2fx) |\n", d,
        n_out, double(factor), C::name, C::group, gh, oh, oh / gh, ob, ob / gh, oi, oi / gh);
  });
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 20000;
  const std::size_t d = 128;
  const auto x = gaussian_rows(n, d, 2024);

  std::printf("## Codecs on %zu Gaussian vectors, d = %zu (turbo: hadamard<> rotation)\n\n", n, d);
  std::printf(
      "| codec | bytes/block | values/block | bits/value | MSE (relative) | / Lloyd-Max "
      "| / Shannon 4^-bpv | / 4^-b (b = index bits) | inner product rel. RMS | inner product bias "
      "|\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  codec_row<f32>(x, d, 0);
  codec_row<f16>(x, d, 0);
  codec_row<bf16>(x, d, 0);
  codec_row<q8_0>(x, d, 0);
  codec_row<q4_0>(x, d, 0);
  codec_row<turbo<4>>(x, d, lloyd_max_codebook<4>::mse, 4);
  codec_row<turbo<3>>(x, d, lloyd_max_codebook<3>::mse, 3);
  codec_row<turbo<2>>(x, d, lloyd_max_codebook<2>::mse, 2);
  codec_row<vq2<128>>(x, d, lloyd_max_codebook<2>::mse, 2, "vq2 (D8 lattice)");
  codec_row<turbo<4, 128, fork_codebook<4>>>(x, d, lloyd_max_codebook<4>::mse, 4,
                                             "turbo4, fork table");
  codec_row<turbo<4, 32>>(x, d, lloyd_max_codebook<4>::mse, 4, "turbo<4, 32>");
  codec_row<turbo<3, 16>>(x, d, lloyd_max_codebook<3>::mse, 3, "turbo<3, 16>");

  const auto p = make_attention(d, 1024, 64, 31);
  const auto exact = attention(p, p.k, p.v);
  std::printf(
      "\n## Turbo scale rule: 1024 keys with outlier channels, 64 peaked queries "
      "(attention entropy %.2f nats of ln(1024) = %.2f)\n\n",
      attention_entropy(p), std::log(1024.0));
  std::printf(
      "| codec | scale rule | MSE (relative) | inner product bias | attention rel. L2 "
      "(K+V) | attention cosine (K+V) | rel. L2 (K only) | rel. L2 (V only) |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  const auto xs = gaussian_rows(4000, d, 77);
  scale_rule_rows<2>(xs, p, exact);
  scale_rule_rows<3>(xs, p, exact);
  scale_rule_rows<4>(xs, p, exact);

  {
    const std::size_t ds = 256;
    const auto ps = make_attention(ds, 1024, 64, 41);
    const auto exact_s = attention(ps, ps.k, ps.v);
    const auto xg = gaussian_rows(n / 5, ds, 78);
    std::printf(
        "\n## Scale search: %zu Gaussian rows of d = %zu; attention: 1024 keys with outlier "
        "channels, 64 peaked queries (entropy %.2f nats)\n\n",
        n / 5, ds, attention_entropy(ps));
    std::printf(
        "| codec | bits/value | indices, scale | MSE (relative) | inner product rel. RMS | inner "
        "product bias | attention rel. L2 (K only) | rel. L2 (V only) |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    search_row<q4_0r>(
        "absmax (q4_0 rule)", xg, ps, exact_s,
        [](const float* a, std::size_t m, void* o) { reference::encode<q4_0r>(a, m, o); });
    search_rows<2, 32>(xg, ps, exact_s);
    search_rows<2, 64>(xg, ps, exact_s);
    search_rows<2, 128>(xg, ps, exact_s);
    search_rows<3, 32>(xg, ps, exact_s);
    search_rows<3, 64>(xg, ps, exact_s);
    search_rows<3, 128>(xg, ps, exact_s);
    search_rows<4, 32>(xg, ps, exact_s);
    search_rows<4, 64>(xg, ps, exact_s);
    search_rows<4, 128>(xg, ps, exact_s);
    search_rows<4, 256>(xg, ps, exact_s);
    search_rows<5, 32>(xg, ps, exact_s);
    search_rows<5, 64>(xg, ps, exact_s);
    search_rows<5, 128>(xg, ps, exact_s);
  }

  std::printf("\n## Rotations for head dims: outlier channels, %zu vectors each\n\n", n / 4);
  std::printf(
      "| d | outlier channels | codec | group | Gaussian, hadamard | outliers, hadamard "
      "(overlapping) | "
      "outliers, block-diagonal | outliers, no rotation |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (std::size_t dd : {64, 128, 80, 96, 192, 576}) {
    rotation_rows<3>(dd, n / 4, 4, 20.0f);
    rotation_rows<3>(dd, n / 4, 1, 50.0f);
    rotation_rows<3>(dd, n / 4, dd / 8, 5.0f);
  }
  return 0;
}

#include "run/perplexity.hpp"

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <memory>

#include "error.hpp"
#include "io/kld_base.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"

namespace engine {

namespace {

void progress_line(int done, int total, double elapsed) {
  const double eta = done > 0 ? elapsed / done * (total - done) : 0.0;
  const int width = 30;
  const int fill = total > 0 ? done * width / total : width;
  std::fprintf(stderr, "\r[%.*s%*s] %d/%d chunks, %.1f s, ETA %d:%02d   ", fill,
               "==============================", width - fill, "", done, total, elapsed,
               int(eta) / 60, int(eta) % 60);
  std::fflush(stderr);
}

}  // namespace

void log_softmax(const float* logits, int n, float* out) {
  float mx = logits[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += std::exp(double(logits[i]) - mx);
  const double lse = double(mx) + std::log(sum);
  for (int i = 0; i < n; ++i) out[i] = float(double(logits[i]) - lse);
}

perplexity_result run_perplexity(model& m, const std::vector<int32_t>& tokens,
                                 const std::function<std::unique_ptr<kv_store>(int)>& make_cache,
                                 thread_pool& pool, const perplexity_options& opt) {
  const int n_ctx = opt.n_ctx;
  const int n_vocab = m.config().n_vocab;
  if (n_ctx < 8)
    throw make_error("context " + std::to_string(n_ctx) + " is too small (>= 8)", "perplexity");
  const int max_chunks = int(tokens.size() / size_t(n_ctx));
  if (max_chunks < 1)
    throw make_error("the text has " + std::to_string(tokens.size()) +
                         " tokens, fewer than 2 x n_ctx/2 = " + std::to_string(n_ctx) +
                         "; use a smaller -c or a longer file",
                     "perplexity");
  const int n_chunks = opt.n_chunks < 0 ? max_chunks : std::min(opt.n_chunks, max_chunks);
  const int first = n_ctx / 2;
  const int n_scored_per_chunk = n_ctx - 1 - first;

  // KL divergence files (io/kld_base.hpp).
  const kld_shape shape{uint32_t(n_ctx), uint32_t(n_vocab), uint32_t(first)};
  std::unique_ptr<kld_base_writer> base_out;
  std::unique_ptr<kld_base_reader> base_in;
  if (!opt.kld_base_out.empty())
    base_out =
        std::make_unique<kld_base_writer>(opt.kld_base_out, shape, uint32_t(n_chunks), tokens);
  if (!opt.kld_base_in.empty())
    base_in = std::make_unique<kld_base_reader>(opt.kld_base_in, shape, uint32_t(n_chunks), tokens);

  perplexity_result r;
  r.n_chunks = n_chunks;
  r.has_kld = base_in != nullptr;
  auto cache = make_cache(n_ctx);
  std::vector<int32_t> window(static_cast<size_t>(n_ctx));
  std::vector<float> logits(size_t(n_ctx) * n_vocab);
  std::vector<float> lp(static_cast<size_t>(n_vocab)), base_lp(static_cast<size_t>(n_vocab));
  double nll = 0, nll2 = 0;
  double kld = 0, kld2 = 0, agree = 0, base_nll = 0;
  int64_t count = 0;
  const double t0 = cli::now_s();
  const bool show = opt.progress && isatty(fileno(stderr));
  for (int c = 0; c < n_chunks; ++c) {
    std::copy(tokens.begin() + long(size_t(c) * n_ctx),
              tokens.begin() + long(size_t(c + 1) * n_ctx), window.begin());
    if (opt.add_bos && opt.bos >= 0) window[0] = opt.bos;
    cache->truncate(0);
    // Logits of positions first..n_ctx-2 predict tokens first+1..n_ctx-1.
    const int n_logits = n_ctx - first;
    m.forward(window, 0, *cache, pool, logits.data(), n_logits, opt.fwd);
    for (int j = 0; j < n_scored_per_chunk; ++j) {
      const float* row = logits.data() + size_t(j) * n_vocab;
      const int32_t next = tokens[size_t(c) * n_ctx + size_t(first + j + 1)];
      log_softmax(row, n_vocab, lp.data());
      const double v = -double(lp[size_t(next)]);
      nll += v;
      nll2 += v * v;
      ++count;
      if (base_out) base_out->row(lp.data());
      if (base_in) {
        base_in->row(base_lp.data(), c + 1, first + j);
        double k = 0.0;
        int32_t a0 = 0, a1 = 0;
        for (int i = 0; i < n_vocab; ++i) {
          const double pb = std::exp(double(base_lp[size_t(i)]));
          k += pb * (double(base_lp[size_t(i)]) - double(lp[size_t(i)]));
          if (base_lp[size_t(i)] > base_lp[size_t(a0)]) a0 = i;
          if (lp[size_t(i)] > lp[size_t(a1)]) a1 = i;
        }
        k = std::max(k, 0.0);
        kld += k;
        kld2 += k * k;
        agree += a0 == a1;
        base_nll -= double(base_lp[size_t(next)]);
      }
    }
    const double running = std::exp(nll / double(count));
    r.chunk_ppl.push_back(running);
    if (opt.out) {
      if (show) std::fprintf(stderr, "\r%*s\r", 80, "");
      std::fprintf(opt.out, "[%d]%.4f,", c + 1, running);
      if ((c + 1) % 8 == 0 || c + 1 == n_chunks) std::fprintf(opt.out, "\n");
      std::fflush(opt.out);
    }
    if (show) progress_line(c + 1, n_chunks, cli::now_s() - t0);
  }
  if (show) std::fprintf(stderr, "\r%*s\r", 80, "");
  if (base_out) base_out->finish();
  if (base_in) base_in->finish();
  r.seconds = cli::now_s() - t0;
  r.n_scored = count;
  const double mean = nll / double(count);
  r.ppl = std::exp(mean);
  double var = nll2 / double(count) - mean * mean;
  r.ppl_err = (var > 0 && count > 1) ? std::sqrt(var / double(count - 1)) * r.ppl : 0.0;
  if (r.has_kld) {
    const double n = double(count);
    r.kld_mean = kld / n;
    const double kv = kld2 / n - r.kld_mean * r.kld_mean;
    r.kld_err = (kv > 0 && count > 1) ? std::sqrt(kv / (n - 1)) : 0.0;
    r.top1 = agree / n;
    r.top1_err = std::sqrt(r.top1 * (1.0 - r.top1) / std::max(1.0, n - 1));
    r.base_ppl = std::exp(base_nll / n);
  }
  return r;
}

}  // namespace engine

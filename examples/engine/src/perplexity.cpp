#include "perplexity.hpp"

#include <algorithm>
#include <bit>
#include <memory>
#include <cmath>
#include <cstring>
#include <unistd.h>

#include <strata/cache/state_file.hpp>

#include "cli.hpp"
#include "error.hpp"
#include "quant.hpp"
#include "thread_pool.hpp"

namespace engine {

namespace {

// KL-divergence base file, version 2 (little-endian; written through strata::atomic_file and
// the checksummed stream of the KV state files):
//   "SKLD", u32 version, u32 n_ctx, u32 n_vocab, u32 n_chunks, u32 first (first scored position)
//   i32 tokens [n_chunks][n_ctx]
//   f16 log-probs [n_chunks][n_ctx - 1 - first][n_vocab]   (finite, <= 0)
//   u64 FNV-1a 64 of every byte before it
// The reader compares the header's sizes with the file's size before it allocates anything.
constexpr char kMagic[4] = {'S', 'K', 'L', 'D'};
static_assert(std::endian::native == std::endian::little, "the base file's rows are written as in memory");
constexpr uint32_t kVersion = 2;
constexpr uint64_t kHeaderBytes = 24;

uint64_t base_file_bytes(uint64_t n_ctx, uint64_t n_vocab, uint64_t n_chunks, uint64_t first) {
  return kHeaderBytes + n_chunks * n_ctx * 4 + n_chunks * (n_ctx - 1 - first) * n_vocab * 2 + 8;
}

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
  if (n_ctx < 8) throw make_error("context " + std::to_string(n_ctx) + " is too small (>= 8)", "perplexity");
  const int max_chunks = int(tokens.size() / size_t(n_ctx));
  if (max_chunks < 1)
    throw make_error("the text has " + std::to_string(tokens.size()) + " tokens, fewer than 2 x n_ctx/2 = " +
                         std::to_string(n_ctx) + "; use a smaller -c or a longer file",
                     "perplexity");
  const int n_chunks = opt.n_chunks < 0 ? max_chunks : std::min(opt.n_chunks, max_chunks);
  const int first = n_ctx / 2;
  const int n_scored_per_chunk = n_ctx - 1 - first;

  // KL divergence files.
  std::unique_ptr<strata::detail::state_writer> base_out;
  std::unique_ptr<strata::detail::state_reader> base_in;
  uint32_t base_chunks = 0;
  if (!opt.kld_base_out.empty()) {
    base_out = std::make_unique<strata::detail::state_writer>(opt.kld_base_out);
    base_out->bytes(kMagic, 4);
    base_out->le(kVersion);
    base_out->le(uint32_t(n_ctx));
    base_out->le(uint32_t(n_vocab));
    base_out->le(uint32_t(n_chunks));
    base_out->le(uint32_t(first));
    base_out->bytes(tokens.data(), size_t(n_chunks) * n_ctx * sizeof(int32_t));
  }
  if (!opt.kld_base_in.empty()) {
    const std::string& path = opt.kld_base_in;
    base_in = std::make_unique<strata::detail::state_reader>(path);
    auto& in = *base_in;
    if (in.size() < kHeaderBytes + 8)
      throw make_error("not a strata KL-divergence base file (" + std::to_string(in.size()) +
                           " bytes, shorter than its header)",
                       path);
    char magic[4];
    in.bytes(magic, 4);
    if (std::memcmp(magic, kMagic, 4) != 0)
      throw make_error("not a strata KL-divergence base file (magic)", path);
    const auto version = in.le<uint32_t>();
    if (version != kVersion)
      throw make_error("KL-divergence base file version " + std::to_string(version) +
                           ", this strata reads version " + std::to_string(kVersion) +
                           " (save the base again)",
                       path);
    const uint32_t h_ctx = in.le<uint32_t>(), h_vocab = in.le<uint32_t>();
    base_chunks = in.le<uint32_t>();
    const uint32_t h_first = in.le<uint32_t>();
    auto differs = [&](const char* field, uint64_t saved, uint64_t now) {
      if (saved != now)
        throw make_error(std::string(field) + " differs: the base was saved with " +
                             std::to_string(saved) + ", this run has " + std::to_string(now),
                         path);
    };
    differs("n_ctx (-c)", h_ctx, uint64_t(n_ctx));
    differs("n_vocab (the model's vocabulary)", h_vocab, uint64_t(n_vocab));
    differs("first scored position", h_first, uint64_t(first));
    if (base_chunks < uint32_t(n_chunks))
      throw make_error("the base has " + std::to_string(base_chunks) + " chunks, this run needs " +
                           std::to_string(n_chunks) + " (use --chunks)",
                       path);
    const uint64_t want = base_file_bytes(h_ctx, h_vocab, base_chunks, h_first);
    if (in.size() != want)
      throw make_error("the header's sizes (" + std::to_string(base_chunks) + " chunks of " +
                           std::to_string(h_ctx) + " tokens, " + std::to_string(h_vocab) +
                           " log-probs each) need " + std::to_string(want) +
                           " bytes, the file has " + std::to_string(in.size()),
                       path);
    std::vector<int32_t> saved(size_t(base_chunks) * n_ctx);  // the size matches the file's
    in.bytes(saved.data(), saved.size() * sizeof(int32_t));
    for (size_t i = 0; i < size_t(n_chunks) * n_ctx; ++i) {
      const int32_t t = saved[i];
      if (t != tokens[i])
        throw make_error("token " + std::to_string(i) + " differs: the base has " + std::to_string(t) +
                             ", this run " + std::to_string(tokens[i]) +
                             " (another text or tokenizer)",
                         path);
    }
  }

  perplexity_result r;
  r.n_chunks = n_chunks;
  r.has_kld = base_in != nullptr;
  auto cache = make_cache(n_ctx);
  std::vector<int32_t> window(static_cast<size_t>(n_ctx));
  std::vector<float> logits(size_t(n_ctx) * n_vocab);
  std::vector<float> lp(static_cast<size_t>(n_vocab)), base_lp(static_cast<size_t>(n_vocab));
  std::vector<uint16_t> half(static_cast<size_t>(n_vocab));
  double nll = 0, nll2 = 0;
  double kld = 0, kld2 = 0, agree = 0, base_nll = 0;
  int64_t count = 0;
  const double t0 = cli::now_s();
  const bool show = opt.progress && isatty(fileno(stderr));
  for (int c = 0; c < n_chunks; ++c) {
    std::copy(tokens.begin() + long(size_t(c) * n_ctx), tokens.begin() + long(size_t(c + 1) * n_ctx),
              window.begin());
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
      if (base_out) {
        // Clamped to f16's finite range: a log-prob below -65504 is stored as -65504.
        for (int i = 0; i < n_vocab; ++i)
          half[size_t(i)] = float_to_half(std::clamp(lp[size_t(i)], -65504.0f, 0.0f));
        base_out->bytes(half.data(), half.size() * 2);
      }
      if (base_in) {
        base_in->bytes(half.data(), half.size() * 2);
        double k = 0.0;
        int32_t a0 = 0, a1 = 0;
        for (int i = 0; i < n_vocab; ++i) {
          base_lp[size_t(i)] = half_to_float(half[size_t(i)]);
          if (!std::isfinite(base_lp[size_t(i)]) || base_lp[size_t(i)] > 1e-3f)
            throw make_error("log-prob " + std::to_string(base_lp[size_t(i)]) + " of token " +
                                 std::to_string(i) + " at chunk " + std::to_string(c + 1) +
                                 ", position " + std::to_string(first + j) +
                                 " is not a finite value <= 0 (a damaged base file)",
                             opt.kld_base_in);
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
  if (base_in) {  // the chunks this run did not use still count for the checksum
    for (int64_t i = int64_t(n_chunks) * n_scored_per_chunk; i < int64_t(base_chunks) * n_scored_per_chunk; ++i)
      base_in->bytes(half.data(), half.size() * 2);
    base_in->finish();
  }
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

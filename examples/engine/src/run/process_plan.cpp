#include "run/process_plan.hpp"

#include <malloc.h>

#include <algorithm>
#include <thread>

#include <strata/plan.hpp>
#include <strata/policy/parse.hpp>
#include <strata/policy/report.hpp>

#include "model/model.hpp"
#include "run/cli.hpp"

namespace engine {

namespace {

constexpr uint64_t kPage = 4096;

uint64_t pages(uint64_t bytes) { return (bytes + kPage - 1) / kPage * kPage; }

// A heap block as glibc gives it: the size rounded up with its 16-byte header (large blocks are
// mapped whole pages).
uint64_t heap_block(uint64_t bytes) { return bytes == 0 ? 0 : pages(bytes + 16); }

strata::plan_options plan_options_of(const kv_options& kv, const process_shape& s) {
  return {.max_batch = size_t(std::max(0, kv.max_batch)),
          .n_seq = size_t(std::max(1, s.n_seq)),
          .n_threads = size_t(std::max(1, s.threads))};
}

std::string str(int64_t v) { return std::to_string(v); }

}  // namespace

uint64_t activation_bytes(const model& m, int n_batch) {
  const model_config& c = m.config();
  const uint64_t t = uint64_t(std::max(1, n_batch)) * 4;
  // model::run_batch's x, xb, q, k, v, att, o, gate, up (model/model.hpp).
  uint64_t b = 3 * heap_block(t * uint64_t(c.n_embd));
  for (int dim : {c.q_dim(), c.k_dim(), c.v_dim(), c.n_head * c.head_v, c.n_ff, c.n_ff})
    b += heap_block(t * uint64_t(dim));
  return b;
}

uint64_t matmul_scratch_bytes(const model& m, int n_batch) {
  const model_config& c = m.config();
  const uint64_t n_in = uint64_t(std::max({c.n_embd, c.n_ff, c.n_head * c.head_v}));
  const uint64_t nb = n_in / 32, t = uint64_t(std::max(1, n_batch));
  // q (2 int8 planes), d (a float per block), sum16 (2 floats per block); for batches over 8,
  // token-major copies of d and sum16.
  uint64_t b = heap_block(2 * n_in * t) + heap_block(4 * nb * t) + heap_block(8 * nb * t);
  if (t > 8) b += heap_block(4 * nb * t) + heap_block(8 * nb * t);
  return b;
}

uint64_t resident_rest(const cli::loaded_model& lm, uint64_t input_bytes) {
  const resident_set now = process_rss();
  const uint64_t mapped = mapping_rss(lm.file->base());
  // The heap's free space (resident, and reused by the buffers below before the heap grows).
  const uint64_t free_heap = mallinfo2().fordblks;
  const uint64_t known =
      mapped + lm.model_tables_bytes + lm.tokenizer_bytes + input_bytes + free_heap;
  return now.now > known ? now.now - known : 0;
}

memory_plan process_plan(const cli::loaded_model& lm, const kv_options& kv,
                         const process_shape& s) {
  const model& m = *lm.net;
  const model_config& c = m.config();
  memory_plan p;
  const uint64_t rest = s.resident_rest ? s.resident_rest : resident_rest(lm, s.input_bytes);
  p.add("program, libraries and start-up heap (resident now)", rest);
  p.add("code and data first touched while running (kernels; measured: bench/rss_plan.sh)",
        kLateCodeBytes);
  p.add("GGUF metadata and model f32 tables (measured at load)", lm.model_tables_bytes);
  if (lm.tok) p.add("tokenizer tables (measured at load)", lm.tokenizer_bytes);
  p.add("weights (mapped file, " + str(int64_t(m.file().tensors().size())) + " tensors)",
        pages(lm.file->file_size()));

  const int batch = s.n_ctx > 0 ? std::min(s.n_batch, s.n_ctx) : s.n_batch;
  if (s.n_ctx > 0) {
    const uint64_t one = kv_bytes(m, s.n_ctx, kv);
    p.add("KV cache (" + kv.policy_string() + (kv.reference ? ", f32 reference" : "") + ", " +
              str(s.n_seq) + " x " + str(s.n_ctx) + " tokens)",
          uint64_t(s.n_seq) * one);
    if (!kv.reference) {
      const auto rep = strata::report(strata::parse_policy(kv.policy_string()), m.layers());
      const strata::kv_plan kp = strata::plan(rep, size_t(s.n_ctx), plan_options_of(kv, s));
      if (kp.side) p.add("KV side data (K means, balance scales)", kp.side);
      p.add("attention scratch (" + str(s.threads) + " threads)", kp.scratch);
    }
  }
  p.add("activations (" + str(batch) + " tokens: residual, norms, Q/K/V, attention, FFN)",
        activation_bytes(m, batch));
  p.add("matmul scratch (quantized activations of " + str(batch) + " tokens)",
        matmul_scratch_bytes(m, batch));
  if (s.logits_rows > 0)
    p.add("logits (" + str(s.logits_rows) + " x " + str(c.n_vocab) + " f32)",
          heap_block(uint64_t(s.logits_rows) * uint64_t(c.n_vocab) * 4));
  if (s.decode_rows > 0)
    p.add("decode logits (" + str(s.decode_rows) + " x " + str(c.n_vocab) + " f32)",
          heap_block(uint64_t(s.decode_rows) * uint64_t(c.n_vocab) * 4));
  if (s.logprob_rows > 0)
    p.add("log-probs (" + str(s.logprob_rows) + " x " + str(c.n_vocab) + " f32)",
          uint64_t(s.logprob_rows) * heap_block(uint64_t(c.n_vocab) * 4));
  if (s.samplers > 0)
    p.add("sampler candidates (" + str(s.samplers) + " x " + str(c.n_vocab) + " x 8 bytes)",
          uint64_t(s.samplers) * heap_block(uint64_t(c.n_vocab) * 8));
  const int threads = std::max(0, s.threads - 1) + s.other_threads;
  if (threads > 0) {
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    const int arenas = std::min(threads, 8 * cores);
    p.add("threads (" + str(threads) + " stacks, " + str(arenas) + " allocator arenas)",
          uint64_t(threads) * kThreadStackBytes + uint64_t(arenas) * kArenaBytes);
  }
  if (s.input_bytes > 0) p.add(s.input_what, s.input_bytes);
  return p;
}

int auto_context(const cli::loaded_model& lm, const kv_options& kv, process_shape s,
                 uint64_t budget, int limit) {
  s.n_ctx = 0;
  const uint64_t fixed = process_plan(lm, kv, s).total();
  if (budget <= fixed) return 0;
  const auto rep = strata::report(strata::parse_policy(kv.policy_string()), lm.net->layers());
  return int(strata::largest_context(rep, size_t(budget - fixed), plan_options_of(kv, s),
                                     size_t(std::max(1, limit))));
}

}  // namespace engine

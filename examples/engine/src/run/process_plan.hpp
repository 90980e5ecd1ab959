// engine::process_plan -- the memory of the whole process for one run of a tool, one line per
// buffer, before the big ones are allocated: what is resident when the plan is made (program and
// libraries, the parsed metadata, the tokenizer's tables: measured), the weights (the mapped file,
// counted whole: a run reads every tensor), and what the run will add (the KV caches with their
// side data and attention scratch, activations, matmul scratch, logits, thread stacks, the tool's
// inputs). `--mem-plan` prints it (chat, perplexity, server); `--mem GiB` is compared with its
// total; bench/rss_plan.sh compares the total with the peak RSS the run then reaches.
//
//   engine::process_shape s{.n_ctx = 4096, .n_batch = fwd.n_batch, .threads = pool.size()};
//   engine::memory_plan p = engine::process_plan(lm, kv, s);
//   std::puts(p.describe().c_str());
#pragma once

#include <cstdint>
#include <string>

#include "kv/kv_select.hpp"
#include "run/memory_plan.hpp"

namespace engine {

namespace cli {
struct loaded_model;
}

struct process_shape {
  int n_ctx = 0;                // tokens per KV cache
  int n_seq = 1;                // KV caches (strata-server: one per slot)
  int n_batch = 512;            // tokens per forward batch (forward_options::n_batch)
  int64_t logits_rows = 1;      // rows of logits the tool holds (perplexity: the window)
  int decode_rows = 0;          // items per model::decode step (server: the slots); their logits
  int64_t logprob_rows = 0;     // rows of n_vocab log-probs (perplexity: its own and the base's)
  int samplers = 1;             // samplers (one per slot), each with n_vocab candidates
  int threads = 1;              // forward-pass threads, the caller included (thread_pool::size())
  int other_threads = 0;        // threads beside the pool (server: HTTP workers, scheduler, ...)
  uint64_t input_bytes = 0;     // the tool's own data (perplexity: the text and its token ids)
  std::string input_what = {};  // its line's name
  // The first line, measured by resident_rest (0: measured when the plan is made). A tool
  // measures it once so that -c auto and the plan it checks afterwards agree to the byte.
  uint64_t resident_rest = 0;
};

// The resident set now without the weights' pages, the tables measured at load, the tool's
// inputs and the heap's free space (which the buffers allocated next reuse): the program,
// its libraries and what the start-up left on the heap.
uint64_t resident_rest(const cli::loaded_model& lm, uint64_t input_bytes);

// What a thread adds to the resident set beside its buffers: the stack pages it touches, and
// for each of the allocator's per-thread arenas (glibc makes at most 8 per core) the heap it
// keeps (measured: bench/server_capacity.py, bench/rss_plan.sh).
inline constexpr uint64_t kThreadStackBytes = 64 * 1024;
inline constexpr uint64_t kArenaBytes = 256 * 1024;
// Pages of the program (kernels, tables) that a run touches only after the plan is made.
inline constexpr uint64_t kLateCodeBytes = 512 * 1024;

// Bytes of model::run_batch's activation buffers for a batch of n_batch tokens.
uint64_t activation_bytes(const model& m, int n_batch);

// Bytes of the quantized activations one matmul caller keeps for a batch of n_batch tokens
// (model/matmul.cpp: two int8 planes, the block scales and sums, their token-major copies).
uint64_t matmul_scratch_bytes(const model& m, int n_batch);

// The plan, measured and computed now (call it after the model is loaded, before the caches).
// s.n_ctx 0: no KV lines (the rest of the process, as -c auto starts from).
memory_plan process_plan(const cli::loaded_model& lm, const kv_options& kv, const process_shape& s);

// -c auto: the largest context per cache (at most `limit`) whose s.n_seq KV caches, with their
// side data and s.threads threads' attention scratch (strata::plan), fit in `budget` bytes beside
// the rest of process_plan(lm, kv, s); 0 when not even one token does. s.n_ctx is ignored.
int auto_context(const cli::loaded_model& lm, const kv_options& kv, process_shape s,
                 uint64_t budget, int limit);

}  // namespace engine

// engine::cli -- command-line helpers shared by the tools: a flag reader with llama.cpp-style
// names, the flag table of a tool with the flags several tools share (parsed and described here
// once), loading a model with its tokenizer, and the default model path.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/gguf.hpp"
#include "kv/kv_select.hpp"
#include "model/model.hpp"
#include "run/memory_plan.hpp"
#include "run/process_plan.hpp"
#include "run/sampler.hpp"
#include "text/tokenizer.hpp"

namespace engine {
class thread_pool;
}

namespace engine::cli {

// Walks argv (flags::parse below uses it; a flag's own parser gets it): `while (a.next()) {
// if (a.is("-m", "--model")) path = a.str(); ... else a.unknown(); }` Every problem throws
// engine::error "error: <what> (<tool>)".
class args {
 public:
  args(int argc, char** argv, std::string tool);
  bool next();  // advances to the next flag
  bool is(std::string_view a, std::string_view b = {}) const;
  const std::string& flag() const { return flag_; }
  std::string str();                                      // the flag's value
  int64_t integer(int64_t lo, int64_t hi);                // an integer value within [lo, hi]
  double real(double lo, double hi);                      // a number within [lo, hi]
  std::vector<int64_t> int_list(int64_t lo, int64_t hi);  // "0,512,4096"
  std::vector<std::string> str_list();                    // "f16,turbo3"
  [[noreturn]] void unknown() const;
  [[noreturn]] void fail(const std::string& what) const;
  const std::string& tool() const { return tool_; }

 private:
  std::vector<std::string> argv_;
  std::string tool_;
  size_t i_ = 0;
  std::string flag_;
};

// The tools' flags: one table per tool, each flag with its names, value, help text and action.
// parse() walks argv once and --help prints the table, so a flag's help line is written once and
// shows the range its parser checks. The flags several tools share are added by the functions
// below (written once, here); each tool adds its own flags in between.
class flags {
 public:
  // `usage`: the first line of --help; `epilog`: text printed after the flags.
  flags(std::string tool, std::string usage, std::string epilog = {});

  // In a help text, "{range}" stands for "[lo, hi]" as the flag's error message writes it (and
  // "{codecs}" for the standard codecs' names); "\n" starts a continuation line.
  void on(std::vector<std::string> names, std::string help, std::function<void()> act);
  void text(std::vector<std::string> names, std::string value, std::string help,
            std::function<void(std::string)> act);
  void integer(std::vector<std::string> names, std::string value, std::string help, int64_t lo,
               int64_t hi, std::function<void(int64_t)> act);
  void real(std::vector<std::string> names, std::string value, std::string help, double lo,
            double hi, std::function<void(double)> act);
  void int_list(std::vector<std::string> names, std::string value, std::string help, int64_t lo,
                int64_t hi, std::function<void(std::vector<int64_t>)> act);
  // A value the tool parses itself (args::str, str_list, fail ...).
  void custom(std::vector<std::string> names, std::string value, std::string help,
              std::function<void(args&)> act);

  // Reads argv; false when -h/--help printed the usage (the tool then exits 0). Every problem
  // throws engine::error "error: <what> (<tool>)" naming the flag.
  bool parse(int argc, char** argv);
  std::string usage() const;
  [[noreturn]] void fail(const std::string& what) const;
  const std::string& tool() const { return tool_; }

 private:
  struct entry {
    std::vector<std::string> names;
    std::string value, help;
    std::function<void(args&)> act;
  };
  void add(std::vector<std::string> names, std::string value, std::string help,
           std::function<void(args&)> act);
  std::string tool_, usage_, epilog_;
  std::vector<entry> entries_;
};

// ---- the shared flags ----------------------------------------------------------------------
// Each binds a flag to the tool's variable; the default shown in --help is the variable's value
// when the flag is added (set the tool's default first).
struct loaded_model;
void model_flag(flags& f, std::string& path);                           // -m, --model FILE
void threads_flag(flags& f, int& threads);                              // -t, --threads N
void ctx_flag(flags& f, int& n_ctx, int lo, int hi, std::string what);  // -c, --ctx-size N

// -c N|auto and --mem GiB, as strata-chat and strata-server read them: a context in tokens, in
// [16, 4194304], or "auto" (the largest that fits the budget, engine::auto_context); --mem is the
// memory of the whole process in GiB (every tool that takes it means the same).
struct context_request {
  int n_ctx = 4096;         // -c N (the tool's default until given)
  bool automatic = false;   // -c auto
  double mem_gib = 0;       // --mem (0: what the machine has available)
  bool print_plan = false;  // --mem-plan
};
// -c/--ctx-size N|auto; `what` starts its help ("context (KV cache) size in tokens").
void context_flag(flags& f, context_request& c, const std::string& what);
// --mem GiB alone (strata-plan), with its help text; every tool refuses a bad value alike.
void mem_flag(flags& f, double& mem_gib, const std::string& help);
// --mem GiB (the budget of -c auto and of the refusal) and --mem-plan (print the plan, exit).
void mem_flags(flags& f, context_request& c);
// The budget a plan of the whole process is checked against: --mem, else what the machine has
// available (engine::available_memory, which counts nothing this process already holds).
memory_available budget_of(const context_request& c);
// -c auto: the largest context (at most the model's trained one) whose caches fit the budget
// with the rest of the process (engine::auto_context; s.n_ctx is ignored); fails naming the
// budget and the numbers when not even 16 tokens per cache fit. Prints the choice on stderr.
int auto_context_or_fail(const flags& f, const loaded_model& lm, const kv_options& kv,
                         const process_shape& s, const context_request& c);
// Refuses (engine::error with every line) a plan of the whole process beyond the budget: --mem,
// else the available memory beside what this process holds now.
void require_fits(const memory_plan& p, const std::string& tool, const context_request& c);
// --mem-plan: the plan on stdout (a line per buffer with its bytes, the total, the budget).
void print_plan(const memory_plan& p, const std::string& tool, const context_request& c);
void batch_flag(flags& f, forward_options& fwd);                      // -b, --batch-size N
void cache_type_flags(flags& f, kv_options& kv);                      // -ctk, -ctv
void kv_policy_flag(flags& f, kv_options& kv);                        // --kv-policy (one)
void kv_policies_flag(flags& f, std::vector<std::string>& policies);  // --kv-policy (each)
// --kv-policy auto, auto:bits=X, auto:kld=Y (run/auto_policy.hpp): true for any policy string
// that starts with "auto" (the flags above refuse malformed ones).
bool is_auto_policy(const std::string& policy);

// --seed N: help "<what>, in [0, ...] (<default_text>)".
void seed_flag(flags& f, uint64_t& seed, std::string what, std::string default_text);
void sampling_flags(flags& f, sampler_params& sp);  // --temp --top-k --top-p
// --exact (with kv: an f32 reference KV cache too) and --q8-act.
void activation_flags(flags& f, forward_options& fwd, kv_options* kv = nullptr);

// --profile (where each token's time goes: model/profile.hpp) and --profile-layers (per layer).
void profile_flags(flags& f, bool& on, bool& per_layer);
// After a run with --profile: the table (per layer on request) and its JSON line on stderr,
// with the wall time the tool measured itself beside the profile's own.
void print_profile(const profile& p, bool per_layer, double measured_s);

// Runs a tool's body: an exception is printed as "error: ..." on stderr and gives status 1.
int run_tool(const std::function<int()>& body);

// ~/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf ($STRATA_CACHE_DIR overrides the
// cache directory).
std::string default_model_path();

// A model with its file and tokenizer, and the time loading took.
struct loaded_model {
  std::shared_ptr<const gguf> file;
  std::unique_ptr<model> net;
  std::unique_ptr<tokenizer> tok;  // null when the file has no vocabulary and none was asked
  double load_ms = 0;
  // Anonymous memory (RssAnon) that loading added: the parsed metadata with the model's f32
  // tables, and the tokenizer's tables (engine::process_plan lists them).
  uint64_t model_tables_bytes = 0, tokenizer_bytes = 0;
};
loaded_model load(const std::string& path, bool need_tokenizer);

// When kv.policy is an auto policy: replaces it with the chosen policy string for a cache of
// n_ctx tokens (tuning the model on the calibration text once, then loading the cached result)
// and prints the choice on stderr. Other policies are left as they are.
void resolve_auto_policy(kv_options& kv, const loaded_model& lm, const std::string& model_path,
                         int n_ctx, thread_pool& pool);

// Reads a whole file (error naming it when it cannot). Only regular files are read (a
// directory, FIFO or device is refused before it is opened, so nothing hangs or reads forever),
// and only up to max_bytes (default 1 GiB): a larger file is an error with both sizes.
inline constexpr uint64_t read_file_limit = uint64_t(1) << 30;
std::string read_file(const std::string& path, uint64_t max_bytes = read_file_limit);

// Refuses (error naming both) an output path that is one of the run's inputs: the same file by
// device and inode, so "./m.gguf", a hard link or a symlink to it are caught too. Call it before
// anything is opened for writing.
void refuse_output_over_inputs(const std::string& output, const std::string& output_flag,
                               const std::vector<std::pair<std::string, std::string>>& inputs);

// Warnings on stderr (the run goes on): -t above the cores this process may use, and a context
// above the model's trained context (n_ctx_train). threads 0 means "all cores" (no warning).
void warn_sizes(int threads, int n_ctx, const model_config& c);

// Prints a tool's --help text to stdout with "{codecs}" replaced by the names of the standard
// codecs (strata::standard_codecs), so that no help text lists them by hand.
void print_usage(std::string_view usage);

// SIGINT and SIGTERM remove the temporary files of unfinished outputs (strata::atomic_file)
// and end the process with the conventional status (128 + signal). args' constructor installs it.
void install_signal_cleanup();

// Monotonic seconds.
inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// "12.3 MiB"
std::string human_bytes(double bytes);

// The KV caches a multi-policy tool runs: `base` alone when no --kv-policy was given, else one
// per policy string (each on top of `base`). Names go to `names`, in the same order.
void expand_kv_policies(const kv_options& base, const std::vector<std::string>& policies,
                        std::vector<kv_options>& caches, std::vector<std::string>& names);

}  // namespace engine::cli

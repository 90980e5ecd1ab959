// engine::cli -- command-line helpers shared by the tools: a flag reader with llama.cpp-style
// names, loading a model with its tokenizer, and the default model path.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/gguf.hpp"
#include "kv/kv_select.hpp"
#include "model/model.hpp"
#include "text/tokenizer.hpp"

namespace engine::cli {

// Walks argv: `while (a.next()) { if (a.is("-m", "--model")) path = a.str(); ... else a.unknown();
// }` Every problem throws engine::error "error: <what> (<tool>)".
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

// ~/.cache/strata/models/SmolLM2-135M-Instruct.Q4_1.gguf ($STRATA_CACHE_DIR overrides the
// cache directory).
std::string default_model_path();

// A model with its file and tokenizer, and the time loading took.
struct loaded_model {
  std::shared_ptr<const gguf> file;
  std::unique_ptr<model> net;
  std::unique_ptr<tokenizer> tok;  // null when the file has no vocabulary and none was asked
  double load_ms = 0;
};
loaded_model load(const std::string& path, bool need_tokenizer);

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

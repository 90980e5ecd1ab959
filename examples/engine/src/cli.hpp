// engine::cli -- command-line helpers shared by the tools: a flag reader with llama.cpp-style
// names, loading a model with its tokenizer, and the default model path.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf.hpp"
#include "kv_select.hpp"
#include "model.hpp"
#include "tokenizer.hpp"

namespace engine::cli {

// Walks argv: `while (a.next()) { if (a.is("-m", "--model")) path = a.str(); ... else a.unknown(); }`
// Every problem throws engine::error "error: <what> (<tool>)".
class args {
 public:
  args(int argc, char** argv, std::string tool);
  bool next();                                      // advances to the next flag
  bool is(std::string_view a, std::string_view b = {}) const;
  const std::string& flag() const { return flag_; }
  std::string str();                                // the flag's value
  int64_t integer(int64_t lo, int64_t hi);          // an integer value within [lo, hi]
  double real(double lo, double hi);                // a number within [lo, hi]
  std::vector<int64_t> int_list(int64_t lo, int64_t hi);  // "0,512,4096"
  std::vector<std::string> str_list();              // "f16,turbo3"
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

// Reads a whole file (error naming it when it cannot).
std::string read_file(const std::string& path);

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

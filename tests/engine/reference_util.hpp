// Helpers for the engine's reference tests: run tests/engine/reference/*.py (NumPy + gguf) and
// compare the engine's logits and greedy tokens with theirs.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.hpp"
#include "kv/kv.hpp"
#include "model/model.hpp"
#include "model/thread_pool.hpp"
#include "run/sampler.hpp"

#ifndef STRATA_PYTHON
#define STRATA_PYTHON ""
#endif
#ifndef STRATA_REFERENCE_DIR
#define STRATA_REFERENCE_DIR ""
#endif
#ifndef STRATA_TEST_TMP
#define STRATA_TEST_TMP "/tmp"
#endif

namespace reftest {

namespace fs = std::filesystem;

inline bool have_python() { return std::string(STRATA_PYTHON).size() > 0; }

// A real model's reference test runs when the model file and the Python reference are there;
// otherwise it says which is missing (the message shows in the test's output).
inline bool model_ready(const std::string& path) {
  if (!fs::exists(path)) {
    MESSAGE("skipped: " << path << " not found (cmake -P cmake/fetch_model.cmake fetches it)");
    return false;
  }
  if (!have_python()) {
    MESSAGE("skipped: no Python with numpy + gguf (strata_python_env)");
    return false;
  }
  return true;
}

inline std::string quote(const std::string& s) { return "'" + s + "'"; }

inline fs::path tmp_dir() {
  fs::path d = fs::path(STRATA_TEST_TMP) / "engine_reference";
  fs::create_directories(d);
  return d;
}

// Runs a script of tests/engine/reference with arguments; true on success.
inline bool run_script(const std::string& script, const std::string& args) {
  const std::string cmd = quote(STRATA_PYTHON) + " " +
                          quote(std::string(STRATA_REFERENCE_DIR) + "/" + script) + " " + args;
  const int rc = std::system(cmd.c_str());
  if (rc != 0) MESSAGE("command failed (" << rc << "): " << cmd);
  return rc == 0;
}

struct reference {
  int n_prompt = 0, n_vocab = 0, n_steps = 0;
  std::vector<float> logits;       // [n_prompt][n_vocab]
  std::vector<int32_t> greedy;     // [n_steps]
  std::vector<float> step_logits;  // [n_steps][n_vocab]
};

inline std::optional<reference> run_reference(const std::string& model,
                                              const std::vector<int32_t>& tokens, int steps,
                                              const std::string& tag) {
  std::string list;
  for (int32_t t : tokens) {
    if (!list.empty()) list.push_back(',');
    list.append(std::to_string(t));
  }
  const fs::path out = tmp_dir() / (tag + ".ref");
  if (!run_script("ref_forward.py", quote(model) + " --tokens " + list + " --steps " +
                                        std::to_string(steps) + " --out " + quote(out.string())))
    return std::nullopt;
  std::ifstream in(out, std::ios::binary);
  reference r;
  int32_t hdr[3] = {};
  in.read(reinterpret_cast<char*>(hdr), sizeof hdr);
  r.n_prompt = hdr[0];
  r.n_vocab = hdr[1];
  r.n_steps = hdr[2];
  r.logits.resize(size_t(r.n_prompt) * r.n_vocab);
  r.greedy.resize(size_t(r.n_steps));
  r.step_logits.resize(size_t(r.n_steps) * r.n_vocab);
  in.read(reinterpret_cast<char*>(r.logits.data()), std::streamsize(r.logits.size() * 4));
  in.read(reinterpret_cast<char*>(r.greedy.data()), std::streamsize(r.greedy.size() * 4));
  in.read(reinterpret_cast<char*>(r.step_logits.data()), std::streamsize(r.step_logits.size() * 4));
  if (!in) return std::nullopt;
  return r;
}

// max |a - b| over n values, and max |b|.
inline std::pair<double, double> max_err(const float* a, const float* b, size_t n) {
  double err = 0.0, mx = 0.0;
  for (size_t i = 0; i < n; ++i) {
    err = std::max(err, std::fabs(double(a[i]) - double(b[i])));
    mx = std::max(mx, std::fabs(double(b[i])));
  }
  return {err, mx};
}

// Runs the engine in exact mode with an f32 KV cache and compares with the reference: prompt
// logits (every position) and `steps` greedy tokens with their logits.
inline void check_against_reference(const std::string& path, const std::vector<int32_t>& prompt,
                                    int steps, const std::string& tag) {
  const auto ref = run_reference(path, prompt, steps, tag);
  REQUIRE_MESSAGE(ref.has_value(), "reference run failed for " << path);
  auto file = std::make_shared<const engine::gguf>(path);
  engine::model m(file);
  const engine::model_config& c = m.config();
  REQUIRE(ref->n_vocab == c.n_vocab);
  engine::thread_pool pool(0);
  engine::kv_f32 kv(c, int(prompt.size()) + steps + 1);
  engine::forward_options opt;
  opt.exact = true;
  const int n = int(prompt.size());
  std::vector<float> logits(size_t(n) * c.n_vocab);
  m.forward(prompt, 0, kv, pool, logits.data(), n, opt);
  const auto [err, mx] = max_err(logits.data(), ref->logits.data(), logits.size());
  MESSAGE(tag << ": prompt logits max abs error " << err << " (max |logit| " << mx << ")");
  CHECK(err <= 1e-3 * mx);

  std::vector<float> last(logits.end() - c.n_vocab, logits.end());
  int pos = n;
  double worst = 0.0;
  for (int s = 0; s < steps; ++s) {
    const int32_t tok = engine::argmax(last.data(), c.n_vocab);
    const auto [e, m2] =
        max_err(last.data(), ref->step_logits.data() + size_t(s) * c.n_vocab, size_t(c.n_vocab));
    worst = std::max(worst, e / m2);
    REQUIRE_MESSAGE(tok == ref->greedy[size_t(s)], tag << ": greedy token " << s << " is " << tok
                                                       << ", reference " << ref->greedy[size_t(s)]);
    CHECK(e <= 1e-3 * m2);
    const int32_t one[1] = {tok};
    m.forward(one, pos++, kv, pool, last.data(), 1, opt);
  }
  MESSAGE(tag << ": " << steps << " greedy tokens match; worst step error / max|logit| " << worst);
}

}  // namespace reftest

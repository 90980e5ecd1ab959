// README command (1) answers its prompt with the default model under its KV policy as the f16
// cache does: the policy and prompt are read from README.md's main-command block, so the README
// and this test cannot drift apart. Greedy, like the command (--temp 0): the first 12 answer
// tokens equal the f16 cache's on every SIMD target this CPU runs (the engine's matmul and
// strata's kernels are forced together), and the answer holds two numbered tips.
#include <doctest/doctest.h>

// The engine compiles the AVX3_DL target into model/matmul.cpp: list it here too.
#define HWY_WANT_AVX3_DL
#include <hwy/targets.h>

#include <cstdint>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "../support/targets.hpp"
#include "kv/kv_select.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/generate.hpp"
#include "run/sampler.hpp"
#include "text/chat_template.hpp"

namespace {

struct readme_command {
  std::string policy, prompt;
};

// The strata-chat call of README.md's main-command block: its --kv-policy and -p arguments.
readme_command read_readme() {
  std::ifstream in(std::string(STRATA_SOURCE_DIR) + "/README.md");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const auto a = text.find("<!-- main-command -->"), b = text.find("<!-- /main-command -->");
  REQUIRE(a != std::string::npos);
  REQUIRE(b != std::string::npos);
  const std::string block = text.substr(a, b - a);
  std::smatch m;
  readme_command c;
  REQUIRE_MESSAGE(std::regex_search(block, m, std::regex(R"(--kv-policy "([^"]+)\")")),
                  "README command (1) names no --kv-policy \"...\"");
  c.policy = m[1];
  REQUIRE(std::regex_search(block, m, std::regex(R"(-p "([^"]+)\")")));
  c.prompt = m[1];
  return c;
}

// The greedy answer's first n tokens with a cache of `policy` ("" = -ctk f16 -ctv f16).
std::vector<int32_t> answer(const engine::cli::loaded_model& lm, const std::string& prompt,
                            const std::string& policy, int n) {
  engine::kv_options kv;
  kv.policy = policy;
  auto cache = engine::make_kv(*lm.net, 512, kv);
  engine::thread_pool pool(2);
  engine::session s(*lm.net, *lm.tok, *cache, pool, engine::forward_options{});
  engine::sampler smp(engine::sampler_params{.temp = 0.0f});
  const std::string text = engine::apply_chat_template(lm.net->file(), {{"user", prompt}}, true);
  engine::generation_stats st;
  s.prefill(lm.tok->encode(text, true, true), st);
  return s.generate(
      smp, n, [](const std::string&) { return true; }, st);
}

}  // namespace

TEST_CASE("README command (1): its policy keeps the f16 cache's answer on every target") {
  const readme_command c = read_readme();
  INFO("policy ", c.policy, ", prompt ", c.prompt);
  const auto lm = engine::cli::load(engine::cli::default_model_path(), true);
  constexpr int kSame = 12;
  strata_test::for_each_target([&] {
    const auto f16 = answer(lm, c.prompt, "", kSame);
    const auto ours = answer(lm, c.prompt, c.policy, kSame);
    INFO("f16: ", lm.tok->decode(f16, false), "\npolicy: ", lm.tok->decode(ours, false));
    CHECK(f16.size() == kSame);
    CHECK(ours == f16);
  });
  const std::string text = lm.tok->decode(answer(lm, c.prompt, c.policy, 128), false);
  INFO("answer: ", text);
  CHECK(std::regex_search(text, std::regex(R"(^\s*1\.[^\n]+\n\s*\n?\s*2\.\s+\S)")));
}

// strata-eval: the question file's parser and its errors, how an answer is judged, the shipped
// question set, and the tool on SmolLM2 (accuracy, its standard error, the f16 reference, the
// JSON fields, and bad input named by file and line).
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "error.hpp"
#include "run/eval.hpp"

#ifndef STRATA_TEST_TMP
#define STRATA_TEST_TMP "/tmp"
#endif
#ifndef STRATA_BIN_DIR
#define STRATA_BIN_DIR ""
#endif
#ifndef STRATA_SOURCE_DIR
#define STRATA_SOURCE_DIR "."
#endif

namespace {

std::string parse_error(const std::string& text) {
  try {
    engine::parse_eval_items(text, "q.jsonl");
  } catch (const engine::error& e) {
    return e.what();
  }
  return "";
}

void expect_error(const std::string& text, const std::string& part) {
  const std::string e = parse_error(text);
  CHECK_MESSAGE(e.find(part) != std::string::npos,
                "the error '" << e << "' lacks '" << part << "'");
}

engine::eval_item one(const std::string& line) {
  return engine::parse_eval_items(line, "q.jsonl").at(0);
}

struct result {
  int rc = -1;
  std::string out;  // stdout (and stderr when asked)
};

result run_eval_tool(const std::string& args, bool with_stderr) {
  const std::string cmd = std::string(STRATA_BIN_DIR) + "/strata-eval " + args +
                          (with_stderr ? " 2>&1" : " 2>/dev/null");
  result r;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string write_tmp(const std::string& name, const std::string& text) {
  const std::string path = std::string(STRATA_TEST_TMP) + "/" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("eval items: fields, defaults and overrides") {
  const auto items = engine::parse_eval_items(
      "{\"prompt\": \"a?\", \"answer\": \"x\"}\n"
      "\n"
      "{\"id\": \"q2\", \"category\": \"c\", \"prompt\": \"b?\", \"regex\": \"^y\", "
      "\"case_sensitive\": true, \"n_predict\": 7, \"temp\": 0, \"repeats\": 3}\n",
      "q.jsonl");
  REQUIRE(items.size() == 2);
  CHECK(items[0].id == "line 1");
  CHECK(items[0].answers == std::vector<std::string>{"x"});
  CHECK(items[0].re == nullptr);
  CHECK(items[0].n_predict == -1);
  CHECK(items[1].id == "q2");
  CHECK(items[1].line == 3);
  CHECK(items[1].category == "c");
  CHECK(items[1].case_sensitive);
  CHECK(items[1].re != nullptr);
  CHECK(items[1].n_predict == 7);
  CHECK(items[1].temp == 0.0f);
  CHECK(items[1].repeats == 3);
}

TEST_CASE("eval items: every error names the file and line") {
  expect_error("{\"prompt\": \"a\", \"answer\": \"x\"}\n{\"prompt\": ", "(q.jsonl:2)");
  expect_error("{\"prompt\": \"a\", \"answer\": \"x\"}\n{\"prompt\": ", "bad JSON");
  expect_error("{\"answer\": \"x\"}", "missing field 'prompt'");
  expect_error("{\"prompt\": \"a\"}", "missing field 'answer' or 'regex'");
  expect_error("{\"prompt\": \"a\", \"answer\": \"x\", \"regex\": \"x\"}", "both");
  expect_error("\n\n{\"prompt\": \"a\", \"regex\": \"(unclosed\"}", "bad regex '(unclosed'");
  expect_error("\n\n{\"prompt\": \"a\", \"regex\": \"(unclosed\"}", "(q.jsonl:3)");
  expect_error("{\"prompt\": \"a\", \"answr\": \"x\"}", "unknown field 'answr'");
  expect_error("{\"prompt\": 3, \"answer\": \"x\"}", "'prompt' must be a string");
  expect_error("{\"prompt\": \"a\", \"answer\": []}", "'answer'");
  expect_error("{\"prompt\": \"a\", \"answer\": \"x\", \"n_predict\": 0}",
               "'n_predict' must be an integer");
  expect_error("{\"prompt\": \"a\", \"answer\": \"x\", \"temp\": \"hot\"}", "'temp'");
  expect_error("[1, 2]", "one JSON object");
  expect_error(
      "{\"id\": \"a\", \"prompt\": \"a\", \"answer\": \"x\"}\n"
      "{\"id\": \"a\", \"prompt\": \"b\", \"answer\": \"y\"}",
      "duplicate id 'a' (q.jsonl:2)");
  expect_error("\n  \n", "no questions (q.jsonl)");
  CHECK(parse_error("{\"prompt\": \"a\", \"answer\": \"x\"}").empty());
}

TEST_CASE("eval answers: whole words ignoring case, or a regex on the trimmed answer") {
  const auto twelve = one("{\"prompt\": \"p\", \"answer\": \"12\"}");
  CHECK(engine::eval_correct(twelve, "The answer is 12."));
  CHECK(engine::eval_correct(twelve, "12"));
  CHECK_FALSE(engine::eval_correct(twelve, "112"));
  CHECK_FALSE(engine::eval_correct(twelve, "12th"));
  CHECK_FALSE(engine::eval_correct(twelve, "1.2"));
  const auto seven = one("{\"prompt\": \"p\", \"answer\": [\"7\", \"seven\"]}");
  CHECK(engine::eval_correct(seven, "Seven days."));
  CHECK_FALSE(engine::eval_correct(seven, "seventeen"));
  const auto co2 = one("{\"prompt\": \"p\", \"answer\": \"carbon dioxide\"}");
  CHECK(engine::eval_correct(co2, "Plants take in Carbon Dioxide (CO2)."));
  CHECK_FALSE(engine::eval_correct(co2, "carbon"));
  const auto yes = one("{\"prompt\": \"p\", \"regex\": \"^\\\\W*yes\\\\W*$\"}");
  CHECK(engine::eval_correct(yes, "  Yes.\n"));
  CHECK_FALSE(engine::eval_correct(yes, "Yes, of course."));
  const auto rome =
      one("{\"prompt\": \"p\", \"regex\": \"\\\\bROME\\\\b\", \"case_sensitive\": true}");
  CHECK(engine::eval_correct(rome, "The capital is ROME."));
  CHECK_FALSE(engine::eval_correct(rome, "The capital is Rome."));
  const auto never = one("{\"prompt\": \"p\", \"regex\": \"(?!)\"}");
  CHECK_FALSE(engine::eval_correct(never, ""));
  CHECK_FALSE(engine::eval_correct(never, "anything"));
}

TEST_CASE("the shipped question set parses: at least 50 items in five categories") {
  const auto items = engine::load_eval_items(std::string(STRATA_SOURCE_DIR) +
                                             "/examples/engine/data/eval/known_answers.jsonl");
  CHECK(items.size() >= 50);
  std::set<std::string> cats;
  for (const auto& it : items) cats.insert(it.category);
  CHECK(cats == std::set<std::string>{"arithmetic", "facts", "words", "reasoning", "format"});
}

TEST_CASE("strata-eval on SmolLM2: accuracy, its standard error, the f16 reference, errors") {
  if (!std::filesystem::exists(std::string(STRATA_BIN_DIR) + "/strata-eval")) {
    MESSAGE("skipped: strata-eval not built in " STRATA_BIN_DIR);
    return;
  }
  // Bad input: the tool stops before loading a model, naming the file and line.
  const std::string bad_json =
      write_tmp("eval_bad_json.jsonl", "{\"prompt\": \"a\", \"answer\": \"x\"}\n{\"prompt\"\n");
  const result r1 = run_eval_tool("-f " + bad_json, true);
  CHECK(r1.rc == 1);
  CHECK(r1.out.rfind("error: bad JSON", 0) == 0);
  CHECK(r1.out.find(bad_json + ":2)") != std::string::npos);
  const std::string bad_re =
      write_tmp("eval_bad_regex.jsonl", "{\"prompt\": \"a\", \"regex\": \"[z-a]\"}\n");
  const result r2 = run_eval_tool("-f " + bad_re, true);
  CHECK(r2.rc == 1);
  CHECK(r2.out.find("bad regex '[z-a]'") != std::string::npos);
  CHECK(r2.out.find(bad_re + ":1)") != std::string::npos);
  const std::string no_prompt =
      write_tmp("eval_no_prompt.jsonl", "\n{\"answer\": \"x\", \"id\": \"q\"}\n");
  const result r3 = run_eval_tool("-f " + no_prompt, true);
  CHECK(r3.rc == 1);
  CHECK(r3.out.find("missing field 'prompt' (" + no_prompt + ":2)") != std::string::npos);
  const result r4 = run_eval_tool("-f /nonexistent/q.jsonl", true);
  CHECK(r4.rc == 1);
  CHECK(r4.out.rfind("error: ", 0) == 0);
  CHECK(r4.out.find("/nonexistent/q.jsonl") != std::string::npos);
  const result r5 = run_eval_tool("-t 1", true);
  CHECK(r5.rc == 1);
  CHECK(r5.out.find("-f FILE") != std::string::npos);

  const std::string smol =
      std::string(STRATA_CACHE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  REQUIRE_MESSAGE(std::filesystem::exists(smol), smol << " not found (the build fetches it)");
  // Always right once, never right three times, always right once: the accuracy weighs items
  // alike (2/3, not 2 of 5 answers), and its standard error over items is 1/3.
  const std::string items = write_tmp(
      "eval_tiny.jsonl",
      "{\"id\": \"any\", \"category\": \"a\", \"prompt\": \"Say hi.\", \"regex\": "
      "\"[\\\\s\\\\S]*\"}\n"
      "{\"id\": \"never\", \"category\": \"b\", \"prompt\": \"What is 2 + 2?\", \"regex\": "
      "\"(?!)\", \"repeats\": 3}\n"
      "{\"id\": \"any2\", \"category\": \"b\", \"prompt\": \"Name a color.\", \"regex\": \"^\"}\n");
  const result r =
      run_eval_tool("-m " + smol + " -f " + items + " -n 3 -t 2 --kv-policy turbo3 -o json", false);
  REQUIRE(r.rc == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["n_items"] == 3);
  CHECK(j["n_predict"] == 3);
  CHECK(j["temp"].get<double>() == doctest::Approx(0.2));
  CHECK(j["reference"] == "f16");
  CHECK(j["reference_added"] == true);
  REQUIRE(j["caches"].size() == 2);
  const auto& f16 = j["caches"][0];
  const auto& t3 = j["caches"][1];
  CHECK(f16["reference"] == true);
  CHECK(t3["kv"] == "turbo3");
  CHECK(f16["kv_bits_per_value"].get<double>() == doctest::Approx(16.0));
  CHECK(t3["kv_bits_per_value"].get<double>() == doctest::Approx(3.25));
  CHECK(t3["kv_bytes"].get<double>() < f16["kv_bytes"].get<double>());
  for (const auto& c : j["caches"]) {
    CHECK(c["n_answers"] == 5);
    CHECK(c["n_correct"] == 2);
    CHECK(c["accuracy"].get<double>() == doctest::Approx(2.0 / 3).epsilon(1e-5));
    CHECK(c["accuracy_se"].get<double>() == doctest::Approx(1.0 / 3).epsilon(1e-5));
    CHECK(c["same_correct_as_reference"].get<double>() == doctest::Approx(1.0));
    CHECK(c["categories"]["a"]["accuracy"].get<double>() == doctest::Approx(1.0));
    CHECK(c["categories"]["b"]["accuracy"].get<double>() == doctest::Approx(0.5));
    CHECK(c["tg_tokens_per_s"].get<double>() > 0);
    REQUIRE(c["answers"].size() == 5);
    for (const auto& a : c["answers"]) {
      CHECK(a["n_gen"].get<int>() <= 3);
      CHECK(a["correct"] == (a["id"] != "never"));
    }
  }
  CHECK(f16["same_text_as_reference"].get<double>() == doctest::Approx(1.0));
}

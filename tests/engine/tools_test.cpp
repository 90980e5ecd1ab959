// The tools as a user runs them: bad flags and inputs give "error: ..." and a non-zero exit;
// strata-perplexity ends with llama-perplexity's line; strata-bench writes JSON; strata-chat
// answers, and a context overflow is an error or a shift as asked.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#ifndef STRATA_TEST_TMP
#define STRATA_TEST_TMP "/tmp"
#endif
#ifndef STRATA_BIN_DIR
#define STRATA_BIN_DIR ""
#endif

namespace {

struct result {
  int rc = -1;
  std::string out;  // stdout and stderr
};

result run(const std::string& tool, const std::string& args) {
  const std::string cmd = std::string(STRATA_BIN_DIR) + "/" + tool + " " + args + " 2>&1";
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

bool have(const std::string& tool) {
  if (std::filesystem::exists(std::string(STRATA_BIN_DIR) + "/" + tool)) return true;
  MESSAGE("skipped: " << tool << " not built in " STRATA_BIN_DIR);
  return false;
}

const std::string kStories = std::string(STRATA_DATA_DIR) + "/stories260K.gguf";
const std::string kWiki = std::string(STRATA_DATA_DIR) + "/wiki.test.raw";

bool have_data() {
  if (std::filesystem::exists(kStories) && std::filesystem::exists(kWiki)) return true;
  MESSAGE("skipped: stories260K.gguf / wiki.test.raw not in " STRATA_DATA_DIR);
  return false;
}

}  // namespace

TEST_CASE("bad flags and inputs: 'error: ...' and exit status 1") {
  for (const char* tool : {"strata-perplexity", "strata-bench", "strata-chat", "strata-needle"}) {
    if (!have(tool)) continue;
    CAPTURE(tool);
    const result unknown = run(tool, "--no-such-flag");
    CHECK(unknown.rc == 1);
    CHECK(unknown.out.rfind("error: ", 0) == 0);
    const result missing = run(tool, "-m /nonexistent/model.gguf -t");
    CHECK(missing.rc == 1);
    CHECK(missing.out.find("error: ") != std::string::npos);
    const result bad_model = run(tool, "-m /nonexistent/model.gguf");
    CHECK(bad_model.rc == 1);
    CHECK(bad_model.out.find("error: ") != std::string::npos);
    const result bad_number = run(tool, "-t many");
    CHECK(bad_number.rc == 1);
    CHECK(bad_number.out.find("many") != std::string::npos);
  }
  if (have("strata-perplexity") && have_data()) {
    const result kv = run("strata-perplexity", "-m " + kStories + " -f " + kWiki + " -ctk bogus");
    CHECK(kv.rc == 1);
    CHECK(kv.out.find("bogus") != std::string::npos);
  }
}

TEST_CASE("strata-perplexity prints chunks and llama-perplexity's final line") {
  if (!have("strata-perplexity") || !have_data()) return;
  const result r = run("strata-perplexity", "-m " + kStories + " -f " + kWiki +
                                                " -c 128 --chunks 3 -ctk f32 -ctv f32");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("[1]") != std::string::npos);
  CHECK(r.out.find("[3]") != std::string::npos);
  std::smatch m;
  const std::regex last(R"(Final estimate: PPL = ([0-9]+\.[0-9]{4}) \+/- ([0-9]+\.[0-9]{5})\n$)");
  REQUIRE(std::regex_search(r.out, m, last));
  const double ppl = std::stod(m[1].str());
  CHECK(ppl > 1.0);
  CHECK(ppl < 1000.0);
  // Too few tokens for the window: an error, not a crash.
  const std::string small = (std::filesystem::path(STRATA_TEST_TMP) / "tools_test_small.txt").string();
  {
    std::ofstream(small) << "Once upon a time there was a tiny text.\n";
  }
  const result big = run("strata-perplexity", "-m " + kStories + " -f " + small + " -c 4096");
  CHECK(big.rc == 1);
  CHECK(big.out.find("error: the text has") != std::string::npos);
}

TEST_CASE("strata-bench writes JSON rows") {
  if (!have("strata-bench") || !have_data()) return;
  const result r = run("strata-bench", "-m " + kStories + " -p 32 -n 8 -r 1 -d 0,16 -o json -ctk f32 -ctv f32");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK(r.out.rfind("[", 0) == 0);
  CHECK(r.out.find("\"test\": \"pp32\"") != std::string::npos);
  CHECK(r.out.find("\"test\": \"tg8\"") != std::string::npos);
  CHECK(r.out.find("\"depth\": 16") != std::string::npos);
  CHECK(r.out.find("\"kv_bits_per_value\": 32.0000") != std::string::npos);
}

TEST_CASE("strata-chat: a one-shot answer, context overflow as an error or a shift") {
  if (!have("strata-chat") || !have_data()) return;
  const result ok = run("strata-chat", "-m " + kStories + " --raw -p 'Once upon a time' -n 16 --temp 0 -ctk f32 -ctv f32");
  INFO(ok.out);
  REQUIRE(ok.rc == 0);
  CHECK(ok.out.find("t/s") != std::string::npos);
  CHECK(ok.out.find("KV") != std::string::npos);
  const result full = run("strata-chat", "-m " + kStories + " --raw -p 'Once upon a time' -n 64 -c 32 --temp 0 -ctk f32 -ctv f32");
  CHECK(full.rc == 1);
  CHECK(full.out.find("error: context full") != std::string::npos);
  const result shifted = run("strata-chat", "-m " + kStories + " --raw -p 'Once upon a time' -n 64 -c 32 --ctx-shift --temp 0 -ctk f32 -ctv f32");
  CHECK(shifted.rc == 0);
  CHECK(shifted.out.find("context shifted") != std::string::npos);
}

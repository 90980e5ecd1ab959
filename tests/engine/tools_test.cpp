// The tools as a user runs them: bad flags and inputs give "error: ..." and a non-zero exit;
// strata-perplexity ends with llama-perplexity's line; strata-bench writes JSON; strata-chat
// answers, and a context overflow is an error or a shift as asked.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <strata/codec/standard_codecs.hpp>

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
  for (const char* tool : {"strata-perplexity", "strata-bench", "strata-chat", "strata-needle",
                           "strata-eval", "strata-server"}) {
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

TEST_CASE("strata-plan: the Phase-1 f16 column, the fit in a budget, errors") {
  if (!have("strata-plan")) return;
  // 40 layers, 8 KV heads, head dim 128: f16 KV of 320 / 1,280 / 5,120 / 10,240 MiB.
  const result p = run("strata-plan",
                       "--layers 40 --kv-heads 8 --head-dim 128 --mem 16 "
                       "--weights 4.5 --kv-policy f16 --kv-policy turbo3");
  CHECK(p.rc == 0);
  CHECK(p.out.find("| f16 | 16.00 | 320 MiB | 1,280 MiB | 5,120 MiB | 10,240 MiB |") !=
        std::string::npos);
  // 16 GiB - 4.5 GiB of weights = 11.5 GiB: 75,363 tokens of f16 (160 KiB each; the scratch
  // of one thread, with the prefill path's decoded tile, takes the rest).
  CHECK(p.out.find("| 75,363 tokens |") != std::string::npos);
  CHECK(p.out.find("| turbo3 | 3.12 |") != std::string::npos);
  const result both = run("strata-plan", "-m x.gguf --layers 4");
  CHECK(both.rc == 1);
  CHECK(both.out.find("exclude each other") != std::string::npos);
  const result swa = run("strata-plan", "--layers 6 --swa-pattern 6");
  CHECK(swa.rc == 1);
  CHECK(swa.out.find("--swa-window") != std::string::npos);
  const result heads = run("strata-plan", "--layers 2 --kv-heads 3 --heads 8");
  CHECK(heads.rc == 1);
  CHECK(heads.out.find("not a multiple") != std::string::npos);
  const result policy = run("strata-plan", "--layers 2 --kv-policy k=bogus");
  CHECK(policy.rc == 1);
  CHECK(policy.out.find("bogus") != std::string::npos);
  // strata-chat -c auto takes the context strata-plan says fits (same model, budget, threads;
  // SmolLM2, fetched by the build, whose trained context of 8192 does not cap it here).
  if (!have("strata-chat") || !have_data()) return;
  const std::string smol =
      std::string(STRATA_CACHE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  REQUIRE_MESSAGE(std::filesystem::exists(smol), smol << " not found (the build fetches it)");
  const result plan = run("strata-plan", "-m " + smol +
                                             " --mem 0.15 -t 2 -c 256 "
                                             "--kv-policy \"-ctk q8_0 -ctv turbo3\"");
  std::smatch m;
  REQUIRE(std::regex_search(plan.out, m, std::regex(R"(\| ([0-9,]+) tokens \|)")));
  std::string fits = m[1];
  fits.erase(std::remove(fits.begin(), fits.end(), ','), fits.end());
  CHECK(std::stoi(fits) < 8192);
  const result chat = run("strata-chat", "-m " + smol +
                                             " -c auto --mem 0.15 -t 2 "
                                             "-ctk q8_0 -ctv turbo3 -n 1 -p Hi");
  CHECK(chat.rc == 0);
  // Both plan the whole process (engine::process_plan), but the part measured in the process
  // (program, libraries, heap) differs between the two binaries by some 100 KiB: a few tokens.
  REQUIRE(std::regex_search(chat.out, m, std::regex(R"(-c auto gives ([0-9]+) tokens)")));
  CHECK(std::abs(std::stoi(m[1].str()) - std::stoi(fits)) <= std::stoi(fits) / 50);
  const result ppl = run("strata-perplexity", "-m " + kStories + " -f " + kWiki + " -c auto");
  CHECK(ppl.rc == 1);
  CHECK(ppl.out.find("evaluation window") != std::string::npos);
}

TEST_CASE("--profile: the parts add up to the wall time the tool measures") {
  if (!have("strata-bench") || !have("strata-chat") || !have_data()) return;
  const result b = run("strata-bench", "-m " + kStories +
                                           " -p 16 -n 32 -r 3 -t 1 -ctk f16 -ctv "
                                           "f16 --profile -o json 2>/dev/null");
  REQUIRE(b.rc == 0);
  const std::regex wall_re(R"re("wall_s": ([0-9.e-]+),)re"),
      measured_re(R"re("measured_wall_s": ([0-9.e-]+))re");
  int rows = 0;
  for (auto it = std::sregex_iterator(b.out.begin(), b.out.end(), wall_re);
       it != std::sregex_iterator(); ++it, ++rows) {
    const double wall = std::stod((*it)[1]);
    std::smatch m;
    const std::string rest = b.out.substr(size_t(it->position()));
    REQUIRE(std::regex_search(rest, m, measured_re));
    const double measured = std::stod(m[1]);
    CHECK(wall > 0);
    CHECK(std::fabs(wall - measured) <= 0.05 * measured);  // timed inside vs around the calls
  }
  CHECK(rows == 2);  // pp16 and tg32
  std::smatch m;
  // The first of each key is the row's total (the layers follow).
  REQUIRE(std::regex_search(b.out, m, std::regex(R"re("matmul_s": ([0-9.e-]+))re")));
  CHECK(std::stod(m[1]) > 0);
  REQUIRE(std::regex_search(b.out, m, std::regex(R"re("attention_s": ([0-9.e-]+))re")));
  CHECK(std::stod(m[1]) > 0);
  const result c = run("strata-chat", "-m " + kStories +
                                          " --raw -n 8 --temp 0 -t 1 -p Once "
                                          "--profile-layers -ctk f16 -ctv f16");
  CHECK(c.rc == 0);
  CHECK(c.out.find("| weight matmuls |") != std::string::npos);
  CHECK(c.out.find("| layer | matmul ms/token |") != std::string::npos);
  CHECK(c.out.find("profile json: {\"tokens\": ") != std::string::npos);
}

TEST_CASE("every numeric flag's accepted range appears in --help") {
  // Each flag of each --help line gets the value 'x' followed by an unknown flag, so parsing
  // always stops with an error before any work; a numeric flag's error names its range
  // "[lo, hi]", which its --help line must show too.
  const std::vector<std::pair<const char*, int>> tools = {{"strata-perplexity", 5},
                                                          {"strata-chat", 7},
                                                          {"strata-bench", 7},
                                                          {"strata-needle", 4},
                                                          {"strata-server", 6}};
  for (const auto& [tool, want] : tools) {
    if (!have(tool)) continue;
    CAPTURE(tool);
    const result help = run(tool, "--help");
    REQUIRE(help.rc == 0);
    // The cache types come from strata::standard_codecs, never a hand-written list.
    CHECK(help.out.find(strata::standard_codecs::names()) != std::string::npos);
    CHECK(help.out.find("{codecs}") == std::string::npos);
    int numeric = 0;
    std::istringstream lines(help.out);
    std::string line;
    const std::regex flag_re(R"(^\s+(-[-A-Za-z0-9]+)(?:, (-[-A-Za-z0-9]+))?)");
    const std::regex range_re(R"(\((?:an integer|a number|integers) in (\[[^\]]+\])\))");
    while (std::getline(lines, line)) {
      std::smatch f;
      if (!std::regex_search(line, f, flag_re)) continue;
      for (int g = 1; g <= 2; ++g) {
        if (!f[g].matched) continue;
        const std::string flag = f[g].str();
        if (flag == "-h" || flag == "--help") continue;
        const result r = run(tool, flag + " x --no-such-flag");
        CAPTURE(flag);
        CHECK(r.rc == 1);
        std::smatch m;
        if (r.out.find("bad value 'x'") == std::string::npos ||
            !std::regex_search(r.out, m, range_re))
          continue;
        if (g == 1) ++numeric;
        CHECK_MESSAGE(line.find(m[1].str()) != std::string::npos,
                      "--help line '" << line << "' does not show " << m[1].str());
      }
    }
    CHECK(numeric == want);
  }
}

TEST_CASE("strata-perplexity prints chunks and llama-perplexity's final line") {
  if (!have("strata-perplexity") || !have_data()) return;
  const result r = run("strata-perplexity",
                       "-m " + kStories + " -f " + kWiki + " -c 128 --chunks 3 -ctk f32 -ctv f32");
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
  const std::string small =
      (std::filesystem::path(STRATA_TEST_TMP) / "tools_test_small.txt").string();
  { std::ofstream(small) << "Once upon a time there was a tiny text.\n"; }
  const result big = run("strata-perplexity", "-m " + kStories + " -f " + small + " -c 4096");
  CHECK(big.rc == 1);
  CHECK(big.out.find("error: the text has") != std::string::npos);
}

TEST_CASE(
    "strata-perplexity's KL-divergence base: inputs are never overwritten, the file is checked") {
  if (!have("strata-perplexity") || !have_data()) return;
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(STRATA_TEST_TMP) / "tools_test_kld";
  fs::remove_all(dir);
  fs::create_directories(dir);
  // Copies of the inputs, so a failure of this test cannot damage the shared data.
  const std::string model = (dir / "m.gguf").string(), text = (dir / "t.txt").string();
  fs::copy_file(kStories, model);
  fs::copy_file(kWiki, text);
  const auto model_size = fs::file_size(model), text_size = fs::file_size(text);
  const std::string base_args = "-m " + model + " -f " + text + " -c 64 --chunks 2 --no-progress";
  for (const std::string& victim : {model, text, (dir / "." / "m.gguf").string()}) {
    CAPTURE(victim);
    const result r = run("strata-perplexity", base_args + " --kl-divergence-base " + victim);
    CHECK(r.rc == 1);
    CHECK(r.out.find("is the same file as the input") != std::string::npos);
  }
  fs::create_symlink(model, dir / "link.gguf");
  const result via_link =
      run("strata-perplexity", base_args + " --kl-divergence-base " + (dir / "link.gguf").string());
  CHECK(via_link.rc == 1);
  CHECK(fs::file_size(model) == model_size);
  CHECK(fs::file_size(text) == text_size);

  // A full device is refused before the run, not reported as saved.
  const result full = run("strata-perplexity", base_args + " --kl-divergence-base /dev/full");
  CHECK(full.rc == 1);
  CHECK(full.out.find("not a regular file") != std::string::npos);
  CHECK(full.out.find("saved") == std::string::npos);

  // A good base, then the comparison against it.
  const std::string base = (dir / "base.kld").string();
  const result saved = run("strata-perplexity", base_args + " --kl-divergence-base " + base);
  INFO(saved.out);
  REQUIRE(saved.rc == 0);
  CHECK(fs::directory_iterator(dir) != fs::directory_iterator());
  for (const auto& e : fs::directory_iterator(dir))  // no temporary left beside it
    CHECK(e.path().filename().string().rfind(".base.kld.", 0) != 0);
  const result same =
      run("strata-perplexity", base_args + " --kl-divergence --kl-divergence-base " + base);
  INFO(same.out);
  REQUIRE(same.rc == 0);
  std::smatch kld;  // the same run: only the base's f16 rounding remains
  REQUIRE(std::regex_search(same.out, kld, std::regex(R"(Mean KLD: +([0-9.]+))")));
  CHECK(std::stod(kld[1].str()) < 1e-3);

  auto damaged = [&](const std::string& name, auto&& edit) {
    const std::string p = (dir / name).string();
    fs::copy_file(base, p, fs::copy_options::overwrite_existing);
    std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
    edit(f);
    f.close();
    return run("strata-perplexity", base_args + " --kl-divergence --kl-divergence-base " + p);
  };
  // A 24-byte file: the header alone, whose sizes the file cannot hold.
  {
    const std::string p = (dir / "short.kld").string();
    std::ifstream in(base, std::ios::binary);
    std::string head(24, '\0');
    in.read(head.data(), 24);
    std::ofstream(p, std::ios::binary) << head;
    const result r =
        run("strata-perplexity", base_args + " --kl-divergence --kl-divergence-base " + p);
    CHECK(r.rc == 1);
    CHECK(r.out.find("shorter than its header") != std::string::npos);
  }
  // A header that claims a billion chunks: refused from the file size, no allocation.
  const result huge = damaged("huge.kld", [](std::fstream& f) {
    f.seekp(16);
    const uint32_t n = 1000000000u;
    f.write(reinterpret_cast<const char*>(&n), 4);
  });
  CHECK(huge.rc == 1);
  CHECK(huge.out.find("need") != std::string::npos);
  CHECK(huge.out.find("bytes, the file has") != std::string::npos);
  // Another context: the message names the field and both values.
  const result other = run("strata-perplexity",
                           "-m " + model + " -f " + text +
                               " -c 32 --chunks 2 --kl-divergence --kl-divergence-base " + base);
  CHECK(other.rc == 1);
  CHECK(other.out.find("n_ctx (-c) differs: the base was saved with 64, this run has 32") !=
        std::string::npos);
  // A NaN log-prob: refused by value, named by token and position.
  const result nan = damaged("nan.kld", [&](std::fstream& f) {
    f.seekp(std::streamoff(24 + 2 * 64 * 4 + 2 * 10));
    const uint16_t qnan = 0x7E00;
    f.write(reinterpret_cast<const char*>(&qnan), 2);
  });
  CHECK(nan.rc == 1);
  CHECK(nan.out.find("is not a finite value <= 0") != std::string::npos);
  CHECK(nan.out.find("Mean KLD") == std::string::npos);
  // One flipped byte of a log-prob that stays plausible: the checksum catches it.
  const result flipped = damaged("flipped.kld", [&](std::fstream& f) {
    f.seekp(std::streamoff(24 + 2 * 64 * 4 + 2 * 1000));
    uint16_t v = 0;
    f.read(reinterpret_cast<char*>(&v), 2);
    v ^= 1;
    f.seekp(std::streamoff(24 + 2 * 64 * 4 + 2 * 1000));
    f.write(reinterpret_cast<const char*>(&v), 2);
  });
  CHECK(flipped.rc == 1);
  CHECK(flipped.out.find("checksum") != std::string::npos);
  CHECK(flipped.out.find("Mean KLD") == std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("SIGINT and SIGTERM: the conventional status, no partial output left behind") {
  if (!have("strata-perplexity") || !have_data()) return;
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(STRATA_TEST_TMP) / "tools_test_signal";
  for (int sig : {SIGINT, SIGTERM}) {
    CAPTURE(sig);
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string tool = std::string(STRATA_BIN_DIR) + "/strata-perplexity";
    const std::string base = (dir / "base.kld").string();
    std::vector<std::string> args = {tool,
                                     "-m",
                                     kStories,
                                     "-f",
                                     kWiki,
                                     "-c",
                                     "256",
                                     "-t",
                                     "1",
                                     "--no-progress",
                                     "--kl-divergence-base",
                                     base};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      execv(tool.c_str(), argv.data());
      _exit(127);
    }
    // Wait until the run is writing its temporary, then interrupt it.
    bool writing = false;
    for (int i = 0; i < 400 && !writing; ++i) {
      for (const auto& e : fs::directory_iterator(dir))
        writing |= e.path().filename().string().rfind(".base.kld.", 0) == 0;
      if (!writing) usleep(25000);
    }
    CHECK(writing);
    kill(pid, sig);
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECK(WIFSIGNALED(st));
    if (WIFSIGNALED(st)) CHECK(WTERMSIG(st) == sig);                 // a shell reports 128 + sig
    CHECK(fs::directory_iterator(dir) == fs::directory_iterator());  // no base, no temporary
  }
  fs::remove_all(dir);
}

TEST_CASE("text inputs: directories, FIFOs and devices are refused before they are opened") {
  if (!have("strata-perplexity") || !have("strata-tokenize") || !have_data()) return;
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(STRATA_TEST_TMP) / "tools_test_inputs";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string fifo = (dir / "fifo").string();
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  const std::string tok_model = "-m " + kStories + " -f ";
  for (const auto& [input, kind] : std::vector<std::pair<std::string, std::string>>{
           {dir.string(), "a directory"}, {fifo, "a FIFO"}, {"/dev/zero", "a character device"}}) {
    CAPTURE(input);
    const result t = run("strata-tokenize", tok_model + input);
    CHECK(t.rc == 1);
    CHECK(t.out.find("cannot read " + kind) != std::string::npos);
    const result p = run("strata-perplexity", tok_model + input);
    CHECK(p.rc == 1);
    CHECK(p.out.find("cannot read " + kind) != std::string::npos);
  }
  const result zero = run("strata-perplexity", "-m " + kStories + " -f " + kWiki + " --chunks 0");
  CHECK(zero.rc == 1);
  CHECK(zero.out.find("--chunks") != std::string::npos);
  // Too many threads and a context past the trained one: warnings, and the run goes on.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  REQUIRE(sched_getaffinity(0, sizeof cpus, &cpus) == 0);
  const std::string over = std::to_string(CPU_COUNT(&cpus) + 1);  // one thread more than cores
  const result warn = run("strata-perplexity",
                          "-m " + kStories + " -f " + kWiki + " -c 4096 --chunks 1 -t " + over);
  CHECK(warn.rc == 0);
  CHECK(warn.out.find("warning: -t " + over + " exceeds the") != std::string::npos);
  CHECK(warn.out.find("exceeds the model's trained context") != std::string::npos);
  // A run that cannot fit is refused before it allocates, with the numbers and a hint.
  setenv("STRATA_MEMORY_AVAILABLE", "100000", 1);
  const result fit =
      run("strata-perplexity", "-m " + kStories + " -f " + kWiki + " -c 4096 --chunks 1");
  unsetenv("STRATA_MEMORY_AVAILABLE");
  CHECK(fit.rc == 1);
  CHECK(fit.out.find("are available (STRATA_MEMORY_AVAILABLE)") != std::string::npos);
  CHECK(fit.out.find("logits (4096 x 512 f32): 8.00 MiB") != std::string::npos);
  CHECK(fit.out.find("hint: ") != std::string::npos);
  if (have("strata-needle")) {
    setenv("STRATA_MEMORY_AVAILABLE", "1000", 1);
    const result nd = run("strata-needle", "-m " + kStories + " -c 256 --depth 0.5");
    unsetenv("STRATA_MEMORY_AVAILABLE");
    CHECK(nd.rc == 1);
    CHECK(nd.out.find("KV cache (") != std::string::npos);
    CHECK(nd.out.find("are available (STRATA_MEMORY_AVAILABLE)") != std::string::npos);
  }
  if (have("strata-chat")) {
    const result n = run("strata-chat", "-m " + kStories + " -p hi -n -1");
    CHECK(n.rc == 1);
    CHECK(n.out.find("bad value '-1' for -n") != std::string::npos);
  }
  fs::remove_all(dir);
}

TEST_CASE("--mem and --mem-plan: bad budgets named, the plan's lines add up to its total") {
  if (!have("strata-chat") || !have("strata-perplexity") || !have_data()) return;
  for (const char* tool : {"strata-chat", "strata-perplexity", "strata-server", "strata-plan"}) {
    if (!have(tool)) continue;
    CAPTURE(tool);
    for (const char* bad : {"abc", "0", "-1", "nan", "inf", "1e9", "0.5GiB", "''"}) {
      CAPTURE(bad);
      const result r = run(tool, "-m " + kStories + " --mem " + bad);
      CHECK(r.rc == 1);
      CHECK(r.out.find("for --mem: GiB of the whole process") != std::string::npos);
    }
  }
  for (const char* tool : {"strata-chat", "strata-perplexity", "strata-server"}) {
    if (!have(tool)) continue;
    CAPTURE(tool);
    const std::string args = std::string(tool) == "strata-perplexity"
                                 ? " -f " + kWiki + " -c 128 -ctk f16 -ctv f16"
                                 : " -c 256 -ctk f16 -ctv f16";
    const result r = run(tool, "-m " + kStories + args + " --mem 1 --mem-plan");
    INFO(r.out);
    REQUIRE(r.rc == 0);
    uint64_t sum = 0, total = 0;
    int lines = 0;
    const std::regex line_re(R"(^\s*([0-9]+) bytes .*  (.*)$)");
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (!std::regex_match(line, m, line_re)) continue;
      if (m[2] == "total") {
        total = std::stoull(m[1]);
      } else {
        sum += std::stoull(m[1]);
        ++lines;
      }
    }
    CHECK(lines >= 10);
    CHECK(total > 0);
    CHECK(sum == total);
    for (const char* part : {"weights (mapped file", "KV cache (", "activations (", "logits (",
                             "tokenizer tables", "program, libraries"})
      CHECK(r.out.find(part) != std::string::npos);
    CHECK(r.out.find("budget: 1.00 GiB (--mem): fits") != std::string::npos);
  }
  // A budget below the plan is refused with every line.
  const result small =
      run("strata-chat", "-m " + kStories + " -c 256 -ctk f16 -ctv f16 --mem 0.001 -p hi -n 1");
  CHECK(small.rc == 1);
  CHECK(small.out.find("are available (--mem)") != std::string::npos);
  CHECK(small.out.find("weights (mapped file") != std::string::npos);
}

TEST_CASE("strata-bench writes JSON rows") {
  if (!have("strata-bench") || !have_data()) return;
  const result r =
      run("strata-bench", "-m " + kStories + " -p 32 -n 8 -r 1 -d 0,16 -o json -ctk f32 -ctv f32");
  INFO(r.out);
  REQUIRE(r.rc == 0);
  CHECK(r.out.rfind("[", 0) == 0);
  CHECK(r.out.find("\"test\": \"pp32\"") != std::string::npos);
  CHECK(r.out.find("\"test\": \"tg8\"") != std::string::npos);
  CHECK(r.out.find("\"depth\": 16") != std::string::npos);
  CHECK(r.out.find("\"kv_bits_per_value\": 32.0") != std::string::npos);
  {  // tg rows carry the bandwidth limit: weights once plus the KV at the test's mean length
    const std::regex tg_re(
        R"re("depth": (\d+),\s*"test": "tg8",[^}]*?"tokens_per_s": ([0-9.e+-]+),[^}]*?)re"
        R"re("kv_bits_per_value": ([0-9.]+),[^}]*?"read_bandwidth_bytes_per_s": ([0-9.e+]+),\s*)re"
        R"re("step_weight_bytes": (\d+),\s*"step_kv_bytes": (\d+),\s*)re"
        R"re("bandwidth_limit_tokens_per_s": ([0-9.e+-]+),\s*"bandwidth_fraction": ([0-9.e+-]+))re");
    int tg_rows = 0;
    for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), tg_re);
         it != std::sregex_iterator(); ++it, ++tg_rows) {
      const auto& m = *it;
      const int depth = std::stoi(m[1]);
      const double tps = std::stod(m[2]), bw = std::stod(m[4]), limit = std::stod(m[7]),
                   frac = std::stod(m[8]);
      const double weights = std::stod(m[5]), kv = std::stod(m[6]);
      CHECK(bw > 1e8);  // any machine reads more than 100 MB/s
      CHECK(weights > 0);
      // stories260K: 5 layers, 4 KV heads of 8, K and V f32, at depth + 4 tokens
      CHECK(kv == doctest::Approx(5.0 * 4 * (8 + 8) * 4 * (depth + 4)).epsilon(0.02));
      CHECK(limit == doctest::Approx(bw / (weights + kv)).epsilon(1e-3));
      CHECK(frac == doctest::Approx(tps / limit).epsilon(2e-3));
    }
    CHECK(tg_rows == 2);  // depths 0 and 16
    CHECK(r.out.find("\"test\": \"pp32\",") != std::string::npos);
  }
  // --kv-policy auto reaches the tuner (stories260K's head dim 8 fits no compressed codec, so
  // the tuner refuses it; before, strata-bench took "auto" for a policy target)
  const result a =
      run("strata-bench", "-m " + kStories + " -p 8 -n 4 -r 1 --kv-policy auto:bits=6");
  INFO(a.out);
  CHECK(a.rc == 1);
  CHECK(a.out.find("error: no compressed codec fits this model's head dimension") !=
        std::string::npos);
  CHECK(a.out.find("unknown target") == std::string::npos);
}

TEST_CASE("strata-chat: a one-shot answer, context overflow as an error or a shift") {
  if (!have("strata-chat") || !have_data()) return;
  const result ok =
      run("strata-chat",
          "-m " + kStories + " --raw -p 'Once upon a time' -n 16 --temp 0 -ctk f32 -ctv f32");
  INFO(ok.out);
  REQUIRE(ok.rc == 0);
  CHECK(ok.out.find("t/s") != std::string::npos);
  CHECK(ok.out.find("KV") != std::string::npos);
  const result full =
      run("strata-chat",
          "-m " + kStories + " --raw -p 'Once upon a time' -n 64 -c 32 --temp 0 -ctk f32 -ctv f32");
  CHECK(full.rc == 1);
  CHECK(full.out.find("error: context full") != std::string::npos);
  const result shifted =
      run("strata-chat",
          "-m " + kStories +
              " --raw -p 'Once upon a time' -n 64 -c 32 --ctx-shift --temp 0 -ctk f32 -ctv f32");
  CHECK(shifted.rc == 0);
  CHECK(shifted.out.find("context shifted") != std::string::npos);
}

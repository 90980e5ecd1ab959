// strata-tokenize: a model's tokenizer on a prompt or file, printed as llama.cpp's
// llama-tokenize prints it (or as ids only, or one line per string of a llama.cpp vocab test
// file, to compare with its .out expectations).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "error.hpp"
#include "io/gguf.hpp"
#include "run/cli.hpp"
#include "text/tokenizer.hpp"

int main(int argc, char** argv) {
  return engine::cli::run_tool([&] {
    namespace cli = engine::cli;
    std::string model_path = cli::default_model_path(), text;
    bool have_text = false, add_special = true, parse_special = true, ids_only = false;
    bool vocab_test = false, stats = false;
    cli::flags f("strata-tokenize", "usage: strata-tokenize [options]");
    cli::model_flag(f, model_path);
    f.text({"-p", "--prompt"}, "TEXT", "text to tokenize", [&](std::string v) {
      text = std::move(v);
      have_text = true;
    });
    f.text({"-f", "--file"}, "FILE", "tokenize this file's contents", [&](std::string v) {
      text = cli::read_file(v);
      have_text = true;
    });
    f.on({"--no-bos"}, "no BOS/EOS (add_special = false)", [&] { add_special = false; });
    f.on({"--no-parse-special"}, "special-token texts such as <|im_start|> stay plain text",
         [&] { parse_special = false; });
    f.on({"--ids"}, "print the ids only, space-separated, one line", [&] { ids_only = true; });
    f.on({"--vocab-test"},
         "the input holds strings each followed by a line\n"
         "\"__ggml_vocab_test__\" (llama.cpp's .inp files): one line of ids\n"
         "per string, as in the .out files",
         [&] { vocab_test = true; });
    f.on({"--stats"}, "token count, time and round-trip check on stderr", [&] { stats = true; });
    if (!f.parse(argc, argv)) return 0;
    if (!have_text) f.fail("no input: give -p TEXT or -f FILE");
    const double t0 = engine::cli::now_s();
    const engine::gguf file(model_path);
    const engine::tokenizer tok(file);
    const double t1 = engine::cli::now_s();

    std::vector<std::string> texts;
    if (vocab_test) {
      const std::string sep = "\n__ggml_vocab_test__\n";
      for (size_t pos = 0; pos < text.size();) {
        const size_t next = text.find(sep, pos);
        if (next == std::string::npos) f.fail("--vocab-test input does not end with the marker");
        texts.push_back(text.substr(pos, next - pos));
        pos = next + sep.size();
      }
    } else {
      texts.push_back(std::move(text));
    }

    size_t n_tokens = 0, n_bytes = 0, bad_round_trips = 0;
    double encode_s = 0;
    for (const std::string& t : texts) {
      const double e0 = engine::cli::now_s();
      const std::vector<int32_t> ids = tok.encode(t, add_special, parse_special);
      encode_s += engine::cli::now_s() - e0;
      n_tokens += ids.size();
      n_bytes += t.size();
      if (!add_special && tok.decode(ids) != t) ++bad_round_trips;
      if (vocab_test || ids_only) {
        std::string line;
        for (const int32_t id : ids) {
          if (vocab_test || !line.empty()) line += ' ';  // the .out files start with a space
          line += std::to_string(id);
        }
        std::printf("%s\n", line.c_str());
        continue;
      }
      for (const int32_t id : ids) {
        std::printf("%6d -> '%s'\n", id, tok.token_to_piece(id).c_str());
      }
    }
    if (stats) {
      std::fprintf(
          stderr,
          "%zu strings, %zu bytes -> %zu tokens; load %.1f ms, encode %.1f ms "
          "(%.2f MB/s)%s\n",
          texts.size(), n_bytes, n_tokens, (t1 - t0) * 1e3, encode_s * 1e3,
          encode_s > 0 ? n_bytes / encode_s / 1e6 : 0.0,
          add_special ? "" : (bad_round_trips ? "; ROUND TRIP FAILED" : "; round trips ok"));
      if (bad_round_trips) return 1;
    }
    return 0;
  });
}

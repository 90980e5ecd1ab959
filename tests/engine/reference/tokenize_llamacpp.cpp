// llama.cpp's tokenizer as a reference for strata-tokenize
// (tests/engine/reference/compare_tokenizer.sh builds it against the static libraries of
// bench/llamacpp.sh's build). Dev tool, not built by the project.
//   tokenize_llamacpp MODEL FILE ADD_SPECIAL PARSE_SPECIAL
// prints llama_tokenize's ids, one line per string of FILE when it holds llama.cpp's
// "__ggml_vocab_test__" marker lines, else one line for the whole file.
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>
#include "llama.h"
int main(int argc, char** argv) {
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_backend_init();
  auto mp = llama_model_default_params();
  mp.vocab_only = true;
  llama_model* m = llama_model_load_from_file(argv[1], mp);
  if (!m) {
    std::cerr << "load failed\n";
    return 1;
  }
  const llama_vocab* v = llama_model_get_vocab(m);
  std::ifstream f(argv[2], std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string t = ss.str();
  std::vector<std::string> texts;
  std::string sep = "\n__ggml_vocab_test__\n";
  if (t.find(sep) != std::string::npos) {
    for (size_t p = 0; p < t.size();) {
      size_t n = t.find(sep, p);
      texts.push_back(t.substr(p, n - p));
      p = n + sep.size();
    }
  } else
    texts.push_back(t);
  bool add = atoi(argv[3]), parse = atoi(argv[4]);
  for (auto& x : texts) {
    std::vector<llama_token> buf(x.size() + 16);
    int n = llama_tokenize(v, x.data(), x.size(), buf.data(), buf.size(), add, parse);
    if (n < 0) {
      buf.resize(-n);
      n = llama_tokenize(v, x.data(), x.size(), buf.data(), buf.size(), add, parse);
    }
    for (int i = 0; i < n; ++i) std::cout << buf[i] << ' ';
    std::cout << '\n';
  }
}

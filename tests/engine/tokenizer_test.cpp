// Tokenizer tests: llama.cpp's tokenizer vectors for the two vocabularies in shared/data/vocab
// (SentencePiece llama, GPT-2 BPE), round trips, the pre-tokenizers' splits, special tokens,
// SmolLM2's vocabulary and small hand-made vocabularies built from plain vectors.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "error.hpp"
#include "io/gguf.hpp"
#include "text/pretokenize.hpp"
#include "text/tokenizer.hpp"
#include "text/unicode.hpp"

using engine::pre_type;
using engine::tokenizer;

namespace {

const std::string data_dir = STRATA_DATA_DIR;
const std::string cache_dir = STRATA_CACHE_DIR;

bool exists(const std::string& path) { return std::filesystem::exists(path); }

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// llama.cpp's test-tokenizer-0 format: .inp holds strings each followed by the marker line;
// .out one line of space-separated ids per string.
struct vocab_case {
  std::string text;
  std::vector<int32_t> ids;
};
std::vector<vocab_case> read_cases(const std::string& stem) {
  const std::string inp = read_file(stem + ".inp");
  const std::string out = read_file(stem + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<vocab_case> cases;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    REQUIRE(next != std::string::npos);
    cases.push_back({inp.substr(pos, next - pos), {}});
    pos = next + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    REQUIRE(i < cases.size());
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) cases[i].ids.push_back(id);
    ++i;
  }
  REQUIRE(i == cases.size());
  return cases;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (const int32_t id : ids) {
    if (!s.empty()) s += ' ';
    s += std::to_string(id);
  }
  return s;
}

void check_vocab_file(const std::string& name, size_t expected_cases) {
  const std::string stem = data_dir + "/vocab/" + name;
  if (!exists(stem) || !exists(stem + ".inp")) {
    MESSAGE("skipped: " << stem << " not found");
    return;
  }
  const tokenizer tok{engine::gguf(stem)};
  const std::vector<vocab_case> cases = read_cases(stem);
  CHECK(cases.size() == expected_cases);
  for (const vocab_case& c : cases) {
    CAPTURE(c.text);
    const std::vector<int32_t> ids = tok.encode(c.text, false, false);
    CHECK(show(ids) == show(c.ids));
    CHECK(tok.decode(ids) == c.text);
  }
}

std::vector<std::string> split(pre_type type, std::string_view text) {
  std::vector<std::string_view> pieces;
  engine::pretokenize(type, text, pieces);
  return {pieces.begin(), pieces.end()};
}
using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("unicode: categories, UTF-8, GPT-2 byte mapping") {
  using namespace engine::unicode;
  CHECK(flags_of('a') == letter);
  CHECK(flags_of('7') == number);
  CHECK(flags_of(' ') == (separator | whitespace));
  CHECK(flags_of('\n') == (control | whitespace));
  CHECK(flags_of('!') == punctuation);
  CHECK(flags_of('$') == symbol);
  CHECK(flags_of(0x00BD) == number);  // ½
  CHECK(flags_of(0x0416) == letter);  // Ж
  CHECK(flags_of(0x0301) == mark);    // combining acute
  CHECK(flags_of(0x3000) == (separator | whitespace));
  CHECK(flags_of(0x001C) == control);  // isspace() in Python, not White_Space
  CHECK(flags_of(0x1F600) == symbol);  // 😀
  CHECK(flags_of(0x10FFFF) == undefined);
  CHECK(flags_of(invalid_byte_base + 0xFF) == undefined);
  CHECK(ranges[0].first == 0);
  for (size_t i = 1; i < n_ranges; ++i) REQUIRE(ranges[i - 1].first < ranges[i].first);

  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xFF\xC0\xAF\xED\xA0\x80z";
  std::vector<uint32_t> cpts;
  std::string back;
  for (size_t pos = 0; pos < s.size();) {
    cpts.push_back(next_cpt(s, pos));
    append_utf8(back, cpts.back());
  }
  const std::vector<uint32_t> want = {'a',
                                      0xE9,
                                      0x20AC,
                                      0x1F600,
                                      invalid_byte_base + 0xFF,
                                      invalid_byte_base + 0xC0,
                                      invalid_byte_base + 0xAF,
                                      invalid_byte_base + 0xED,
                                      invalid_byte_base + 0xA0,
                                      invalid_byte_base + 0x80,
                                      'z'};
  CHECK(cpts == want);
  CHECK(back == s);

  for (int b = 0; b < 256; ++b) CHECK(cpt_to_byte(byte_to_cpt[b]) == b);
  CHECK(byte_to_cpt['A'] == 'A');
  CHECK(byte_to_cpt[0] == 0x100);
  CHECK(byte_to_cpt[0x7F] == 0x121);
  CHECK(cpt_to_byte(0x41) == 0x41);
  CHECK(cpt_to_byte(0x20) == -1);  // a raw space is not one of GPT-2's code points
}

TEST_CASE("pretokenize: GPT-2 pattern") {
  CHECK(split(pre_type::gpt2, "Hello world") == strings{"Hello", " world"});
  CHECK(split(pre_type::gpt2, "I've 'RE  x\n\n") ==
        strings{"I", "'ve", " '", "RE", " ", " x", "\n\n"});
  CHECK(split(pre_type::gpt2, "a   b") == strings{"a", "  ", " b"});
  CHECK(split(pre_type::gpt2, " 123 4567,89!?") == strings{" 123", " 4567", ",", "89", "!?"});
  CHECK(split(pre_type::gpt2, "\tx") == strings{"\t", "x"});
  CHECK(split(pre_type::gpt2, "x \n y") == strings{"x", " \n", " y"});
  CHECK(split(pre_type::gpt2,
              "caf\xC3\xA9 \xE2\x82\xAC"
              "5") == strings{"caf\xC3\xA9", " \xE2\x82\xAC", "5"});
  CHECK(split(pre_type::gpt2, "").empty());
}

TEST_CASE("pretokenize: SmolLM (digits alone, then GPT-2)") {
  CHECK(split(pre_type::smollm, " 123 abc") == strings{" ", "1", "2", "3", " abc"});
  CHECK(split(pre_type::smollm, "x2y") == strings{"x", "2", "y"});
  CHECK(split(pre_type::smollm, "\xC2\xBD!") == strings{"\xC2\xBD", "!"});  // ½ is \p{N}
}

TEST_CASE("pretokenize: Llama 3 and Qwen2 patterns") {
  CHECK(split(pre_type::llama3, "Hello world") == strings{"Hello", " world"});
  CHECK(split(pre_type::llama3, "I'VE 'Re") == strings{"I", "'VE", " '", "Re"});
  CHECK(split(pre_type::llama3, "1234567") == strings{"123", "456", "7"});
  CHECK(split(pre_type::qwen2, "1234") == strings{"1", "2", "3", "4"});
  CHECK(split(pre_type::llama3, "\"quoted\" (x)") == strings{"\"quoted", "\"", " (", "x", ")"});
  CHECK(split(pre_type::llama3, "a \n\n  b") == strings{"a", " \n\n", " ", " b"});
  CHECK(split(pre_type::llama3, "x...\n\ny") == strings{"x", "...\n\n", "y"});
  CHECK(split(pre_type::llama3, "  ") == strings{"  "});
  CHECK(split(pre_type::llama3, "a  ") == strings{"a", "  "});
  CHECK(split(pre_type::llama3, "\r\n") == strings{"\r\n"});
}

TEST_CASE("pretokenize: default pattern list") {
  CHECK(split(pre_type::default_, "a+b=12345 <x>") ==
        strings{"a", "+", "b", "=", "123", "45", " ", "<", "x", ">"});
}

TEST_CASE("pretokenize: names and errors") {
  CHECK(engine::parse_pre_type("smollm") == pre_type::smollm);
  CHECK(engine::parse_pre_type("gpt-2") == pre_type::gpt2);
  CHECK(engine::parse_pre_type("llama-bpe") == pre_type::llama3);
  CHECK(engine::parse_pre_type("qwen2") == pre_type::qwen2);
  CHECK(engine::parse_pre_type("") == pre_type::default_);
  try {
    engine::parse_pre_type("tekken");
    FAIL("no error for an unknown pre-tokenizer");
  } catch (const engine::error& e) {
    const std::string what = e.what();
    CHECK(what.rfind("error: ", 0) == 0);
    CHECK(what.find("'tekken'") != std::string::npos);
    CHECK(what.find("smollm") != std::string::npos);
    CHECK(what.find("(tokenizer.ggml.pre)") != std::string::npos);
  }
  // Every piece boundary is kept: the pieces cover the text, for any bytes.
  std::string junk;
  for (int i = 0; i < 2000; ++i) junk += static_cast<char>((i * 7919 + i / 13) & 0xFF);
  for (const pre_type t :
       {pre_type::gpt2, pre_type::smollm, pre_type::llama3, pre_type::qwen2, pre_type::default_}) {
    std::string joined;
    for (const std::string& p : split(t, junk)) {
      CHECK(!p.empty());
      joined += p;
    }
    CHECK(joined == junk);
  }
}

TEST_CASE(
    "pretokenize: the Python regex module's splits (tests/engine/reference/pretokenize_ref.py)") {
  const char* dir = std::getenv("STRATA_PRETOKENIZE_REF");
  if (dir == nullptr) {
    MESSAGE("skipped: STRATA_PRETOKENIZE_REF not set (ctest sets it when python3 has regex)");
    return;
  }
  const std::pair<const char*, pre_type> pres[] = {{"gpt-2", pre_type::gpt2},
                                                   {"smollm", pre_type::smollm},
                                                   {"llama3", pre_type::llama3},
                                                   {"qwen2", pre_type::qwen2},
                                                   {"default", pre_type::default_}};
  for (const auto& entry : pres) {
    const std::string name = entry.first;  // not a structured binding: CAPTURE's lambda (clang 14)
    const pre_type type = entry.second;
    std::ifstream f(std::string(dir) + "/pretok_" + name + ".txt");
    REQUIRE(f.good());
    std::string line;
    size_t n = 0, same = 0;
    while (std::getline(f, line)) {
      const size_t tab = line.find('\t');
      REQUIRE(tab != std::string::npos);
      std::string text;
      for (size_t i = 0; i + 1 < tab; i += 2) {
        text += static_cast<char>(std::stoi(line.substr(i, 2), nullptr, 16));
      }
      std::string lens;
      std::vector<std::string_view> pieces;
      engine::pretokenize(type, text, pieces);
      for (const std::string_view p : pieces) {
        if (!lens.empty()) lens += ' ';
        lens += std::to_string(p.size());
      }
      ++n;
      same += lens == line.substr(tab + 1);
      if (lens != line.substr(tab + 1)) {
        CAPTURE(name);
        CAPTURE(text);
        CHECK(lens == line.substr(tab + 1));
      }
    }
    CHECK(n > 3000);
    MESSAGE(name << ": " << same << " of " << n << " strings split as the regex module does");
  }
}

TEST_CASE("SentencePiece core on a hand-made vocabulary") {
  engine::vocab_data v;
  v.model = "llama";
  v.tokens = {"<unk>",
              "<s>",
              "</s>",
              "\xE2\x96\x81",
              "a",
              "b",
              "ab",
              "\xE2\x96\x81"
              "ab",
              "c",
              "<0x7A>",
              "<0xC3>",
              "<0xA9>",
              "<ctl>"};
  v.scores = {0, 0, 0, -1, -2, -2, -1.5f, -0.5f, -3, 0, 0, 0, 0};
  v.types = {2, 3, 3, 1, 1, 1, 1, 1, 1, 6, 6, 6, 3};
  const tokenizer tok(v);
  CHECK(tok.is_spm());
  CHECK(tok.bos() == 1);
  CHECK(tok.eos() == 2);
  CHECK(tok.is_eog(2));
  CHECK_FALSE(tok.is_eog(1));
  // "▁ab" outscores "▁"+"ab"; z falls back to its byte token, é to two, d to <unk>.
  CHECK(tok.encode("ab", false, false) == std::vector<int32_t>{7});
  CHECK(tok.encode("ab", true, false) == std::vector<int32_t>{1, 7});
  CHECK(tok.encode("abz", false, false) == std::vector<int32_t>{7, 9});
  CHECK(tok.encode("a\xC3\xA9", false, false) == std::vector<int32_t>{3, 4, 10, 11});
  CHECK(tok.encode("d", false, false) == std::vector<int32_t>{3, 0});
  CHECK(tok.decode(tok.encode("abz \xC3\xA9", false, false)) == "abz \xC3\xA9");
  // Control tokens: cut out only with parse_special, and text after one gets the prefix.
  CHECK(tok.encode("<ctl>ab", false, true) == std::vector<int32_t>{12, 7});
  CHECK(tok.encode("ab<ctl>", false, false).size() > 2);
  CHECK(tok.decode({12, 7}) == "<ctl>ab");
  CHECK(tok.decode({12, 7}, false) == "ab");
  CHECK(tok.token_to_piece(7) == " ab");
  CHECK(tok.token_to_piece(10) == "\xC3");
  CHECK(tok.token_to_piece(999).empty());
}

TEST_CASE("BPE core on a hand-made vocabulary") {
  engine::vocab_data v;
  v.model = "gpt2";
  v.pre = "gpt-2";
  // The 256 byte tokens first, then merges' results.
  for (int b = 0; b < 256; ++b) {
    std::string s;
    engine::unicode::append_utf8(s, engine::unicode::byte_to_cpt[b]);
    v.tokens.push_back(s);
  }
  const std::string sp = "\xC4\xA0";  // Ġ, the byte-level space
  v.tokens.insert(v.tokens.end(), {"ab", "abc", sp + "a", sp + "ab", "bc", "<|end|>"});
  v.merges = {"a b", sp + " a", sp + "a b", "ab c", "b c"};
  v.types.assign(v.tokens.size(), 1);
  v.types.back() = 3;
  const tokenizer tok(v);
  CHECK_FALSE(tok.is_spm());
  const int32_t ab = 256, abc = 257, sp_a = 258, sp_ab = 259, bc = 260, end = 261;
  CHECK(tok.encode("abc", false, false) == std::vector<int32_t>{abc});
  // "a b" (rank 0) wins over "b c" (rank 4): "bcab" -> bc + ab.
  CHECK(tok.encode("bcab", false, false) == std::vector<int32_t>{bc, ab});
  // " abc": a+b (rank 0) comes before Ġ+a (rank 1), so "Ġa b" never gets its turn.
  CHECK(tok.encode(" abc", false, false) == std::vector<int32_t>{' ', abc});
  CHECK(tok.encode(" a", false, false) == std::vector<int32_t>{sp_a});
  CHECK(tok.token_to_piece(sp_ab) == " ab");
  CHECK(tok.encode("a<|end|>", false, true) == std::vector<int32_t>{'a', end});
  CHECK(tok.encode("<|end|>", false, false).size() == 7);
  CHECK(tok.is_eog(end));
  CHECK(tok.eot() == end);
  CHECK(tok.decode(tok.encode(" abc\n\xFF", false, false)) == " abc\n\xFF");
  CHECK(tok.encode("ab", true, false) == std::vector<int32_t>{ab});  // gpt-2: no BOS
  v.pre = "nonsense";
  CHECK_THROWS_AS(tokenizer{v}, engine::error);
  v.pre = "gpt-2";
  v.model = "wordpiece";
  CHECK_THROWS_AS(tokenizer{v}, engine::error);
}

TEST_CASE("llama.cpp vectors: SentencePiece (llama-spm)") {
  check_vocab_file("ggml-vocab-llama-spm.gguf", 46);
}

TEST_CASE("llama.cpp vectors: GPT-2 BPE (gpt-2)") { check_vocab_file("ggml-vocab-gpt-2.gguf", 46); }

TEST_CASE("random bytes: no crash, exact round trips") {
  const std::string vocab = data_dir + "/vocab/";
  uint64_t state = 12345;
  const auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33);
  };
  for (const char* name : {"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"}) {
    if (!exists(vocab + name)) {
      MESSAGE("skipped: " << vocab + name << " not found");
      continue;
    }
    const tokenizer tok{engine::gguf(vocab + name)};
    for (int i = 0; i < 500; ++i) {
      std::string s(next() % 40, '\0');
      for (char& c : s) {
        const uint32_t r = next();
        // Mostly ASCII and UTF-8 lead/continuation bytes, some of any value.
        c = static_cast<char>(r % 4 == 0   ? r >> 8
                              : r % 4 == 1 ? 0x80 + (r >> 8) % 0x50
                                           : 0x20 + (r >> 8) % 0x60);
      }
      CAPTURE(s);
      const std::vector<int32_t> ids = tok.encode(s, i % 2 == 0, i % 3 == 0);
      for (const int32_t id : ids) REQUIRE((id >= 0 && id < tok.n_vocab()));
      if (i % 2 == 1 && s.find("\xE2\x96\x81") == std::string::npos) CHECK(tok.decode(ids) == s);
    }
  }
}

TEST_CASE("llama-spm vocabulary: BOS rules and special tokens") {
  const std::string path = data_dir + "/vocab/ggml-vocab-llama-spm.gguf";
  if (!exists(path)) {
    MESSAGE("skipped: " << path << " not found");
    return;
  }
  const tokenizer tok{engine::gguf(path)};
  CHECK(tok.n_vocab() == 32000);
  CHECK(tok.bos() == 1);
  CHECK(tok.eos() == 2);
  CHECK(tok.add_bos());
  CHECK_FALSE(tok.add_eos());
  CHECK(tok.encode("Hello world", true, false) == std::vector<int32_t>{1, 15043, 3186});
  CHECK(tok.encode("", true, false) == std::vector<int32_t>{1});
  CHECK(tok.encode("", false, false).empty());
  // <s> is cut out only with parse_special; the text after it gets the space prefix again.
  CHECK(tok.encode("<s>Hello", false, true) == std::vector<int32_t>{1, 15043});
  CHECK(tok.encode("<s>Hello", false, false) != std::vector<int32_t>{1, 15043});
  CHECK(tok.decode(tok.encode("a</s> b", false, true)) == "a</s> b");
  CHECK(tok.decode({1, 15043, 3186}, false) == "Hello world");
  CHECK(tok.is_eog(2));
}

TEST_CASE("SmolLM2 vocabulary (gpt2, pre smollm) with ChatML markers") {
  const std::string path = cache_dir + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!exists(path)) {
    MESSAGE("skipped: " << path << " not found");
    return;
  }
  const tokenizer tok{engine::gguf(path)};
  CHECK(tok.n_vocab() == 49152);
  CHECK(tok.pre() == pre_type::smollm);
  CHECK_FALSE(tok.add_bos());
  CHECK(tok.find_token("<|im_start|>") == 1);
  CHECK(tok.find_token("<|im_end|>") == 2);
  CHECK(tok.is_eog(2));
  CHECK(tok.is_eog(0));  // <|endoftext|>
  CHECK_FALSE(tok.is_eog(1));
  const auto id = [&](std::string_view t) { return tok.find_token(t); };
  const std::string G = "\xC4\xA0";  // Ġ
  // Expected ids come from the vocabulary's own texts: whole words are single tokens,
  // digits are split one by one (the smollm pre-tokenizer).
  CHECK(tok.encode("Hello world", false, false) ==
        std::vector<int32_t>{id("Hello"), id(G + "world")});
  CHECK(tok.encode("Hello world", true, false) == tok.encode("Hello world", false, false));
  CHECK(tok.encode(" 2024", false, false) ==
        std::vector<int32_t>{id(G), id("2"), id("0"), id("2"), id("4")});
  const std::string chat = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
  const std::vector<int32_t> ids = tok.encode(chat, false, true);
  REQUIRE(ids.size() > 6);
  CHECK(ids.front() == 1);
  CHECK(ids[1] == id("user"));
  CHECK(ids[2] == id("\xC4\x8A"));  // Ċ, the byte-level newline
  CHECK(std::count(ids.begin(), ids.end(), 1) == 2);
  CHECK(std::count(ids.begin(), ids.end(), 2) == 1);
  CHECK(tok.decode(ids) == chat);
  CHECK(tok.decode(ids, false) == "user\nWhat is 2+2?\nassistant\n");
  // Without parse_special the markers are plain text.
  const std::vector<int32_t> plain = tok.encode(chat, false, false);
  CHECK(std::count(plain.begin(), plain.end(), 1) == 0);
  CHECK(tok.decode(plain) == chat);
  for (const char* s : {"The quick brown fox jumps over the lazy dog.", "  indented\n\ttabs\r\n",
                        "Unicode: \xC3\xA9\xC3\xA8 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80",
                        "I'm sure they'll've DONE it 1,234,567 times!!"}) {
    CAPTURE(s);
    CHECK(tok.decode(tok.encode(s, false, true)) == s);
  }
}

// Ids below are llama.cpp's (llama_tokenize with add_special and parse_special, the llama.cpp
// tree of llama-cpp-python 0.3.36), which this tokenizer matched on the whole of wiki.test.raw
// and on 9,000 random strings for the llama-spm, gpt-2, SmolLM2 and Gemma 3 vocabularies.
const char* const chat_text =
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n";
const char* const mixed_text = "I'm sure they'll've DONE it 1,234,567 times!!";
const char* const space_text = "  indented\n\ttabs and    spaces</s><table>";
const char* const gemma_chat = "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n";

TEST_CASE("SmolLM2 vocabulary: llama.cpp's ids") {
  const std::string path = cache_dir + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!exists(path)) {
    MESSAGE("skipped: " << path << " not found");
    return;
  }
  const tokenizer tok{engine::gguf(path)};
  using v = std::vector<int32_t>;
  CHECK(tok.encode("Hello world", true, true) == v{19556, 905});
  CHECK(tok.encode(chat_text, true, true) ==
        v{1,   9690, 198, 2683, 359,   253,  5356, 5646, 11173, 3365, 3511, 308,  34519,
          28,  7018, 411, 407,  19712, 8182, 2,    198,  1,     4093, 198,  1780, 314,
          216, 34,   27,  34,   47,    2,    198,  1,    520,   9531, 198});
  CHECK(tok.encode(mixed_text, true, true) == v{57,    5248, 2090, 502, 3060, 3543, 422,
                                                19832, 357,  216,  33,  28,   34,   35,
                                                36,    28,   37,   38,  39,   1711, 10095});
  CHECK(tok.encode(space_text, true, true) ==
        v{216, 641, 6574, 198, 197, 100, 7366, 284, 333, 5600, 9617, 99, 21198, 6413, 46});
}

TEST_CASE("Gemma 3 vocabulary (llama/SentencePiece, 262K tokens): llama.cpp's ids") {
  const std::string path = cache_dir + "/models/gemma-3-270m-q4_k_m.gguf";
  if (!exists(path)) {
    MESSAGE("skipped: " << path << " not found");
    return;
  }
  const tokenizer tok{engine::gguf(path)};
  using v = std::vector<int32_t>;
  CHECK(tok.is_spm());
  CHECK(tok.n_vocab() == 262144);
  CHECK(tok.bos() == 2);
  CHECK(tok.eos() == 1);
  CHECK(tok.add_bos());
  CHECK(tok.is_eog(1));
  CHECK(tok.is_eog(106));  // <end_of_turn>
  CHECK(tok.eot() == 106);
  CHECK(tok.encode("Hello world", true, true) == v{2, 9259, 1902});  // no space prefix
  CHECK(tok.encode(mixed_text, true, true) == v{2,      236777, 236789, 236757, 2889,   901,
                                                236789, 859,    236789, 560,    130215, 625,
                                                236743, 236770, 236764, 236778, 236800, 236812,
                                                236764, 236810, 236825, 236832, 2782,   4329});
  // User-defined tokens (runs of spaces, tabs, newlines, HTML tags) are cut out first.
  CHECK(tok.encode(space_text, true, true) ==
        v{2, 138, 724, 16764, 107, 255968, 39218, 532, 140, 35220, 212, 168});
  CHECK(tok.encode(gemma_chat, true, true) ==
        v{2, 105, 2364, 107, 10979, 106, 107, 105, 4368, 107});
  const std::vector<int32_t> ids = tok.encode(gemma_chat, true, true);
  CHECK(tok.decode(ids) == std::string("<bos>") + gemma_chat);
  CHECK(tok.decode(ids, false) == "user\nHi\nmodel\n");
  for (const char* s : {mixed_text, space_text, chat_text}) {
    CHECK(tok.decode(tok.encode(s, false, true)) == s);
    CHECK(tok.decode(tok.encode(s, false, false)) == s);
  }
}

TEST_CASE("speed: wiki.test.raw") {
  const std::string wiki = data_dir + "/wiki.test.raw";
  const std::string smol = cache_dir + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  const std::string spm = data_dir + "/vocab/ggml-vocab-llama-spm.gguf";
  const std::string gemma = cache_dir + "/models/gemma-3-270m-q4_k_m.gguf";
  if (!exists(wiki)) {
    MESSAGE("skipped: " << wiki << " not found");
    return;
  }
  const std::string text = read_file(wiki);
  for (const std::string& path : {smol, spm, gemma}) {
    if (!exists(path)) {
      MESSAGE("skipped: " << path << " not found");
      continue;
    }
    const tokenizer tok{engine::gguf(path)};
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids = tok.encode(text, true, false);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE(path << ": " << text.size() << " bytes -> " << ids.size() << " tokens in " << s
                 << " s (" << text.size() / s / 1e6 << " MB/s)");
    CHECK(ids.size() > text.size() / 8);
    CHECK(tok.decode(ids, false) == text);
  }
}

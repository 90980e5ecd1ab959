// Fuzz target: the tokenizers (examples/engine/src/text/tokenizer.hpp) on arbitrary bytes, both
// vocabulary kinds, on hand-made vocabularies (no model file needed): a SentencePiece one with
// byte fallback, pieces of ASCII, Latin-1 and CJK characters, control and user-defined tokens;
// and a byte-level BPE one with merges over the same characters, under each pre-tokenizer.
// Input: byte 0 picks the vocabulary (bits 0-2: SPM, or BPE with one of the five
// pre-tokenizers), add_special (bit 3) and parse_special (bit 4); the rest is the text.
// Properties: every id is in the vocabulary; decode(encode(text, false, p)) == text for any
// bytes (SentencePiece: any text without U+2581); add_special adds exactly the BOS/EOS the
// tokenizer reports; special tokens' texts are cut out (user-defined ones always, control ones only
// with parse_special).
#include <memory>
#include <string>

#include "targets.hpp"
#include "text/tokenizer.hpp"
#include "text/unicode.hpp"

namespace strata_fuzz {

namespace {

const char* const pieces[] = {"a",
                              "b",
                              "c",
                              "e",
                              "h",
                              "l",
                              "o",
                              "t",
                              " ",
                              "\n",
                              "1",
                              "2",
                              "\xC3\xA9",
                              "\xE4\xB8\xAD",
                              "\xE6\x96\x87",
                              "!",
                              "'",
                              "s"};
const char* const specials[] = {"<|im_start|>", "<|im_end|>", "<tool>", "<|im_start|>x"};

engine::vocab_data spm_vocab() {
  engine::vocab_data v;
  v.model = "llama";
  const std::string sp = "\xE2\x96\x81";  // U+2581, SentencePiece's space
  v.tokens = {"<unk>", "<s>", "</s>"};
  v.types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.tokens.push_back(name);
    v.types.push_back(6);
  }
  auto add = [&](std::string t, int type = 1) {
    v.tokens.push_back(std::move(t));
    v.types.push_back(type);
  };
  add(sp);
  for (const char* p : pieces)
    if (std::string_view(p) != " ") add(p);
  for (const char* a : pieces)
    for (const char* b : {"a", "e", "l", "o", "\xE4\xB8\xAD", "s"}) {
      std::string t = std::string(a) + b;
      for (std::size_t i; (i = t.find(' ')) != std::string::npos;) t.replace(i, 1, sp);
      add(t);
    }
  add(sp + "hello");
  add(sp + "the");
  add("<|im_start|>", 3);
  add("<|im_end|>", 3);
  add("<tool>", 4);
  add("<|im_start|>x", 3);
  for (std::size_t i = 0; i < v.tokens.size(); ++i)
    v.scores.push_back(-float(i % 17) - float(v.tokens[i].size()));
  return v;
}

engine::vocab_data bpe_vocab(const char* pre) {
  engine::vocab_data v;
  v.model = "gpt2";
  v.pre = pre;
  auto byte_level = [](std::string_view s) {
    std::string out;
    for (unsigned char c : s) engine::unicode::append_utf8(out, engine::unicode::byte_to_cpt[c]);
    return out;
  };
  for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_level(std::string(1, char(b))));
  // Merges build each piece from its bytes, then pairs of pieces.
  auto merge = [&](const std::string& l, const std::string& r) {
    const std::string t = l + r;
    for (const std::string& x : v.tokens)
      if (x == t) return;
    v.merges.push_back(l + " " + r);
    v.tokens.push_back(t);
  };
  for (const char* p : pieces) {
    const std::string s = byte_level(p);
    std::string acc;
    for (std::size_t i = 0; i < std::string_view(p).size(); ++i) {
      const std::string one = byte_level(std::string(1, p[i]));
      if (!acc.empty()) merge(acc, one);
      acc += one;
    }
  }
  for (const char* a : pieces)
    for (const char* b : {"a", "e", "l", "o", "\xE4\xB8\xAD", "s"})
      merge(byte_level(a), byte_level(b));
  v.types.assign(v.tokens.size(), 1);
  for (const char* s : specials) {
    v.tokens.push_back(s);
    v.types.push_back(std::string_view(s) == "<tool>" ? 4 : 3);
  }
  v.bos = v.eos = int64_t(v.tokens.size()) - 3;  // <|im_end|>
  return v;
}

const engine::tokenizer& vocabulary(unsigned which) {
  static const char* const pre[] = {"gpt-2", "smollm", "llama3", "qwen2", "default"};
  static std::unique_ptr<engine::tokenizer> made[6];
  auto& t = made[which];
  if (!t)
    t = std::make_unique<engine::tokenizer>(which == 0 ? spm_vocab() : bpe_vocab(pre[which - 1]));
  return *t;
}

}  // namespace

void tokenizer(input in) {
  if (in.empty()) return;
  const engine::tokenizer& tok = vocabulary((in[0] & 7) % 6);
  const bool add_special = in[0] & 8, parse_special = in[0] & 16;
  const std::string_view text(reinterpret_cast<const char*>(in.data() + 1), in.size() - 1);
  const std::vector<int32_t> ids = tok.encode(text, false, parse_special);
  for (int32_t id : ids) check(id >= 0 && id < tok.n_vocab(), "an id outside the vocabulary");
  // SentencePiece stores spaces as U+2581 and prints U+2581 as a space, so a text holding
  // that character comes back with spaces in its place.
  if (!tok.is_spm() || text.find("\xE2\x96\x81") == std::string_view::npos)
    check(tok.decode(ids) == text, "decode(encode(text)) is not the text");
  for (int32_t id : ids) {
    const engine::token_type type = tok.type(id);
    if (type == engine::token_type::control)
      check(parse_special, "a control token without parse_special");
  }
  if (add_special) {
    const std::vector<int32_t> with = tok.encode(text, true, parse_special);
    std::size_t extra = 0;
    if (tok.add_bos() && tok.bos() >= 0)
      check(!with.empty() && with.front() == tok.bos(), "add_special without BOS first"), ++extra;
    if (tok.add_eos() && tok.eos() >= 0)
      check(!with.empty() && with.back() == tok.eos(), "add_special without EOS last"), ++extra;
    check(with.size() == ids.size() + extra || tok.is_spm(),
          "add_special changes more than BOS/EOS (BPE)");
  }
  // A user-defined token's text is always that token.
  if (text.find("<tool>") != std::string_view::npos) {
    const int32_t tool = tok.find_token("<tool>");
    bool found = false;
    for (int32_t id : ids) found |= id == tool;
    check(found, "a user-defined token's text is not cut out");
  }
}

std::vector<bytes> tokenizer_seeds() {
  std::vector<bytes> s;
  const char* texts[] = {
      "hello world, the cat's 12 tales!\n",
      "<|im_start|>user\nhi \xC3\xA9t\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87<|im_end|>\n<tool>x",
      "  leading and trailing  \t\r\n", "\xFF\xFE invalid \xC3 utf-8 \xE4\xB8"};
  for (unsigned v = 0; v < 6; ++v)
    for (const char* t : texts) {
      bytes b = to_bytes(t);
      b.insert(b.begin(), std::uint8_t(v | 8 | 16));
      s.push_back(std::move(b));
    }
  return s;
}

}  // namespace strata_fuzz

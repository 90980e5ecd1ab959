// engine::tokenizer -- the two vocabularies of GGUF files:
//   tokenizer.ggml.model = "llama": SentencePiece (Llama 1/2, TinyLlama, Mistral, Gemma 3):
//     spaces become U+2581, the text is merged character by character, highest-score pair
//     first, into tokens; characters no token covers fall back to <0xXX> byte tokens.
//   tokenizer.ggml.model = "gpt2": byte-level BPE (GPT-2, SmolLM2, Llama 3, Qwen2): the text is
//     cut into words by the pre-tokenizer of tokenizer.ggml.pre (pretokenize.hpp), each byte
//     becomes a code point (GPT-2's bytes_to_unicode), pairs merge lowest merge rank first.
// Special tokens (control, user-defined) are cut out of the text before either: user-defined
// ones always, control ones only with parse_special; merging never produces them. The results
// match llama.cpp's llama_tokenize (tests/engine/tokenizer_test.cpp checks its vectors;
// docs/tokenizer.md lists the few deliberate differences). A tokenizer is immutable after
// construction: encode/decode may run on many threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "io/gguf.hpp"
#include "text/pretokenize.hpp"

namespace engine {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class token_type : uint8_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6
};

// What a GGUF's tokenizer.* keys hold; a tokenizer can be built from it without a file.
struct vocab_data {
  std::string model;                // tokenizer.ggml.model: "llama" or "gpt2"
  std::string pre;                  // tokenizer.ggml.pre ("" = default)
  std::vector<std::string> tokens;  // tokenizer.ggml.tokens
  std::vector<float> scores;        // tokenizer.ggml.scores (empty: all 0)
  std::vector<int32_t> types;       // tokenizer.ggml.token_type (empty: all normal)
  std::vector<std::string> merges;  // tokenizer.ggml.merges, "left right", rank = index
  // Absent keys keep the model's defaults (llama: bos 1, eos 2, unk 0, add_bos, add space
  // prefix; gpt2: bos = eos = 11, add_bos only for llama3-style pre). Ids outside the
  // vocabulary mean "none".
  std::optional<int64_t> bos, eos, eot, eom, unk;
  std::optional<bool> add_bos, add_eos, add_space_prefix;

  static vocab_data from_gguf(const gguf& file);  // throws engine::error naming the key
};

class tokenizer {
 public:
  explicit tokenizer(const gguf& file);  // tokenizer.ggml.model = llama (SPM) or gpt2 (BPE)
  explicit tokenizer(vocab_data data);   // throws engine::error for an unusable vocabulary

  // add_special: add BOS/EOS as tokenizer.ggml.add_bos_token/add_eos_token (and model
  // defaults) say. parse_special: recognise special/control token texts such as <|im_start|>.
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

  // Bytes this token prints (control tokens print their text; ids outside the vocabulary
  // print nothing). render_special = false: control and unknown tokens print nothing.
  std::string token_to_piece(int32_t id) const { return token_to_piece(id, true); }
  std::string token_to_piece(int32_t id, bool render_special) const;
  // The pieces concatenated; for SentencePiece with the space prefix, the space that encode
  // put before the text at the start and after each special token is taken out again, so
  // decode(encode(x, false, p)) == x for any bytes x (SentencePiece: any x without U+2581,
  // the character it stores spaces as, which decodes to a space).
  std::string decode(const std::vector<int32_t>& ids) const { return decode(ids, true); }
  std::string decode(const std::vector<int32_t>& ids, bool render_special) const;

  int32_t n_vocab() const { return static_cast<int32_t>(text_.size()); }
  int32_t bos() const { return bos_; }  // -1 when the vocabulary has none
  int32_t eos() const { return eos_; }
  bool is_eog(int32_t id) const;  // eos, eot, eom, <|im_end|>, <end_of_turn>, ...

  int32_t eot() const { return eot_; }
  int32_t unk() const { return unk_; }
  bool add_bos() const { return add_bos_; }
  bool add_eos() const { return add_eos_; }
  bool is_spm() const { return spm_; }  // "llama" vocabulary; false: "gpt2"
  pre_type pre() const { return pre_; }
  int32_t find_token(std::string_view text) const;  // id of the token with this text, or -1
  const std::string& token_text(int32_t id) const { return text_.at(id); }  // as stored
  token_type type(int32_t id) const { return type_.at(id); }
  const std::vector<int32_t>& eog_ids() const { return eog_; }

 private:
  // Open-addressing hash from token text to id (copyable: it stores ids, not pointers).
  struct text_index {
    std::vector<uint64_t> slots;  // (hash >> 32) << 32 | (id + 1); 0 = empty
    void build(const std::vector<std::string>& texts);
    int32_t find(const std::vector<std::string>& texts, std::string_view s) const;
  };
  // Byte trie of the special tokens' texts, for leftmost-longest matching.
  struct special_trie {
    std::array<int32_t, 256> root;                // root's child per byte, -1 none
    std::unordered_map<uint64_t, int32_t> edges;  // (node << 8 | byte) -> child
    std::vector<int32_t> token;                   // node -> token ending there, -1 none
    void add(std::string_view text, int32_t id);
  };
  struct merge {
    int32_t rank, result;
  };

  // The special token starting at text[pos] (longest), or {-1, 0}.
  std::pair<int32_t, size_t> match_special(std::string_view text, size_t pos,
                                           bool parse_special) const;
  void encode_spm(std::string_view raw, bool prefix_space, std::vector<int32_t>& out) const;
  void spm_merge(std::string_view s, std::vector<int32_t>& out) const;
  // SentencePiece: can this character (UTF-8 bytes, as the merge splits them) be part of a
  // longer token? A character no token of two or more characters holds is a wall no merge
  // crosses, so the text is merged in independent segments between such walls (same result,
  // smaller queues).
  bool inside_tokens(std::string_view chr) const;
  static uint64_t char_key(std::string_view chr);
  void encode_bpe(std::string_view raw, std::vector<int32_t>& out) const;
  void bpe_word(std::string_view word, std::vector<int32_t>& out) const;
  // The tables each algorithm builds from the vocabulary once the common ones are set
  // (tokenizer_spm.cpp: the characters inside longer tokens, the <0xXX> byte tokens;
  // tokenizer_bpe.cpp: the byte tokens, the merge table from tokenizer.ggml.merges).
  void build_spm();
  void build_bpe(const std::vector<std::string>& merges);
  bool mergeable(int32_t id) const {  // may a merge (or a lone character) produce this token?
    const token_type t = type_[id];
    return t == token_type::normal || t == token_type::user_defined || t == token_type::undefined;
  }

  static constexpr std::string_view spm_space = "\xE2\x96\x81";  // U+2581, SentencePiece's space

  bool spm_ = true;
  pre_type pre_ = pre_type::default_;
  std::vector<std::string> text_;
  std::vector<float> score_;
  std::vector<token_type> type_;
  text_index index_;
  special_trie special_;
  std::array<int32_t, 256> byte_token_;   // token of each byte (SPM <0xXX>; BPE its code point)
  std::array<bool, 128> ascii_inside_{};  // inside_tokens for one-byte characters
  std::unordered_set<uint64_t> multibyte_inside_;  // char_key of the longer ones
  std::unordered_map<uint64_t, merge> merges_;     // (left id << 32 | right id) -> rank, result
  bool ignore_merges_ = false;  // BPE: a word that is a token stays whole (llama3)
  int32_t bos_ = -1, eos_ = -1, eot_ = -1, eom_ = -1, unk_ = -1;
  bool add_bos_ = false, add_eos_ = false, add_space_prefix_ = false;
  std::vector<int32_t> eog_;  // sorted
};

}  // namespace engine

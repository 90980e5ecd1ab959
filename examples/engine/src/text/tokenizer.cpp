// engine::tokenizer, the part both vocabularies share: reading the vocabulary, the token
// index and the special-token trie, cutting special tokens out of the text, decoding. The two
// algorithms are in tokenizer_spm.cpp (SentencePiece) and tokenizer_bpe.cpp (byte-level BPE).
#include "text/tokenizer.hpp"

#include <algorithm>
#include <cstring>

#include "text/unicode.hpp"

namespace engine {
namespace {

uint64_t hash_bytes(std::string_view s) {
  // FNV-1a over 8-byte words, then a final mix.
  uint64_t h = 0xcbf29ce484222325ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < s.size(); ++i) h = (h ^ static_cast<uint8_t>(s[i])) * 0x100000001b3ull;
  h ^= h >> 32;
  h *= 0x9E3779B97F4A7C15ull;
  return h ^ (h >> 29);
}

// Texts that end a turn when they are tokens (as llama.cpp decides end-of-generation).
constexpr std::string_view eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>",         "<end_of_turn>",      "<|endoftext|>",
    "<|eom_id|>", "<EOT>",      "<|end_of_text|>", "<end_of_utterance>",
};

std::optional<int64_t> opt_int(const gguf& f, std::string_view key) {
  if (!f.has(key)) return std::nullopt;
  return f.get_int(key);
}
std::optional<bool> opt_bool(const gguf& f, std::string_view key) {
  if (!f.has(key)) return std::nullopt;
  return f.get_bool(key, false);
}

}  // namespace

vocab_data vocab_data::from_gguf(const gguf& f) {
  vocab_data v;
  v.model = f.get_string("tokenizer.ggml.model");
  v.pre = f.get_string("tokenizer.ggml.pre", "");
  v.tokens = f.get_string_array("tokenizer.ggml.tokens");
  if (f.has("tokenizer.ggml.scores")) v.scores = f.get_float_array("tokenizer.ggml.scores");
  if (f.has("tokenizer.ggml.token_type")) {
    for (const int64_t t : f.get_int_array("tokenizer.ggml.token_type")) {
      v.types.push_back(static_cast<int32_t>(t));
    }
  }
  if (f.has("tokenizer.ggml.merges")) v.merges = f.get_string_array("tokenizer.ggml.merges");
  v.bos = opt_int(f, "tokenizer.ggml.bos_token_id");
  v.eos = opt_int(f, "tokenizer.ggml.eos_token_id");
  v.eot = opt_int(f, "tokenizer.ggml.eot_token_id");
  v.eom = opt_int(f, "tokenizer.ggml.eom_token_id");
  v.unk = opt_int(f, "tokenizer.ggml.unknown_token_id");
  v.add_bos = opt_bool(f, "tokenizer.ggml.add_bos_token");
  v.add_eos = opt_bool(f, "tokenizer.ggml.add_eos_token");
  v.add_space_prefix = opt_bool(f, "tokenizer.ggml.add_space_prefix");
  return v;
}

tokenizer::tokenizer(const gguf& file) : tokenizer(vocab_data::from_gguf(file)) {}

tokenizer::tokenizer(vocab_data d) {
  if (d.model == "llama") {
    spm_ = true;
  } else if (d.model == "gpt2") {
    spm_ = false;
  } else {
    throw make_error("unsupported tokenizer model '" + d.model + "' (valid: llama, gpt2)",
                     "tokenizer.ggml.model");
  }
  if (d.tokens.empty()) throw make_error("empty vocabulary", "tokenizer.ggml.tokens");
  if (d.tokens.size() > static_cast<size_t>(INT32_MAX / 2)) {
    throw make_error("vocabulary too large", "tokenizer.ggml.tokens");
  }
  const size_t n = d.tokens.size();
  if (!d.scores.empty() && d.scores.size() != n) {
    throw make_error(
        std::to_string(d.scores.size()) + " scores for " + std::to_string(n) + " tokens",
        "tokenizer.ggml.scores");
  }
  if (!d.types.empty() && d.types.size() != n) {
    throw make_error(
        std::to_string(d.types.size()) + " token types for " + std::to_string(n) + " tokens",
        "tokenizer.ggml.token_type");
  }
  text_ = std::move(d.tokens);
  score_ = d.scores.empty() ? std::vector<float>(n, 0.0f) : std::move(d.scores);
  type_.assign(n, token_type::normal);
  for (size_t i = 0; i < d.types.size(); ++i) {
    const int32_t t = d.types[i];
    type_[i] = t >= 0 && t <= 6 ? static_cast<token_type>(t) : token_type::undefined;
  }
  index_.build(text_);

  // Special ids: the model's defaults unless the file says otherwise; out of range = none.
  const auto id_or_none = [&](std::optional<int64_t> v, int64_t fallback) {
    const int64_t x = v.value_or(fallback);
    return x >= 0 && x < static_cast<int64_t>(n) ? static_cast<int32_t>(x) : -1;
  };
  if (spm_) {
    bos_ = id_or_none(d.bos, 1);
    eos_ = id_or_none(d.eos, 2);
    unk_ = id_or_none(d.unk, 0);
    add_bos_ = d.add_bos.value_or(true);
    add_space_prefix_ = d.add_space_prefix.value_or(true);
  } else {
    pre_ = parse_pre_type(d.pre);
    bos_ = id_or_none(d.bos, 11);
    eos_ = id_or_none(d.eos, 11);
    unk_ = id_or_none(d.unk, -1);
    ignore_merges_ = pre_ == pre_type::llama3;
    add_bos_ = d.add_bos.value_or(pre_ == pre_type::llama3);
    add_space_prefix_ = false;
  }
  eot_ = id_or_none(d.eot, -1);
  eom_ = id_or_none(d.eom, -1);
  add_eos_ = d.add_eos.value_or(false);

  // End of generation: eos/eot/eom and the turn-end texts, which become control tokens.
  for (const std::string_view t : eog_texts) {
    const int32_t id = find_token(t);
    if (id < 0) continue;
    type_[id] = token_type::control;
    eog_.push_back(id);
    if (eot_ < 0 && t != "<|endoftext|>" && t != "<|end_of_text|>") eot_ = id;
  }
  for (const int32_t id : {eos_, eot_, eom_}) {
    if (id >= 0) eog_.push_back(id);
  }
  std::sort(eog_.begin(), eog_.end());
  eog_.erase(std::unique(eog_.begin(), eog_.end()), eog_.end());

  special_.root.fill(-1);
  special_.token.push_back(-1);
  for (size_t i = 0; i < n; ++i) {
    const token_type t = type_[i];
    if ((t == token_type::control || t == token_type::user_defined || t == token_type::unknown) &&
        !text_[i].empty()) {
      special_.add(text_[i], static_cast<int32_t>(i));
    }
  }

  byte_token_.fill(-1);
  if (spm_) {
    build_spm();
  } else {
    build_bpe(d.merges);
  }
}

// ---------------------------------------------------------------------------------------------
// Lookup structures

void tokenizer::text_index::build(const std::vector<std::string>& texts) {
  size_t cap = 16;
  while (cap < texts.size() * 2) cap <<= 1;
  slots.assign(cap, 0);
  for (size_t i = 0; i < texts.size(); ++i) {
    const uint64_t h = hash_bytes(texts[i]);
    const uint64_t entry = (h & 0xFFFFFFFF00000000ull) | (i + 1);
    size_t s = h & (cap - 1);
    // A repeated text maps to its last id, as in llama.cpp.
    while (slots[s] != 0 && texts[(slots[s] & 0xFFFFFFFF) - 1] != texts[i]) s = (s + 1) & (cap - 1);
    slots[s] = entry;
  }
}

int32_t tokenizer::text_index::find(const std::vector<std::string>& texts,
                                    std::string_view s) const {
  const uint64_t h = hash_bytes(s);
  const uint64_t tag = h & 0xFFFFFFFF00000000ull;
  const size_t mask = slots.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    const uint64_t e = slots[i];
    if (e == 0) return -1;
    // The tag (the hash's high half) spares most string compares of a miss.
    if ((e & 0xFFFFFFFF00000000ull) == tag) {
      const int32_t id = static_cast<int32_t>((e & 0xFFFFFFFF) - 1);
      if (texts[id] == s) return id;
    }
  }
}

int32_t tokenizer::find_token(std::string_view text) const { return index_.find(text_, text); }

void tokenizer::special_trie::add(std::string_view text, int32_t id) {
  int32_t node = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const uint8_t b = static_cast<uint8_t>(text[i]);
    int32_t* child = nullptr;
    if (node == 0) {
      child = &root[b];
    } else {
      auto [it, inserted] = edges.try_emplace((static_cast<uint64_t>(node) << 8) | b, -1);
      child = &it->second;
    }
    if (*child < 0) {
      *child = static_cast<int32_t>(token.size());
      token.push_back(-1);
    }
    node = *child;
  }
  token[node] = id;
}

std::pair<int32_t, size_t> tokenizer::match_special(std::string_view text, size_t pos,
                                                    bool parse_special) const {
  int32_t node = special_.root[static_cast<uint8_t>(text[pos])];
  std::pair<int32_t, size_t> best{-1, 0};
  for (size_t i = pos + 1; node >= 0; ++i) {
    const int32_t id = special_.token[node];
    if (id >= 0 && (parse_special || type_[id] == token_type::user_defined)) best = {id, i - pos};
    if (i == text.size()) break;
    const auto it =
        special_.edges.find((static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(text[i]));
    node = it == special_.edges.end() ? -1 : it->second;
  }
  return best;
}

bool tokenizer::is_eog(int32_t id) const {
  return std::binary_search(eog_.begin(), eog_.end(), id);
}

// ---------------------------------------------------------------------------------------------
// Encoding

std::vector<int32_t> tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && add_bos_ && bos_ >= 0) out.push_back(bos_);
  bool prev_special = true;  // SentencePiece puts a space before text that starts a fragment
  size_t raw_begin = 0;
  const auto flush = [&](size_t end) {
    if (end == raw_begin) return;
    const std::string_view raw = text.substr(raw_begin, end - raw_begin);
    if (spm_) {
      encode_spm(raw, add_space_prefix_ && prev_special, out);
    } else {
      encode_bpe(raw, out);
    }
    prev_special = false;
  };
  for (size_t pos = 0; pos < text.size();) {
    const auto [id, len] = match_special(text, pos, parse_special);
    if (len == 0) {
      ++pos;
      continue;
    }
    flush(pos);
    out.push_back(id);
    prev_special = true;
    pos += len;
    raw_begin = pos;
  }
  flush(text.size());
  if (add_special && add_eos_ && eos_ >= 0) out.push_back(eos_);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

std::string tokenizer::token_to_piece(int32_t id, bool render_special) const {
  if (id < 0 || id >= n_vocab()) return {};
  const std::string& t = text_[id];
  switch (type_[id]) {
    case token_type::control:
    case token_type::unknown: return render_special ? t : std::string();
    case token_type::user_defined: return t;
    case token_type::unused: return {};
    case token_type::byte:
      if (spm_ && t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        return std::string(1, static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16)));
      }
      break;
    case token_type::normal:
    case token_type::undefined: break;
  }
  std::string out;
  out.reserve(t.size());
  if (spm_) {
    for (size_t i = 0; i < t.size();) {
      if (t.compare(i, spm_space.size(), spm_space) == 0) {
        out += ' ';
        i += spm_space.size();
      } else {
        out += t[i++];
      }
    }
  } else {
    for (size_t pos = 0; pos < t.size();) {
      const uint32_t c = unicode::next_cpt(t, pos);
      const int b = unicode::cpt_to_byte(c);
      if (b >= 0) {
        out += static_cast<char>(b);
      } else {
        unicode::append_utf8(out, c);
      }
    }
  }
  return out;
}

std::string tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string out;
  bool after_special = true;
  for (const int32_t id : ids) {
    std::string piece = token_to_piece(id, render_special);
    const bool valid = id >= 0 && id < n_vocab();
    const token_type t = valid ? type_[id] : token_type::undefined;
    const bool special =
        t == token_type::control || t == token_type::unknown || t == token_type::user_defined;
    if (spm_ && add_space_prefix_ && after_special && !special && !piece.empty() &&
        piece[0] == ' ') {
      piece.erase(0, 1);
    }
    if (valid) after_special = special;
    out += piece;
  }
  return out;
}

}  // namespace engine

#include "text/tokenizer.hpp"

#include <algorithm>
#include <cstring>
#include <queue>

#include "text/unicode.hpp"

namespace engine {
namespace {

constexpr std::string_view spm_space = "\xE2\x96\x81";  // U+2581, SentencePiece's space

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

// Bytes of the character at s[off]: a valid UTF-8 sequence, or one byte that is not part of one
// (llama.cpp goes by the lead byte alone and so can swallow the U+2581 after a stray lead byte;
// both agree on valid UTF-8).
size_t char_len(std::string_view s, size_t off) {
  size_t pos = off;
  unicode::next_cpt(s, pos);
  return pos - off;
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
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
    std::vector<std::string_view> chars;
    for (size_t i = 0; i < n; ++i) {
      if (!mergeable(static_cast<int32_t>(i))) continue;
      const std::string& t = text_[i];
      chars.clear();
      for (size_t off = 0; off < t.size();) {
        const size_t len = char_len(t, off);
        chars.emplace_back(t.data() + off, len);
        off += len;
      }
      if (chars.size() < 2) continue;
      for (const std::string_view c : chars) {
        if (c.size() == 1 && static_cast<uint8_t>(c[0]) < 128) {
          ascii_inside_[static_cast<uint8_t>(c[0])] = true;
        } else {
          multibyte_inside_.insert(char_key(c));
        }
      }
    }
    static constexpr char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
      const char name[] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
      int32_t id = find_token(std::string_view(name, sizeof(name)));
      if (id < 0) {
        const char c = static_cast<char>(b);
        id = find_token(std::string_view(&c, 1));
        if (id >= 0 && !mergeable(id)) id = -1;
      }
      byte_token_[b] = id;
    }
  } else {
    for (int b = 0; b < 256; ++b) {
      std::string s;
      unicode::append_utf8(s, unicode::byte_to_cpt[b]);
      byte_token_[b] = find_token(s);
    }
    merges_.reserve(d.merges.size());
    for (size_t rank = 0; rank < d.merges.size(); ++rank) {
      const std::string& m = d.merges[rank];
      const size_t sp = m.find(' ', 1);
      if (sp == std::string::npos) {
        throw make_error("merge " + std::to_string(rank) + " '" + m + "' has no space",
                         "tokenizer.ggml.merges");
      }
      const std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
      const int32_t l = find_token(left), r = find_token(right);
      const int32_t res = find_token(std::string(left) + std::string(right));
      if (l < 0 || r < 0 || res < 0) continue;  // can never apply to token symbols
      merges_.emplace(pair_key(l, r), merge{static_cast<int32_t>(rank), res});
    }
    if (merges_.empty() && n > 256) {
      throw make_error("byte-level BPE vocabulary without usable merges", "tokenizer.ggml.merges");
    }
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

bool tokenizer::mergeable(int32_t id) const {
  const token_type t = type_[id];
  return t == token_type::normal || t == token_type::user_defined || t == token_type::undefined;
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

uint64_t tokenizer::char_key(std::string_view chr) {
  uint64_t k = chr.size();
  for (const char c : chr) k = (k << 8) | static_cast<uint8_t>(c);
  return k;
}

bool tokenizer::inside_tokens(std::string_view chr) const {
  if (chr.size() == 1 && static_cast<uint8_t>(chr[0]) < 128) {
    return ascii_inside_[static_cast<uint8_t>(chr[0])];
  }
  return multibyte_inside_.count(char_key(chr)) != 0;
}

void tokenizer::encode_spm(std::string_view raw, bool prefix_space,
                           std::vector<int32_t>& out) const {
  std::string s;
  s.reserve(raw.size() + 3 * (prefix_space + 8));
  if (prefix_space) s += spm_space;
  for (const char c : raw) {
    if (c == ' ') {
      s += spm_space;
    } else {
      s += c;
    }
  }
  // Merge the segments between characters that no longer token holds (a newline in most
  // vocabularies): merges never cross them, so each segment merges on its own.
  size_t begin = 0;
  for (size_t off = 0; off < s.size();) {
    const size_t len = char_len(s, off);
    const std::string_view chr(s.data() + off, len);
    if (!inside_tokens(chr)) {
      spm_merge(std::string_view(s.data() + begin, off - begin), out);
      spm_merge(chr, out);
      begin = off + len;
    }
    off += len;
  }
  spm_merge(std::string_view(s.data() + begin, s.size() - begin), out);
}

void tokenizer::spm_merge(std::string_view s, std::vector<int32_t>& out) const {
  if (s.empty()) return;
  // Symbols: the characters of s (valid UTF-8 sequences, else single bytes), linked.
  struct symbol {
    uint32_t begin, len;
    int32_t prev, next;
    int32_t id;  // token once merged; -1 for a character not merged yet
  };
  std::vector<symbol> sym;
  sym.reserve(s.size());
  for (size_t off = 0; off < s.size();) {
    const size_t len = char_len(s, off);
    const int32_t i = static_cast<int32_t>(sym.size());
    sym.push_back({static_cast<uint32_t>(off), static_cast<uint32_t>(len), i - 1,
                   off + len == s.size() ? -1 : i + 1, -1});
    off += len;
  }

  struct bigram {
    float score;
    int32_t left, right, id;
    uint32_t size;
  };
  // Highest score first; among equal scores the leftmost.
  const auto lower = [](const bigram& a, const bigram& b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<bigram, std::vector<bigram>, decltype(lower)> queue(lower);
  const auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    const std::string_view t(s.data() + sym[l].begin, sym[l].len + sym[r].len);
    const int32_t id = find_token(t);
    if (id < 0 || !mergeable(id)) return;
    queue.push({score_[id], l, r, id, static_cast<uint32_t>(t.size())});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(sym.size()); ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const bigram b = queue.top();
    queue.pop();
    symbol& l = sym[b.left];
    symbol& r = sym[b.right];
    if (l.len == 0 || r.len == 0 || l.len + r.len != b.size) continue;  // stale
    l.len += r.len;
    l.id = b.id;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }

  for (int32_t i = sym.empty() ? -1 : 0; i >= 0; i = sym[i].next) {
    const symbol& x = sym[i];
    int32_t id = x.id;
    if (id < 0) {
      id = find_token(std::string_view(s.data() + x.begin, x.len));
      if (id >= 0 && !mergeable(id)) id = -1;
    }
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (uint32_t k = 0; k < x.len; ++k) {  // byte fallback, else the unknown token
      const int32_t bt = byte_token_[static_cast<uint8_t>(s[x.begin + k])];
      if (bt >= 0) {
        out.push_back(bt);
      } else if (unk_ >= 0) {
        out.push_back(unk_);
        break;
      }
    }
  }
}

void tokenizer::encode_bpe(std::string_view raw, std::vector<int32_t>& out) const {
  std::vector<std::string_view> words;
  pretokenize(pre_, raw, words);
  for (const std::string_view w : words) bpe_word(w, out);
}

void tokenizer::bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() == 1) {
    const int32_t id = byte_token_[static_cast<uint8_t>(word[0])];
    if (id >= 0) out.push_back(id);
    return;
  }
  if (ignore_merges_) {
    std::string enc;
    for (const char c : word)
      unicode::append_utf8(enc, unicode::byte_to_cpt[static_cast<uint8_t>(c)]);
    const int32_t id = find_token(enc);
    if (id >= 0 && mergeable(id)) {
      out.push_back(id);
      return;
    }
  }

  struct symbol {
    int32_t id;  // -1: a byte without a token (never merges, prints nothing)
    int32_t prev, next;
  };
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<symbol> sym(n);
  for (int32_t i = 0; i < n; ++i) {
    sym[i] = {byte_token_[static_cast<uint8_t>(word[i])], i - 1, i + 1 == n ? -1 : i + 1};
  }

  struct bigram {
    int32_t rank, left, right, left_id, right_id, result;
  };
  // Lowest rank first; among equal ranks the leftmost.
  const auto lower = [](const bigram& a, const bigram& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  };
  std::priority_queue<bigram, std::vector<bigram>, decltype(lower)> queue(lower);
  const auto try_add = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0 || sym[l].id < 0 || sym[r].id < 0) return;
    const auto it = merges_.find(pair_key(sym[l].id, sym[r].id));
    if (it == merges_.end()) return;
    queue.push({it->second.rank, l, r, sym[l].id, sym[r].id, it->second.result});
  };
  for (int32_t i = 1; i < n; ++i) try_add(i - 1, i);

  while (!queue.empty()) {
    const bigram b = queue.top();
    queue.pop();
    symbol& l = sym[b.left];
    symbol& r = sym[b.right];
    // Stale when either side has merged since: ids change, or the right one is gone.
    if (l.next != b.right || l.id != b.left_id || r.id != b.right_id) continue;
    l.id = b.result;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    r.id = -2;  // merged away
    r.prev = r.next = -1;
    try_add(l.prev, b.left);
    try_add(b.left, l.next);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) {
    if (sym[i].id >= 0) out.push_back(sym[i].id);
  }
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

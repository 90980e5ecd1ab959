// engine::tokenizer's SentencePiece half (tokenizer.ggml.model = "llama"): the tables built
// from the vocabulary, and encoding by highest-score merges (tokenizer.hpp).
#include "text/tokenizer.hpp"

#include <queue>
#include <string>
#include <string_view>
#include <vector>

#include "text/unicode.hpp"

namespace engine {
namespace {

// Bytes of the character at s[off]: a valid UTF-8 sequence, or one byte that is not part of one
// (llama.cpp goes by the lead byte alone and so can swallow the U+2581 after a stray lead byte;
// both agree on valid UTF-8).
size_t char_len(std::string_view s, size_t off) {
  size_t pos = off;
  unicode::next_cpt(s, pos);
  return pos - off;
}

}  // namespace

void tokenizer::build_spm() {
  const size_t n = text_.size();
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

}  // namespace engine

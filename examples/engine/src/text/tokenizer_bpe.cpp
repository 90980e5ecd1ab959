// engine::tokenizer's byte-level BPE half (tokenizer.ggml.model = "gpt2"): the byte tokens and
// the merge table built from the vocabulary, and encoding by lowest-rank merges within the
// pre-tokenizer's words (tokenizer.hpp).
#include "text/tokenizer.hpp"

#include <queue>
#include <string>
#include <string_view>
#include <vector>

#include "error.hpp"
#include "text/unicode.hpp"

namespace engine {
namespace {

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

void tokenizer::build_bpe(const std::vector<std::string>& merges) {
  const size_t n = text_.size();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    unicode::append_utf8(s, unicode::byte_to_cpt[b]);
    byte_token_[b] = find_token(s);
  }
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string& m = merges[rank];
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

}  // namespace engine

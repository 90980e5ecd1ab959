#include "text/pretokenize.hpp"

#include <cstdint>
#include <string>

#include "error.hpp"
#include "text/unicode.hpp"

namespace engine {
namespace {

using namespace unicode;

constexpr uint32_t out_of_range = 0xFFFFFFFF;

// The text as code points with their flags, and the byte offset of each.
struct cpt_text {
  std::vector<uint32_t> cpts;
  std::vector<uint16_t> flags;
  std::vector<size_t> offsets;  // offsets[i] = byte where cpts[i] starts; offsets[n] = size
};

// One regex stage: cuts the chunk [b, e) of code points, appending the end of every piece to
// `ends` (pieces are contiguous, the last end is e).
struct chunk {
  const cpt_text& t;
  size_t b, e;
  uint32_t cpt(size_t p) const { return p < e ? t.cpts[p] : out_of_range; }
  uint16_t flags(size_t p) const { return p < e ? t.flags[p] : 0; }  // 0 past the chunk
};
using stage_fn = void (*)(const chunk&, std::vector<size_t>& ends);

// Collects piece ends, dropping empty pieces.
struct emitter {
  std::vector<size_t>& ends;
  size_t last;
  void operator()(size_t end) {
    if (end > last) ends.push_back(end);
    last = end;
  }
};

constexpr uint16_t wln = whitespace | letter | number;

uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// Length of a contraction 's 't 're 've 'm 'll 'd at p (0 if none); `fold`: case-insensitive.
size_t contraction(const chunk& c, size_t p, bool fold) {
  if (c.cpt(p) != '\'' || p + 1 >= c.e) return 0;
  const auto at = [&](size_t q) { return fold ? ascii_lower(c.cpt(q)) : c.cpt(q); };
  const uint32_t n1 = at(p + 1);
  if (n1 == 's' || n1 == 't' || n1 == 'm' || n1 == 'd') return 2;
  if (p + 2 >= c.e) return 0;
  const uint32_t n2 = at(p + 2);
  if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l')) return 3;
  return 0;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)   (GPT-2)
void split_gpt2(const chunk& c, std::vector<size_t>& ends) {
  emitter emit{ends, c.b};
  size_t pos = c.b;
  while (pos < c.e) {
    if (const size_t n = contraction(c, pos, false)) {
      emit(pos += n);
      continue;
    }
    const uint32_t cpt = c.cpt(pos);
    const uint16_t f2 = cpt == ' ' ? c.flags(pos + 1) : c.flags(pos);
    const uint16_t classes[2] = {letter, number};
    bool matched = false;
    for (const uint16_t cls : classes) {  //  ?\p{L}+ and  ?\p{N}+
      if (f2 & cls) {
        pos += cpt == ' ';
        while (c.flags(pos) & cls) ++pos;
        emit(pos);
        matched = true;
        break;
      }
    }
    if (matched) continue;
    if (!(f2 & wln) && f2) {  //  ?[^\s\p{L}\p{N}]+
      pos += cpt == ' ';
      while (!(c.flags(pos) & wln) && c.flags(pos)) ++pos;
      emit(pos);
      continue;
    }
    size_t n_ws = 0;
    while (c.flags(pos + n_ws) & whitespace) ++n_ws;
    if (n_ws > 1 && pos + n_ws < c.e) {  // \s+(?!\S): leave the last space to the next word
      emit(pos += n_ws - 1);
    } else if (n_ws > 0) {
      emit(pos += n_ws);
    } else {
      emit(++pos);  // no alternative matches: the code point stays a piece of its own
    }
  }
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+      (Llama 3 with D = 3; Qwen2 with D = 1)
template <size_t MaxDigits> void split_llama3(const chunk& c, std::vector<size_t>& ends) {
  emitter emit{ends, c.b};
  const auto is_rn = [](uint32_t x) { return x == '\r' || x == '\n'; };
  size_t pos = c.b;
  while (pos < c.e) {
    if (const size_t n = contraction(c, pos, true)) {
      emit(pos += n);
      continue;
    }
    const uint32_t cpt = c.cpt(pos);
    const uint16_t f = c.flags(pos);
    if (!(is_rn(cpt) || (f & number)) && ((f & letter) || (c.flags(pos + 1) & letter))) {
      ++pos;  // [^\r\n\p{L}\p{N}]?\p{L}+
      while (c.flags(pos) & letter) ++pos;
      emit(pos);
      continue;
    }
    if (f & number) {  // \p{N}{1,D}
      size_t start = pos;
      while (c.flags(pos) & number) {
        if (++pos - start >= MaxDigits) {
          emit(pos);
          start = pos;
        }
      }
      emit(pos);
      continue;
    }
    const uint16_t f2 = cpt == ' ' ? c.flags(pos + 1) : f;
    if (!(f2 & wln) && f) {  //  ?[^\s\p{L}\p{N}]+[\r\n]*
      pos += cpt == ' ';
      while (!(c.flags(pos) & wln) && c.flags(pos)) ++pos;
      while (is_rn(c.cpt(pos))) ++pos;
      emit(pos);
      continue;
    }
    size_t n_ws = 0;
    size_t last_rn_end = 0;
    while (c.flags(pos + n_ws) & whitespace) {
      if (is_rn(c.cpt(pos + n_ws))) last_rn_end = pos + n_ws + 1;
      ++n_ws;
    }
    if (last_rn_end > 0) {  // \s*[\r\n]+
      emit(pos = last_rn_end);
    } else if (n_ws > 1 && pos + n_ws < c.e) {  // \s+(?!\S)
      emit(pos += n_ws - 1);
    } else if (n_ws > 0) {  // \s+
      emit(pos += n_ws);
    } else {
      emit(++pos);
    }
  }
}

// A regex that is one character class, with or without `+`: matches and the gaps between them
// are pieces.
template <bool Run, typename Pred>
void split_class(const chunk& c, std::vector<size_t>& ends, Pred in_class) {
  emitter emit{ends, c.b};
  size_t pos = c.b;
  while (pos < c.e) {
    if (!in_class(c, pos)) {
      ++pos;
      continue;
    }
    emit(pos);  // the gap before the match
    ++pos;
    if (Run) {
      while (pos < c.e && in_class(c, pos)) ++pos;
    }
    emit(pos);
  }
  emit(c.e);
}

// \p{N}  (each digit alone)
void split_each_number(const chunk& c, std::vector<size_t>& ends) {
  split_class<false>(c, ends, [](const chunk& k, size_t p) { return (k.flags(p) & number) != 0; });
}

// \p{N}+
void split_number_runs(const chunk& c, std::vector<size_t>& ends) {
  split_class<true>(c, ends, [](const chunk& k, size_t p) { return (k.flags(p) & number) != 0; });
}

// [\p{P}\$\+<=>\^~\|]+
void split_punctuation_runs(const chunk& c, std::vector<size_t>& ends) {
  split_class<true>(c, ends, [](const chunk& k, size_t p) {
    const uint32_t x = k.cpt(p);
    return (k.flags(p) & punctuation) || x == '$' || x == '+' || x == '<' || x == '=' || x == '>' ||
           x == '^' || x == '~' || x == '|';
  });
}

// [0-9][0-9][0-9]
void split_ascii_triples(const chunk& c, std::vector<size_t>& ends) {
  emitter emit{ends, c.b};
  const auto digit = [&](size_t p) { return c.cpt(p) >= '0' && c.cpt(p) <= '9'; };
  size_t pos = c.b;
  while (pos < c.e) {
    if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
      emit(pos);
      emit(pos += 3);
    } else {
      ++pos;
    }
  }
  emit(c.e);
}

struct pre_def {
  std::vector<stage_fn> stages;
  std::vector<std::string_view> patterns;
};

constexpr std::string_view gpt2_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";

pre_def definition(pre_type type) {
  switch (type) {
    case pre_type::gpt2: return {{split_gpt2}, {gpt2_pattern}};
    case pre_type::smollm: return {{split_each_number, split_gpt2}, {R"(\p{N})", gpt2_pattern}};
    case pre_type::llama3:
      return {
          {split_llama3<3>},
          {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}};
    case pre_type::qwen2:
      return {
          {split_llama3<1>},
          {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}};
    case pre_type::default_: break;
  }
  return {{split_punctuation_runs, split_gpt2, split_number_runs, split_ascii_triples},
          {R"([\p{P}\$\+<=>\^~\|]+)", gpt2_pattern, R"(\p{N}+)", "[0-9][0-9][0-9]"}};
}

}  // namespace

pre_type parse_pre_type(std::string_view name) {
  struct entry {
    std::string_view name;
    pre_type type;
  };
  static constexpr entry names[] = {
      {"", pre_type::default_},       {"default", pre_type::default_},
      {"gpt-2", pre_type::gpt2},      {"gpt2", pre_type::gpt2},
      {"mpt", pre_type::gpt2},        {"olmo", pre_type::gpt2},
      {"smollm", pre_type::smollm},   {"starcoder", pre_type::smollm},
      {"refact", pre_type::smollm},   {"codeshell", pre_type::smollm},
      {"llama3", pre_type::llama3},   {"llama-bpe", pre_type::llama3},
      {"llama-v3", pre_type::llama3}, {"falcon3", pre_type::llama3},
      {"qwen2", pre_type::qwen2},     {"deepseek-r1-qwen", pre_type::qwen2},
  };
  for (const entry& e : names) {
    if (e.name == name) return e.type;
  }
  std::string valid;
  for (const entry& e : names) {
    if (e.name.empty()) continue;
    valid += valid.empty() ? "" : ", ";
    valid += e.name;
  }
  throw make_error("unknown BPE pre-tokenizer '" + std::string(name) + "' (valid: " + valid + ")",
                   "tokenizer.ggml.pre");
}

std::vector<std::string_view> pre_patterns(pre_type type) { return definition(type).patterns; }

void pretokenize(pre_type type, std::string_view text, std::vector<std::string_view>& pieces) {
  pieces.clear();
  if (text.empty()) return;
  cpt_text t;
  t.cpts.reserve(text.size());
  t.offsets.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    t.offsets.push_back(pos);
    t.cpts.push_back(next_cpt(text, pos));
  }
  t.offsets.push_back(text.size());
  t.flags.resize(t.cpts.size());
  for (size_t i = 0; i < t.cpts.size(); ++i) t.flags[i] = flags_of(t.cpts[i]);

  const pre_def def = definition(type);
  std::vector<size_t> ends{t.cpts.size()};
  std::vector<size_t> next;
  for (const stage_fn stage : def.stages) {
    next.clear();
    size_t b = 0;
    for (const size_t e : ends) {
      stage(chunk{t, b, e}, next);
      b = e;
    }
    ends.swap(next);
  }
  size_t b = 0;
  for (const size_t e : ends) {
    pieces.push_back(text.substr(t.offsets[b], t.offsets[e] - t.offsets[b]));
    b = e;
  }
}

}  // namespace engine

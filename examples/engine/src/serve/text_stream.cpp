#include "serve/text_stream.hpp"

#include <algorithm>

namespace engine::serve {

namespace {

// Length a UTF-8 sequence with this lead byte has (0: not a lead byte).
size_t utf8_length(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Are the first `n` bytes of s (a lead byte utf8_length accepts, then n - 1 more, possibly fewer
// than the whole character) valid UTF-8 so far? Rejects overlong forms and surrogates as the
// Unicode standard's table does.
bool valid_sequence(std::string_view s, size_t n) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  for (size_t i = 1; i < n; ++i)
    if (!is_continuation(b(i))) return false;
  if (n >= 2) {
    if (b(0) == 0xE0 && b(1) < 0xA0) return false;
    if (b(0) == 0xED && b(1) > 0x9F) return false;
    if (b(0) == 0xF0 && b(1) < 0x90) return false;
    if (b(0) == 0xF4 && b(1) > 0x8F) return false;
  }
  return true;
}

// Longest suffix of `text` that is a proper prefix of some stop string.
size_t partial_stop_tail(std::string_view text, const std::vector<std::string>& stop) {
  size_t best = 0;
  for (const std::string& s : stop) {
    const size_t most = std::min(text.size(), s.size() - 1);
    for (size_t n = most; n > best; --n) {
      if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
        best = n;
        break;
      }
    }
  }
  return best;
}

}  // namespace

size_t utf8_incomplete_tail(std::string_view s) {
  // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
  for (size_t back = 1; back <= std::min<size_t>(3, s.size()); ++back) {
    const auto c = static_cast<unsigned char>(s[s.size() - back]);
    if (is_continuation(c)) continue;
    const size_t n = utf8_length(c);
    if (n > back && valid_sequence(s.substr(s.size() - back), back)) return back;
    return 0;
  }
  return 0;
}

std::string utf8_sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const size_t n = utf8_length(static_cast<unsigned char>(s[i]));
    if (n > 0 && i + n <= s.size() && valid_sequence(s.substr(i), n)) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    }
  }
  return out;
}

text_stream::text_stream(std::vector<std::string> stop) {
  for (std::string& s : stop)
    if (!s.empty()) stop_.push_back(std::move(s));
}

std::string text_stream::push(std::string_view piece) {
  if (stopped_) return {};
  held_.append(piece);
  // A whole stop string: send what precedes the earliest one, and stop.
  size_t first = std::string::npos;
  for (const std::string& s : stop_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    std::string out = utf8_sanitize(std::string_view(held_).substr(0, first));
    held_.clear();
    stopped_ = true;
    sent_ += out;
    return out;
  }
  const size_t keep = std::max(partial_stop_tail(held_, stop_), utf8_incomplete_tail(held_));
  std::string out = utf8_sanitize(std::string_view(held_).substr(0, held_.size() - keep));
  held_.erase(0, held_.size() - keep);
  sent_ += out;
  return out;
}

std::string text_stream::finish() {
  if (stopped_) return {};
  std::string out = utf8_sanitize(held_);
  held_.clear();
  sent_ += out;
  return out;
}

}  // namespace engine::serve

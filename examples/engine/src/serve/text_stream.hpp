// engine::serve::text_stream -- turns a model's token pieces into text that is safe to send:
// bytes of a UTF-8 character split across tokens are held back until the character is whole,
// and text that could be the start of a stop string is held back until it is known not to be.
//
//   text_stream ts({"\n\n", "User:"});
//   std::string out = ts.push(piece);  // send `out` (may be empty)
//   if (ts.stopped()) ...              // a stop string was found: `out` ends before it
//   out = ts.finish();                 // at the end: what was held back (stop prefixes, and
//                                      // incomplete UTF-8 as U+FFFD)
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace engine::serve {

class text_stream {
 public:
  explicit text_stream(std::vector<std::string> stop = {});

  // Adds a piece; returns the text that can be sent now. After a stop string is found, the
  // text before it is returned, stopped() is true, and later pushes return nothing.
  std::string push(std::string_view piece);
  // Ends the stream: returns what was held back (nothing after a stop). Invalid or incomplete
  // UTF-8 comes out as U+FFFD.
  std::string finish();
  bool stopped() const { return stopped_; }
  // Every byte sent so far (push and finish results concatenated).
  const std::string& sent() const { return sent_; }

 private:
  std::vector<std::string> stop_;
  std::string held_;  // bytes not yet sent
  std::string sent_;
  bool stopped_ = false;
};

// Bytes at the end of s that begin a UTF-8 character whose remaining bytes have not come yet
// (0..3).
size_t utf8_incomplete_tail(std::string_view s);
// s with every invalid UTF-8 sequence replaced by U+FFFD.
std::string utf8_sanitize(std::string_view s);

}  // namespace engine::serve

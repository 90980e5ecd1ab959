// engine::pretokenize -- the pre-tokenizers of byte-level BPE vocabularies: the text is cut into
// words before merging, as the regexes of tokenizer.json (and llama.cpp's copies) say. Each
// regex is a hand-written scanner over code points and the Unicode table (no std::regex);
// a pre-tokenizer is a sequence of them, each cutting the pieces the previous one made, where
// the text a regex does not match stays a piece of its own.
#pragma once

#include <string_view>
#include <vector>

namespace engine {

enum class pre_type { gpt2, smollm, llama3, qwen2, default_ };

// tokenizer.ggml.pre -> pre_type. "" and "default" are default_; gpt-2/gpt2 (and mpt, olmo),
// smollm (and starcoder, refact, codeshell), llama3/llama-bpe/llama-v3/falcon3 and
// qwen2/deepseek-r1-qwen are the others (the groups llama.cpp puts these names in).
// Throws engine::error naming the value and the valid ones.
pre_type parse_pre_type(std::string_view name);

// The pattern list of a pre-tokenizer, as llama.cpp spells it (for messages and docs).
std::vector<std::string_view> pre_patterns(pre_type type);

// Cuts text into pieces (views into text, in order, covering every byte). Bytes that are not
// valid UTF-8 count as code points of their own with no category but `undefined`.
void pretokenize(pre_type type, std::string_view text, std::vector<std::string_view>& pieces);

}  // namespace engine

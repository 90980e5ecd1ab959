// Chat templates: format detection by markers, ChatML's default system prompt, the rendering of
// each format, and the GGUF entry point (in-memory GGUFs, SmolLM2 and Gemma 3 when present).
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/gguf.hpp"
#include "text/chat_template.hpp"

using engine::chat_format;
using engine::chat_message;

namespace {

// SmolLM2-135M-Instruct's tokenizer.chat_template, verbatim.
const std::string smollm2_template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

// Qwen2.5's shape: the default prompt sits in an else branch, written with \n escapes.
const std::string qwen_template =
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + "
    "messages[0]['content'] + '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are "
    "Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}";

const std::string llama3_template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

const std::string gemma_template =
    "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\\n' + "
    "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}";

const std::vector<chat_message> chat = {
    {"system", "Be brief."},
    {"user", "Hi!"},
    {"assistant", " Hello. "},
    {"user", "2+2?"},
};

// A GGUF v3 with no tensors and the given string (and string-array) metadata.
struct gguf_builder {
  std::vector<uint8_t> bytes;
  uint64_t n_kv = 0;
  std::vector<uint8_t> kv;
  template <typename T> static void put(std::vector<uint8_t>& b, T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
  }
  static void put_str(std::vector<uint8_t>& b, std::string_view s) {
    put<uint64_t>(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  gguf_builder& str(std::string_view key, std::string_view value) {
    put_str(kv, key);
    put<uint32_t>(kv, 8);
    put_str(kv, value);
    ++n_kv;
    return *this;
  }
  gguf_builder& strs(std::string_view key, const std::vector<std::string>& values) {
    put_str(kv, key);
    put<uint32_t>(kv, 9);
    put<uint32_t>(kv, 8);
    put<uint64_t>(kv, values.size());
    for (const std::string& v : values) put_str(kv, v);
    ++n_kv;
    return *this;
  }
  const std::vector<uint8_t>& build() {
    bytes = {'G', 'G', 'U', 'F'};
    put<uint32_t>(bytes, 3);
    put<uint64_t>(bytes, 0);
    put<uint64_t>(bytes, n_kv);
    bytes.insert(bytes.end(), kv.begin(), kv.end());
    while (bytes.size() % 32) bytes.push_back(0);
    return bytes;
  }
};

}  // namespace

TEST_CASE("detect_chat_format by markers") {
  CHECK(engine::detect_chat_format(smollm2_template) == chat_format::chatml);
  CHECK(engine::detect_chat_format(qwen_template) == chat_format::chatml);
  CHECK(engine::detect_chat_format(llama3_template) == chat_format::llama3);
  CHECK(engine::detect_chat_format(gemma_template) == chat_format::gemma);
  CHECK(engine::detect_chat_format("{{ messages }}") == chat_format::plain);
  CHECK(engine::detect_chat_format("") == chat_format::plain);
  CHECK(engine::format_name(chat_format::gemma) == "gemma");
}

TEST_CASE("ChatML default system prompt from the template text") {
  CHECK(engine::default_system_prompt(smollm2_template) ==
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  CHECK(engine::default_system_prompt(qwen_template) ==
        "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
  CHECK(engine::default_system_prompt(
            "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'}}")
            .empty());
  CHECK(engine::default_system_prompt(llama3_template).empty());
}

TEST_CASE("ChatML rendering (SmolLM2)") {
  const engine::chat_template t = engine::parse_chat_template(smollm2_template);
  REQUIRE(t.format == chat_format::chatml);
  // A system message replaces the default one.
  CHECK(engine::render_chat(t, chat, true) ==
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi!<|im_end|>\n"
        "<|im_start|>assistant\n Hello. <|im_end|>\n"
        "<|im_start|>user\n2+2?<|im_end|>\n"
        "<|im_start|>assistant\n");
  // Without one, the template's default comes first.
  CHECK(engine::render_chat(t, {{"user", "Hi!"}}, true) ==
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
  CHECK(engine::render_chat(t, {{"user", "Hi!"}}, false).find("<|im_start|>assistant") ==
        std::string::npos);
  CHECK(engine::render_chat(t, {}, false).empty());
}

TEST_CASE("Llama 3 rendering") {
  const engine::chat_template t = engine::parse_chat_template(llama3_template);
  REQUIRE(t.format == chat_format::llama3);
  CHECK(engine::render_chat(t, chat, true) ==
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST_CASE("Gemma rendering: system prompt goes into the first user turn") {
  const engine::chat_template t = engine::parse_chat_template(gemma_template);
  REQUIRE(t.format == chat_format::gemma);
  CHECK(engine::render_chat(t, chat, true) ==
        "<start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n"
        "<start_of_turn>model\nHello.<end_of_turn>\n"
        "<start_of_turn>user\n2+2?<end_of_turn>\n"
        "<start_of_turn>model\n");
  CHECK(engine::render_chat(t, {{"user", "Hi"}}, false) ==
        "<start_of_turn>user\nHi<end_of_turn>\n");
}

TEST_CASE("plain fallback") {
  const engine::chat_template t = engine::parse_chat_template("{{ whatever }}");
  REQUIRE(t.format == chat_format::plain);
  CHECK(engine::render_chat(t, chat, true) ==
        "System: Be brief.\nUser: Hi!\nAssistant:  Hello. \nUser: 2+2?\nAssistant:");
}

TEST_CASE("apply_chat_template on in-memory GGUFs") {
  {
    gguf_builder b;
    const engine::gguf f(b.str("tokenizer.chat_template", smollm2_template).build(), "chatml");
    CHECK(engine::apply_chat_template(f, {{"user", "Hi!"}}, true) ==
          "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
          "Face<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
  }
  {
    gguf_builder b;
    const engine::gguf f(b.str("tokenizer.chat_template", llama3_template).build(), "llama3");
    CHECK(engine::apply_chat_template(f, {{"user", "Hi!"}}, false) ==
          "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>");
  }
  {
    // No template: the vocabulary's marker tokens decide.
    gguf_builder b;
    const engine::gguf f(b.strs("tokenizer.ggml.tokens", {"<pad>", "<start_of_turn>", "x"}).build(),
                         "gemma vocab");
    CHECK(engine::chat_template_of(f).format == chat_format::gemma);
  }
  {
    gguf_builder b;
    const engine::gguf f(b.strs("tokenizer.ggml.tokens", {"a", "b"}).build(), "plain vocab");
    CHECK(engine::chat_template_of(f).format == chat_format::plain);
    CHECK(engine::apply_chat_template(f, {{"user", "Hi"}}, true) == "User: Hi\nAssistant:");
  }
}

TEST_CASE("apply_chat_template on the real models") {
  const std::string dir = std::string(STRATA_CACHE_DIR) + "/models/";
  const std::string smol = dir + "SmolLM2-135M-Instruct.Q4_1.gguf";
  if (std::filesystem::exists(smol)) {
    const engine::gguf f(smol);
    CHECK(engine::chat_template_of(f).format == chat_format::chatml);
    CHECK(engine::apply_chat_template(f, {{"user", "What is 2+2?"}}, true) ==
          "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
          "Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n");
  } else {
    MESSAGE("skipped: " << smol << " not found");
  }
  const std::string gemma = dir + "gemma-3-270m-q4_k_m.gguf";
  if (std::filesystem::exists(gemma)) {
    const engine::gguf f(gemma);
    CHECK(engine::chat_template_of(f).format == chat_format::gemma);
    CHECK(engine::apply_chat_template(f, {{"system", "Be brief."}, {"user", "Hi"}}, true) ==
          "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n");
  } else {
    MESSAGE("skipped: " << gemma << " not found");
  }
}

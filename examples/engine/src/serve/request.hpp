// engine::serve::request -- the JSON bodies of the OpenAI and Ollama endpoints, validated and
// turned into gen_params. Every problem is an api_error with the HTTP status to answer and the
// field it concerns; the HTTP layer writes it in the shape of the API it came through.
#pragma once

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "io/gguf.hpp"
#include "serve/job.hpp"
#include "text/chat_template.hpp"
#include "text/tokenizer.hpp"

namespace engine::serve {

class scheduler;

struct api_error : std::runtime_error {
  api_error(int status_, const std::string& message, std::string param_ = {},
            std::string code_ = {})
      : std::runtime_error(message),
        status(status_),
        param(std::move(param_)),
        code(std::move(code_)) {}
  int status;
  std::string param;  // the request field, when one is at fault
  std::string code;   // OpenAI's error code ("model_not_found", ...), when it has one
};

// What the request parsers need to know about the served model.
struct model_context {
  const gguf& file;
  const tokenizer& tok;
  const scheduler& sched;
  std::string name;    // the model id clients use (the file name without .gguf)
  chat_template tmpl;  // the model's chat format
  bool has_template = false;
};

// Is `requested` a name of the served model (its id, the file name, "<id>:latest")? An
// empty name means the served model.
bool is_served_model(const model_context& mc, const std::string& requested);

struct openai_request {
  gen_params gen;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};
// POST /v1/chat/completions (chat = true) and /v1/completions.
openai_request parse_openai(const nlohmann::json& body, const model_context& mc, bool chat);

struct ollama_request {
  gen_params gen;
  bool stream = true;
};
// POST /api/chat (chat = true) and /api/generate.
ollama_request parse_ollama(const nlohmann::json& body, const model_context& mc, bool chat);

// The body as JSON (an object), or api_error 400 naming the parse error.
nlohmann::json parse_body(const std::string& body);

}  // namespace engine::serve

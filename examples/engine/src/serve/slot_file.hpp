// engine::serve::slot_file -- a slot saved to disk: a header (magic, version, the model's
// fingerprint, the cache's policy), the slot's token ids, then the cache's own state file
// (strata::runtime_kv_cache::save). Restoring into a server with another model or another
// policy is an error naming both. Written through a temporary file and renamed, so an
// interrupted save leaves no partial file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf.hpp"
#include "kv/kv.hpp"

namespace engine::serve {

// A name without a path: [A-Za-z0-9._-]+, not starting with '.'.
bool plain_file_name(const std::string& name);

// A short text that changes when the model file does (size, architecture, name, tensor count).
std::string model_fingerprint(const gguf& file);

// Throws engine::error (a cache that cannot be saved, an I/O failure).
void save_slot(const std::string& path, const gguf& file, const kv_store& kv,
               const std::vector<int32_t>& tokens);
// Replaces the cache's contents and `tokens`; throws engine::error naming what does not match.
void load_slot(const std::string& path, const gguf& file, kv_store& kv,
               std::vector<int32_t>& tokens);

}  // namespace engine::serve

#include "model/profile.hpp"

#include <cstdio>

namespace engine {

profile::part profile::totals() const {
  part t = head;
  for (const part& l : layers) {
    t.matmul += l.matmul;
    t.kv_append += l.kv_append;
    t.attention += l.attention;
  }
  // Everything else inside the timed calls: per layer `other`, the head's, and what lies
  // outside the layers (embedding rows, buffer sizing).
  t.other = wall - t.matmul - t.kv_append - t.attention - sampling;
  return t;
}

namespace {

std::string row(const char* name, double s, double wall, long tokens) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "| %s | %.4f | %.3f | %.1f %% |\n", name, s,
                tokens > 0 ? 1e3 * s / double(tokens) : 0.0, wall > 0 ? 100.0 * s / wall : 0.0);
  return buf;
}

}  // namespace

std::string profile::table(bool per_layer) const {
  const part t = totals();
  std::string s = "| part | s | ms/token | of wall |\n|---|---:|---:|---:|\n";
  s += row("weight matmuls", t.matmul, wall, tokens);
  s += row("attention (rotation, scores, softmax, V sums)", t.attention, wall, tokens);
  s += row("KV append (rotation, encode)", t.kv_append, wall, tokens);
  s += row("sampling", sampling, wall, tokens);
  s += row("other (norms, RoPE, activations, adds, checks)", t.other, wall, tokens);
  s += row("wall", wall, wall, tokens);
  if (per_layer) {
    s +=
        "\n| layer | matmul ms/token | attention ms/token | KV append ms/token | other ms/token |\n"
        "|---:|---:|---:|---:|---:|\n";
    const double k = tokens > 0 ? 1e3 / double(tokens) : 0.0;
    char buf[160];
    for (size_t i = 0; i < layers.size(); ++i) {
      const part& l = layers[i];
      std::snprintf(buf, sizeof buf, "| %zu | %.3f | %.3f | %.3f | %.3f |\n", i, k * l.matmul,
                    k * l.attention, k * l.kv_append, k * l.other);
      s += buf;
    }
  }
  return s;
}

std::string profile::json() const {
  const part t = totals();
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "{\"tokens\": %ld, \"wall_s\": %.6f, \"matmul_s\": %.6f, \"attention_s\": %.6f, "
                "\"kv_append_s\": %.6f, \"sampling_s\": %.6f, \"other_s\": %.6f, \"layers\": [",
                tokens, wall, t.matmul, t.attention, t.kv_append, sampling, t.other);
  std::string s(buf);
  for (size_t i = 0; i < layers.size(); ++i) {
    std::snprintf(buf, sizeof buf,
                  "%s{\"matmul_s\": %.6f, \"attention_s\": %.6f, \"kv_append_s\": %.6f, "
                  "\"other_s\": %.6f}",
                  i ? ", " : "", layers[i].matmul, layers[i].attention, layers[i].kv_append,
                  layers[i].other);
    s.append(buf);
  }
  s.append("]}");
  return s;
}

}  // namespace engine

#pragma once
// strata::layer_map: how a model's transformer layers use the KV cache.
//
// For every transformer layer: whether it owns a KV cache (hybrid models such as Qwen3-Next
// have one on every 4th layer only), whether it reads another layer's cache instead (KV
// sharing), its attention kind (global or a sliding window of W tokens), and its head shape
// (query heads, KV heads, head dim; these may differ per layer).
//
// Policies select layers by *KV-layer ordinal*: 0 is the first layer that owns a KV cache,
// 1 the second, and so on. `kv_ordinal(layer)` and `kv_layer(ordinal)` convert between the two.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace strata {

enum class attention_kind : std::uint8_t {
  global,   // every earlier token (causal)
  sliding,  // only the last `window` tokens, the query's own token included
};

// One transformer layer. A layer owns a KV cache when `has_kv` is true. A layer with
// `has_kv == false` either has no attention at all (kv_source < 0, e.g. a linear-attention or
// recurrent layer of a hybrid model) or reads the cache of the earlier layer `kv_source`.
struct layer_info {
  bool has_kv = true;
  int kv_source = -1;  // layer whose cache this layer reads (shared KV), or -1
  attention_kind kind = attention_kind::global;
  std::uint32_t window = 0;   // tokens, when kind == sliding
  std::uint32_t n_heads = 0;  // query heads (a multiple of n_kv_heads)
  std::uint32_t n_kv_heads = 0;
  std::uint32_t head_dim = 0;  // values per head vector, K and V alike

  friend bool operator==(const layer_info&, const layer_info&) = default;
};

class layer_map {
 public:
  layer_map() = default;

  // Validates the description; throws std::invalid_argument
  // ("error: <what> (layer_map, layer <i>)") on an inconsistent layer.
  explicit layer_map(std::vector<layer_info> layers) : layers_(std::move(layers)) {
    ordinal_.assign(layers_.size(), -1);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const layer_info& l = layers_[i];
      if (l.has_kv) {
        if (l.kv_source >= 0) fail("a layer with its own KV cache has kv_source set", i);
        if (l.n_kv_heads == 0 || l.head_dim == 0) fail("n_kv_heads and head_dim must be > 0", i);
        if (l.n_heads == 0) layers_[i].n_heads = l.n_kv_heads;
        if (layers_[i].n_heads % l.n_kv_heads != 0)
          fail("n_heads must be a multiple of n_kv_heads", i);
        ordinal_[i] = static_cast<int>(kv_layers_.size());
        kv_layers_.push_back(static_cast<int>(i));
      } else if (l.kv_source >= 0) {
        if (static_cast<std::size_t>(l.kv_source) >= i || !layers_[l.kv_source].has_kv)
          fail("kv_source must name an earlier layer that owns a KV cache", i);
        const layer_info& s = layers_[l.kv_source];
        if (l.n_kv_heads != 0 && l.n_kv_heads != s.n_kv_heads)
          fail("a shared-KV layer must have its source's n_kv_heads", i);
        if (l.head_dim != 0 && l.head_dim != s.head_dim)
          fail("a shared-KV layer must have its source's head_dim", i);
        layers_[i].n_kv_heads = s.n_kv_heads;
        layers_[i].head_dim = s.head_dim;
        if (layers_[i].n_heads == 0) layers_[i].n_heads = s.n_heads;
        if (layers_[i].n_heads % s.n_kv_heads != 0)
          fail("n_heads must be a multiple of n_kv_heads", i);
      }
      if (layers_[i].kind == attention_kind::sliding && layers_[i].window == 0)
        fail("a sliding-window layer needs window > 0", i);
    }
  }

  // Every layer owns a global-attention KV cache with the same shape.
  static layer_map dense(std::size_t n_layers, std::uint32_t n_kv_heads, std::uint32_t head_dim,
                         std::uint32_t n_heads = 0) {
    std::vector<layer_info> v(n_layers);
    for (auto& l : v) {
      l.n_kv_heads = n_kv_heads;
      l.head_dim = head_dim;
      l.n_heads = n_heads;
    }
    return layer_map(std::move(v));
  }

  // Hybrid model: layer i owns a KV cache when i % every == offset; the other layers have no
  // attention cache (e.g. 64 layers, every = 4, offset = 3: KV on layers 3, 7, ..., 63).
  static layer_map hybrid(std::size_t n_layers, std::size_t every, std::size_t offset,
                          std::uint32_t n_kv_heads, std::uint32_t head_dim,
                          std::uint32_t n_heads = 0) {
    if (every == 0) throw std::invalid_argument("error: every must be > 0 (layer_map::hybrid)");
    std::vector<layer_info> v(n_layers);
    for (std::size_t i = 0; i < n_layers; ++i) {
      v[i].has_kv = i % every == offset;
      if (v[i].has_kv) {
        v[i].n_kv_heads = n_kv_heads;
        v[i].head_dim = head_dim;
        v[i].n_heads = n_heads;
      }
    }
    return layer_map(std::move(v));
  }

  std::size_t n_layers() const noexcept { return layers_.size(); }
  std::size_t n_kv_layers() const noexcept { return kv_layers_.size(); }
  const layer_info& operator[](std::size_t layer) const { return layers_.at(layer); }
  const std::vector<layer_info>& layers() const noexcept { return layers_; }

  // KV-layer ordinal of a layer that owns a cache, or -1.
  int kv_ordinal(std::size_t layer) const { return ordinal_.at(layer); }
  // Raw layer index of the ordinal-th layer that owns a cache.
  int kv_layer(std::size_t ordinal) const { return kv_layers_.at(ordinal); }
  // The layer whose cache `layer` reads: itself, its kv_source, or -1 (no attention cache).
  int cache_layer(std::size_t layer) const {
    const layer_info& l = layers_.at(layer);
    return l.has_kv ? static_cast<int>(layer) : l.kv_source;
  }

  friend bool operator==(const layer_map& a, const layer_map& b) { return a.layers_ == b.layers_; }

 private:
  [[noreturn]] static void fail(const char* what, std::size_t layer) {
    throw std::invalid_argument(std::string("error: ") + what + " (layer_map, layer " +
                                std::to_string(layer) + ")");
  }

  std::vector<layer_info> layers_;
  std::vector<int> kv_layers_;  // raw index of each KV layer, by ordinal
  std::vector<int> ordinal_;    // KV ordinal of each raw layer, or -1
};

}  // namespace strata

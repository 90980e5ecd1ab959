#include "model/model.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "error.hpp"
#include "io/quant.hpp"
#include "kv/kv.hpp"
#include "model/matmul.hpp"
#include "model/rope.hpp"
#include "model/thread_pool.hpp"

namespace engine {

namespace {

// A matrix tensor with ne[0] == n_in and ne[1] == n_out (2-D).
const tensor* matrix(const gguf& f, const std::string& name, int64_t n_in, int64_t n_out) {
  const tensor& t = f.get_tensor(name);
  if (t.ne[0] != n_in || t.rows() != n_out)
    throw make_error("tensor " + name + " has shape [" + std::to_string(t.ne[0]) + ", " +
                         std::to_string(t.rows()) + "], expected [" + std::to_string(n_in) + ", " +
                         std::to_string(n_out) + "]",
                     f.path());
  return &t;
}

// A vector tensor dequantized to f32 (empty when absent and optional).
std::vector<float> vec(const gguf& f, const std::string& name, int64_t n, bool required) {
  const tensor* t = f.find_tensor(name);
  if (!t) {
    if (required) f.get_tensor(name);  // throws naming it
    return {};
  }
  const int64_t count = t->ne[0] * t->rows();
  if (count != n)
    throw make_error("tensor " + name + " has " + std::to_string(count) + " values, expected " +
                         std::to_string(n),
                     f.path());
  std::vector<float> out(static_cast<size_t>(n));
  dequantize(t->type, t->data, out.data(), n);
  return out;
}

// y = x / sqrt(mean(x^2) + eps) * w over rows of `dim` values (in place allowed).
void rms_norm(const float* x, float* y, int64_t rows, int dim, const float* w, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* a = x + r * dim;
    float* b = y + r * dim;
    double ss = 0.0;
    for (int i = 0; i < dim; ++i) ss += double(a[i]) * double(a[i]);
    const float scale = 1.0f / std::sqrt(float(ss / dim) + eps);
    for (int i = 0; i < dim; ++i) b[i] = a[i] * scale * w[i];
  }
}

void add_bias(float* y, int64_t rows, const std::vector<float>& b) {
  if (b.empty()) return;
  const size_t dim = b.size();
  for (int64_t r = 0; r < rows; ++r)
    for (size_t i = 0; i < dim; ++i) y[r * dim + i] += b[i];
}

void check_finite(const float* x, int64_t n, const std::string& where) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) throw make_error("non-finite activation (NaN or Inf)", where);
}

size_t tensor_params(const tensor& t) { return size_t(t.ne[0] * t.rows()); }

}  // namespace

model::model(std::shared_ptr<const gguf> file) : file_(std::move(file)) {
  const gguf& f = *file_;
  config_ = model_config::from_gguf(f);
  const model_config& c = config_;
  tok_embd_ = matrix(f, "token_embd.weight", c.n_embd, c.n_vocab);
  output_ =
      f.find_tensor("output.weight") ? matrix(f, "output.weight", c.n_embd, c.n_vocab) : tok_embd_;
  output_norm_ = vec(f, "output_norm.weight", c.n_embd, true);
  if (f.find_tensor("rope_freqs.weight"))
    rope_freqs_ = vec(f, "rope_freqs.weight", c.n_rot / 2, true);
  const bool qk_norm = c.architecture == arch::qwen3 || c.architecture == arch::gemma3;
  const bool post_norms = c.architecture == arch::gemma3;
  layers_.resize(c.n_layer);
  for (int il = 0; il < c.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    layer_weights& L = layers_[il];
    L.attn_q = matrix(f, p + "attn_q.weight", c.n_embd, c.q_dim());
    L.attn_k = matrix(f, p + "attn_k.weight", c.n_embd, c.k_dim());
    L.attn_v = matrix(f, p + "attn_v.weight", c.n_embd, c.v_dim());
    L.attn_output = matrix(f, p + "attn_output.weight", c.n_head * c.head_v, c.n_embd);
    L.ffn_gate = matrix(f, p + "ffn_gate.weight", c.n_embd, c.n_ff);
    L.ffn_up = matrix(f, p + "ffn_up.weight", c.n_embd, c.n_ff);
    L.ffn_down = matrix(f, p + "ffn_down.weight", c.n_ff, c.n_embd);
    L.attn_norm = vec(f, p + "attn_norm.weight", c.n_embd, true);
    L.ffn_norm = vec(f, p + "ffn_norm.weight", c.n_embd, true);
    L.q_norm = vec(f, p + "attn_q_norm.weight", c.head_k, qk_norm);
    L.k_norm = vec(f, p + "attn_k_norm.weight", c.head_k, qk_norm);
    L.post_attn_norm = vec(f, p + "post_attention_norm.weight", c.n_embd, post_norms);
    L.post_ffn_norm = vec(f, p + "post_ffw_norm.weight", c.n_embd, post_norms);
    L.bq = vec(f, p + "attn_q.bias", c.q_dim(), false);
    L.bk = vec(f, p + "attn_k.bias", c.k_dim(), false);
    L.bv = vec(f, p + "attn_v.bias", c.v_dim(), false);
  }
  for (const tensor& t : f.tensors()) {
    n_params_ += int64_t(tensor_params(t));
    weight_bytes_ += t.nbytes;
  }
}

size_t model::step_weight_bytes() const {
  return output_ == tok_embd_ ? weight_bytes_ : weight_bytes_ - tok_embd_->nbytes;
}

strata::layer_map model::layers() const {
  std::vector<strata::layer_info> v(static_cast<size_t>(config_.n_layer));
  for (int il = 0; il < config_.n_layer; ++il) {
    strata::layer_info& l = v[size_t(il)];
    l.has_kv = true;
    l.n_heads = uint32_t(config_.n_head);
    l.n_kv_heads = uint32_t(config_.n_head_kv);
    l.head_dim = uint32_t(config_.head_k);
    if (config_.layers[size_t(il)].window > 0) {
      l.kind = strata::attention_kind::sliding;
      l.window = uint32_t(config_.layers[size_t(il)].window);
    }
  }
  return strata::layer_map(std::move(v));
}

void model::forward(std::span<const int32_t> tokens, int pos0, kv_store& kv, thread_pool& pool,
                    float* logits, int n_logits, const forward_options& opt) {
  const int n = int(tokens.size());
  if (n == 0) return;
  if (pos0 < 0 || pos0 > kv.size())
    throw make_error("position " + std::to_string(pos0) + " is past the cache's " +
                         std::to_string(kv.size()) + " tokens",
                     "model::forward");
  if (int64_t(pos0) + n > kv.capacity())
    throw make_error("context overflow: " + std::to_string(pos0 + n) + " tokens do not fit in " +
                         std::to_string(kv.capacity()),
                     "model::forward");
  if (!logits) n_logits = 0;
  if (n_logits < 0 || n_logits > n) throw make_error("bad n_logits", "model::forward");
  for (int32_t t : tokens)
    if (t < 0 || t >= config_.n_vocab)
      throw make_error("token id " + std::to_string(t) + " outside the vocabulary of " +
                           std::to_string(config_.n_vocab),
                       "model::forward");
  if (pos0 < kv.size()) kv.truncate(pos0);  // the new tokens replace what followed pos0
  const auto t_start = opt.prof ? profile::clock::now() : profile::clock::time_point{};
  if (opt.prof && opt.prof->layers.size() != size_t(config_.n_layer))
    opt.prof->layers.assign(size_t(config_.n_layer), {});
  const int batch = std::max(1, opt.n_batch);
  const int first_logit = n - n_logits;  // index of the first token whose logits are wanted
  for (int b = 0; b < n; b += batch) {
    const int m = std::min(batch, n - b);
    // Logits rows of this batch: tokens b+j with b+j >= first_logit.
    const int first = std::max(0, first_logit - b);
    float* out = (first < m && logits) ? logits + size_t(b + first - first_logit) * config_.n_vocab
                                       : nullptr;
    const segment seg{&kv, pos0 + b, 0, m};
    run_batch(tokens.data() + b, m, {&seg, 1}, pool, out, out ? first : m, opt, false);
  }
  if (opt.prof) {
    opt.prof->wall += profile::since(t_start);
    opt.prof->tokens += n;
  }
}

void model::decode(std::span<const decode_item> items, thread_pool& pool,
                   const forward_options& opt) {
  const int n = int(items.size());
  if (n == 0) return;
  // Every item is checked before any cache changes.
  for (int i = 0; i < n; ++i) {
    const decode_item& it = items[size_t(i)];
    const std::string where = "model::decode, item " + std::to_string(i);
    if (!it.kv) throw make_error("no cache", where);
    for (int j = 0; j < i; ++j)
      if (items[size_t(j)].kv == it.kv)
        throw make_error("items " + std::to_string(j) + " and " + std::to_string(i) +
                             " share a cache (each sequence needs its own)",
                         "model::decode");
    if (it.pos < 0 || it.pos > it.kv->size())
      throw make_error("position " + std::to_string(it.pos) + " is past the cache's " +
                           std::to_string(it.kv->size()) + " tokens",
                       where);
    if (int64_t(it.pos) + 1 > it.kv->capacity())
      throw make_error("context overflow: " + std::to_string(it.pos + 1) +
                           " tokens do not fit in " + std::to_string(it.kv->capacity()),
                       where);
    if (it.token < 0 || it.token >= config_.n_vocab)
      throw make_error("token id " + std::to_string(it.token) + " outside the vocabulary of " +
                           std::to_string(config_.n_vocab),
                       where);
  }
  const auto t_start = opt.prof ? profile::clock::now() : profile::clock::time_point{};
  if (opt.prof && opt.prof->layers.size() != size_t(config_.n_layer))
    opt.prof->layers.assign(size_t(config_.n_layer), {});
  const size_t V = size_t(config_.n_vocab);
  // Batches of at most n_batch items, as forward splits its tokens.
  const int batch = std::max(1, opt.n_batch);
  std::vector<int32_t> tokens;
  std::vector<segment> segs;
  for (int b = 0; b < n; b += batch) {
    const int m = std::min(batch, n - b);
    tokens.clear();
    segs.clear();
    for (int i = 0; i < m; ++i) {
      const decode_item& it = items[size_t(b + i)];
      if (it.pos < it.kv->size()) it.kv->truncate(it.pos);
      tokens.push_back(it.token);
      segs.push_back({it.kv, it.pos, i, 1});
    }
    logits_.resize(size_t(m) * V);
    run_batch(tokens.data(), m, segs, pool, logits_.data(), 0, opt, true);
    for (int i = 0; i < m; ++i)
      if (float* out = items[size_t(b + i)].logits)
        std::copy_n(logits_.data() + size_t(i) * V, V, out);
  }
  if (opt.prof) {
    opt.prof->wall += profile::since(t_start);
    opt.prof->tokens += n;
  }
}

void model::run_batch(const int32_t* tokens, int n, std::span<const segment> segs,
                      thread_pool& pool, float* logits, int first_logit, const forward_options& opt,
                      bool invariant) {
  const model_config& c = config_;
  const size_t E = size_t(c.n_embd);
  x_.resize(n * E);
  xb_.resize(n * E);
  q_.resize(size_t(n) * c.q_dim());
  k_.resize(size_t(n) * c.k_dim());
  v_.resize(size_t(n) * c.v_dim());
  att_.resize(size_t(n) * c.n_head * c.head_v);
  o_.resize(n * E);
  gate_.resize(size_t(n) * c.n_ff);
  up_.resize(size_t(n) * c.n_ff);

  for (int i = 0; i < n; ++i) get_row(*tok_embd_, tokens[i], x_.data() + i * E);
  if (c.embd_scale != 1.0f)
    for (float& a : x_) a *= c.embd_scale;

  std::vector<int> pos(static_cast<size_t>(n));
  for (const segment& sg : segs)
    std::iota(pos.begin() + sg.first, pos.begin() + sg.first + sg.n, sg.pos0);

  // The quantizing matmuls turn NaN inputs into finite garbage, so every matmul input is
  // checked (a cheap pass next to the matmul) as well as the residual stream.
  auto check = [&](const std::vector<float>& v, size_t count, int il, const char* stage) {
    for (size_t i = 0; i < count; ++i) {
      if (std::isfinite(v[i])) continue;
      std::string where = "layer " + std::to_string(il);
      if (segs.size() == 1) {
        where += ", positions " + std::to_string(segs[0].pos0) + ".." +
                 std::to_string(segs[0].pos0 + n - 1);
      } else {
        const size_t t = i / (count / size_t(n));  // the token whose row holds it
        where += ", item " + std::to_string(t) + ", position " + std::to_string(pos[t]);
      }
      throw make_error("non-finite activation (NaN or Inf) in " + std::string(stage), where);
    }
  };
  const activations act = opt.exact    ? activations::exact
                          : opt.act_q8 ? activations::q8
                                       : activations::fine;
  profile* const prof = opt.prof;
  profile::part unused;
  for (int il = 0; il < c.n_layer; ++il) {
    const layer_weights& L = layers_[size_t(il)];
    profile::part& P = prof ? prof->layers[size_t(il)] : unused;
    const profile::part before = P;
    const auto t_layer = prof ? profile::clock::now() : profile::clock::time_point{};
    auto mm = [&](const tensor& W, const float* x, float* y) {
      timed(prof, &profile::part::matmul, P, [&] { matmul(W, x, n, y, pool, act, invariant); });
    };
    // Weights that read the same activations: one quantization, one parallel_for.
    auto mm_all = [&](std::span<const matmul_output> outs, const float* x) {
      timed(prof, &profile::part::matmul, P, [&] { matmul(outs, x, n, pool, act, invariant); });
    };
    // Attention.
    rms_norm(x_.data(), xb_.data(), n, c.n_embd, L.attn_norm.data(), c.rms_eps);
    check(xb_, n * E, il, "attn_norm");
    const matmul_output qkv[] = {
        {L.attn_q, q_.data()}, {L.attn_k, k_.data()}, {L.attn_v, v_.data()}};
    mm_all(qkv, xb_.data());
    add_bias(q_.data(), n, L.bq);
    add_bias(k_.data(), n, L.bk);
    add_bias(v_.data(), n, L.bv);
    if (!L.q_norm.empty()) {
      rms_norm(q_.data(), q_.data(), int64_t(n) * c.n_head, c.head_k, L.q_norm.data(), c.rms_eps);
      rms_norm(k_.data(), k_.data(), int64_t(n) * c.n_head_kv, c.head_k, L.k_norm.data(),
               c.rms_eps);
    }
    const rope_table rope(pos.data(), n, c.n_rot, c.layers[size_t(il)], rope_freqs_);
    rope.apply(q_.data(), c.n_head, c.head_k, c.rope);
    rope.apply(k_.data(), c.n_head_kv, c.head_k, c.rope);
    for (const segment& sg : segs) {
      const float* q = q_.data() + size_t(sg.first) * c.q_dim();
      const float* k = k_.data() + size_t(sg.first) * c.k_dim();
      const float* v = v_.data() + size_t(sg.first) * c.v_dim();
      float* att = att_.data() + size_t(sg.first) * c.n_head * c.head_v;
      timed(prof, &profile::part::kv_append, P, [&] {
        sg.kv->prepare(il, sg.pos0, sg.n, q, k);
        sg.kv->append(il, sg.pos0, sg.n, k, v);
      });
      timed(prof, &profile::part::attention, P,
            [&] { sg.kv->attend(il, sg.pos0, sg.n, q, att, c.attn_scale, pool); });
    }
    check(att_, att_.size(), il, "attention");
    mm(*L.attn_output, att_.data(), o_.data());
    if (!L.post_attn_norm.empty())
      rms_norm(o_.data(), o_.data(), n, c.n_embd, L.post_attn_norm.data(), c.rms_eps);
    for (size_t i = 0; i < n * E; ++i) x_[i] += o_[i];

    // Feed-forward.
    rms_norm(x_.data(), xb_.data(), n, c.n_embd, L.ffn_norm.data(), c.rms_eps);
    check(xb_, n * E, il, "ffn_norm");
    const matmul_output gate_up[] = {{L.ffn_gate, gate_.data()}, {L.ffn_up, up_.data()}};
    mm_all(gate_up, xb_.data());
    const size_t nf = size_t(n) * c.n_ff;
    if (c.act == ffn_activation::silu) {
      for (size_t i = 0; i < nf; ++i) {
        const float g = gate_[i];
        gate_[i] = g / (1.0f + std::exp(-g)) * up_[i];
      }
    } else {
      constexpr float k0 = 0.7978845608028654f;  // sqrt(2 / pi)
      for (size_t i = 0; i < nf; ++i) {
        const float g = gate_[i];
        gate_[i] = 0.5f * g * (1.0f + std::tanh(k0 * (g + 0.044715f * g * g * g))) * up_[i];
      }
    }
    check(gate_, nf, il, "feed-forward");
    mm(*L.ffn_down, gate_.data(), o_.data());
    if (!L.post_ffn_norm.empty())
      rms_norm(o_.data(), o_.data(), n, c.n_embd, L.post_ffn_norm.data(), c.rms_eps);
    for (size_t i = 0; i < n * E; ++i) x_[i] += o_[i];
    check(x_, n * E, il, "the residual stream");
    if (prof)
      P.other += profile::since(t_layer) - (P.matmul - before.matmul) -
                 (P.kv_append - before.kv_append) - (P.attention - before.attention);
  }

  if (!logits || first_logit >= n) return;
  const auto t_head = prof ? profile::clock::now() : profile::clock::time_point{};
  profile::part& H = prof ? prof->head : unused;
  const double head_matmul = H.matmul;
  const int m = n - first_logit;
  float* xl = x_.data() + size_t(first_logit) * E;
  rms_norm(xl, xl, m, c.n_embd, output_norm_.data(), c.rms_eps);
  timed(prof, &profile::part::matmul, H,
        [&] { matmul(*output_, xl, m, logits, pool, act, invariant); });
  const size_t nl = size_t(m) * c.n_vocab;
  if (c.logit_softcap > 0)
    for (size_t i = 0; i < nl; ++i)
      logits[i] = c.logit_softcap * std::tanh(logits[i] / c.logit_softcap);
  check_finite(logits, int64_t(nl), "logits");
  if (prof) H.other += profile::since(t_head) - (H.matmul - head_matmul);
}

}  // namespace engine

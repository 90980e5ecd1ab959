#include "run/generate.hpp"

#include <algorithm>

#include "error.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"

namespace engine {

session::session(model& m, const tokenizer& tok, kv_store& kv, thread_pool& pool,
                 forward_options fwd)
    : m_(m),
      tok_(tok),
      kv_(kv),
      pool_(pool),
      fwd_(fwd),
      logits_(static_cast<size_t>(m.config().n_vocab)) {}

void session::ensure_room(int n, generation_stats& st) {
  const int cap = kv_.capacity();
  if (int(tokens_.size()) + n <= cap) return;
  if (!shift_ || n > cap / 2)
    throw make_error("context full: " + std::to_string(tokens_.size() + size_t(n)) +
                         " tokens do not fit in -c " + std::to_string(cap) +
                         (shift_ ? "" : " (use a larger -c or --ctx-shift)"),
                     "session");
  // Context shift: keep the first n_keep tokens and the newest half of the rest. The cache
  // drops the range in place and re-RoPEs the later keys (kv_store::erase); a cache that
  // cannot is re-filled from the kept tokens.
  const int keep = std::min(n_keep_, int(tokens_.size()));
  const int rest = int(tokens_.size()) - keep;
  const int drop = std::max(rest / 2, int(tokens_.size()) + n - cap);
  st.n_shifted += drop;
  if (kv_.erase(keep, keep + drop)) {
    tokens_.erase(tokens_.begin() + keep, tokens_.begin() + keep + drop);
    return;
  }
  std::vector<int32_t> kept(tokens_.begin(), tokens_.begin() + keep);
  kept.insert(kept.end(), tokens_.begin() + keep + drop, tokens_.end());
  kv_.truncate(0);
  tokens_.clear();
  if (!kept.empty()) {
    m_.forward(kept, 0, kv_, pool_, logits_.data(), 1, fwd_);
    st.n_recomputed += int(kept.size());
    tokens_ = std::move(kept);
  }
}

const std::vector<float>& session::prefill(const std::vector<int32_t>& tokens,
                                           generation_stats& st) {
  if (tokens.empty()) throw make_error("empty prompt", "session::prefill");
  // Reuse the common prefix, but always run at least the last token to get its logits.
  size_t common = 0;
  while (common < tokens_.size() && common < tokens.size() && tokens_[common] == tokens[common])
    ++common;
  if (common == tokens.size()) --common;
  kv_.truncate(int(common));
  if (kv_.size() < int(common)) common = size_t(kv_.size());  // the cache had to start over
  tokens_.resize(common);
  std::vector<int32_t> rest(tokens.begin() + long(common), tokens.end());
  if (int(tokens.size()) > kv_.capacity()) {
    if (!shift_)
      throw make_error("prompt of " + std::to_string(tokens.size()) +
                           " tokens does not fit in -c " + std::to_string(kv_.capacity()),
                       "session");
    // Keep the newest tokens that fit in half the context.
    const size_t keep = size_t(kv_.capacity() / 2);
    st.n_shifted += int(tokens.size() - keep);
    rest.assign(tokens.end() - long(keep), tokens.end());
    tokens_.clear();
    kv_.truncate(0);
    common = 0;
  }
  ensure_room(int(rest.size()), st);
  const double t0 = cli::now_s();
  m_.forward(rest, int(tokens_.size()), kv_, pool_, logits_.data(), 1, fwd_);
  st.prompt_s += cli::now_s() - t0;
  st.n_prompt += int(rest.size());
  st.n_reused += int(common);
  tokens_.insert(tokens_.end(), rest.begin(), rest.end());
  return logits_;
}

std::vector<int32_t> session::generate(sampler& smp, int n_predict,
                                       const std::function<bool(const std::string&)>& on_piece,
                                       generation_stats& st) {
  std::vector<int32_t> out;
  const int n_vocab = m_.config().n_vocab;
  const double t0 = cli::now_s();
  for (int i = 0; i < n_predict; ++i) {
    const auto t_sample = fwd_.prof ? profile::clock::now() : profile::clock::time_point{};
    const int32_t t = smp.sample(logits_.data(), n_vocab);
    if (fwd_.prof) {
      const double dt = profile::since(t_sample);
      fwd_.prof->sampling += dt;
      fwd_.prof->wall += dt;
    }
    if (tok_.is_eog(t)) {
      st.stopped_eog = true;
      break;
    }
    out.push_back(t);
    ++st.n_gen;
    const bool more = !on_piece || on_piece(tok_.token_to_piece(t, false));
    // Every emitted token goes into the cache, so the next turn continues from it.
    ensure_room(1, st);
    m_.forward({&t, 1}, int(tokens_.size()), kv_, pool_, logits_.data(), 1, fwd_);
    tokens_.push_back(t);
    if (!more) break;
  }
  st.gen_s += cli::now_s() - t0;
  return out;
}

}  // namespace engine

// engine::profile -- where the time of forward passes (and sampling) goes, timed on the calling
// thread's critical path (--profile in strata-chat, strata-bench and strata-perplexity).
//
//   weight matmuls   every matmul of the layers and the output head (the pool's threads
//                    included: the caller waits for them)
//   KV append        rotation and encoding of the new K/V rows (strata's append)
//   attention        strata's attend: query rotation, scores, softmax, V sums, inverse
//                    rotation: one fused kernel loop, so one line
//   sampling         picking the next token from the logits
//   other            the rest of the forward pass (norms, RoPE, activation functions, residual
//                    adds, the finiteness checks, embedding rows), computed as wall - the parts
//                    above (per layer: the layer's time - its parts)
// A null profile pointer in forward_options costs a branch per region and no clock reads.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace engine {

struct profile {
  struct part {
    double matmul = 0, kv_append = 0, attention = 0, other = 0;
  };
  std::vector<part> layers;  // per layer (forward passes)
  part head;                 // output norm + logits matmul (matmul), softcap and checks (other)
  double sampling = 0;
  double wall = 0;  // seconds inside forward passes and sampling
  long tokens = 0;  // tokens through forward passes

  part totals() const;  // summed over layers and head; other = wall - the rest
  // Markdown table (per layer on request) with seconds, ms per token and % of wall.
  std::string table(bool per_layer) const;
  std::string json() const;  // one line

  using clock = std::chrono::steady_clock;
  static double since(clock::time_point t0) {
    return std::chrono::duration<double>(clock::now() - t0).count();
  }
};

// Adds the seconds f() takes to *slot when p is not null; just calls f() otherwise.
template <class F>
void timed(profile* p, double profile::part::*slot, profile::part& where, F&& f) {
  if (!p) {
    f();
    return;
  }
  const auto t0 = profile::clock::now();
  f();
  where.*slot += profile::since(t0);
}

}  // namespace engine

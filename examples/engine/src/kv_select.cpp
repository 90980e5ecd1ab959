#include "kv_select.hpp"

#include "error.hpp"
#include "model.hpp"

namespace engine {

std::string kv_options::policy_string() const {
  if (!policy.empty()) return policy;
  return "-ctk " + ctk + " -ctv " + ctv;
}

std::unique_ptr<kv_store> make_kv(const model& m, int n_ctx, const kv_options& o) {
  if (o.reference || (o.policy.empty() && o.ctk == "f32" && o.ctv == "f32"))
    return std::make_unique<kv_f32>(m.config(), n_ctx);
  throw make_error("KV cache '" + o.policy_string() + "' needs strata's runtime cache", "make_kv");
}

}  // namespace engine

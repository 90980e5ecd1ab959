#include "kv/kv_select.hpp"

#include "error.hpp"
#include "kv/kv_strata.hpp"
#include "model/model.hpp"

namespace engine {

std::string kv_options::policy_string() const {
  if (!policy.empty()) return policy;
  return "-ctk " + ctk + " -ctv " + ctv;
}

std::unique_ptr<kv_store> make_kv(const model& m, int n_ctx, const kv_options& o) {
  if (o.reference) return std::make_unique<kv_f32>(m.config(), n_ctx);
  return std::make_unique<kv_strata>(m, n_ctx, o.policy_string(), o.max_batch);
}

}  // namespace engine

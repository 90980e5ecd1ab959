#include "serve/metrics.hpp"

#include <cstdio>

#include "run/memory_plan.hpp"
#include "serve/scheduler.hpp"

namespace engine::serve {

namespace {

void metric(std::string& out, const char* name, const char* type, const char* help, double value) {
  char line[64];
  std::snprintf(line, sizeof line, "%.17g", value);
  out.append("# HELP strata_").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE strata_").append(name).append(" ").append(type).append("\n");
  out.append("strata_").append(name).append(" ").append(line).append("\n");
}

template <class F>
void slot_metric(std::string& out, const char* name, const char* help,
                 const std::vector<slot_info>& slots, F value) {
  out.append("# HELP strata_").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE strata_").append(name).append(" gauge\n");
  for (const slot_info& s : slots) {
    char line[96];
    std::snprintf(line, sizeof line, "{slot=\"%d\"} %.17g\n", s.id, double(value(s)));
    out.append("strata_").append(name).append(line);
  }
}

}  // namespace

std::string prometheus_text(const server_metrics& m, const std::vector<slot_info>& slots,
                            int queued) {
  std::string out;
  const double prompt_s = double(m.prompt_us.load()) / 1e6;
  const double step_s = double(m.step_us.load()) / 1e6;
  metric(out, "requests_total", "counter", "Generation requests accepted.",
         double(m.requests.load()));
  metric(out, "requests_rejected_total", "counter", "Requests refused with 503.",
         double(m.rejected.load()));
  metric(out, "errors_total", "counter", "Responses with an error status.",
         double(m.errors.load()));
  metric(out, "prompt_tokens_total", "counter", "Prompt tokens computed.",
         double(m.prompt_tokens.load()));
  metric(out, "prompt_tokens_reused_total", "counter", "Prompt tokens reused from a slot cache.",
         double(m.reused_tokens.load()));
  metric(out, "tokens_generated_total", "counter", "Tokens generated.",
         double(m.gen_tokens.load()));
  metric(out, "context_shift_tokens_total", "counter", "Tokens dropped by context shifts.",
         double(m.shifted_tokens.load()));
  metric(out, "prompt_seconds_total", "counter", "Seconds spent in prompt prefill.", prompt_s);
  metric(out, "generation_seconds_total", "counter", "Seconds spent in generation steps.", step_s);
  metric(out, "prompt_tokens_per_second", "gauge", "Prompt tokens per prefill second.",
         prompt_s > 0 ? double(m.prompt_tokens.load()) / prompt_s : 0.0);
  metric(out, "generated_tokens_per_second", "gauge",
         "Generated tokens per generation-step second (all slots together).",
         step_s > 0 ? double(m.gen_tokens.load()) / step_s : 0.0);
  metric(out, "requests_queued", "gauge", "Requests waiting for a slot.", double(queued));
  int busy = 0;
  uint64_t bytes = 0, f16 = 0;
  double bits = 0;
  for (const slot_info& s : slots) {
    busy += s.busy ? 1 : 0;
    bytes += s.bytes;
    f16 += s.f16_bytes;
    bits += s.bits_per_value;
  }
  metric(out, "slots_busy", "gauge", "Slots running a request.", double(busy));
  metric(out, "slots_total", "gauge", "Slots.", double(slots.size()));
  slot_metric(out, "kv_cache_bytes", "KV cache bytes of a slot (its full context).", slots,
              [](const slot_info& s) { return s.bytes; });
  slot_metric(out, "kv_cache_tokens", "Tokens held in a slot's KV cache.", slots,
              [](const slot_info& s) { return s.n_cached; });
  slot_metric(out, "kv_bits_per_value", "Bits per stored K/V value of a slot's cache.", slots,
              [](const slot_info& s) { return s.bits_per_value; });
  metric(out, "kv_cache_bytes_total", "gauge", "KV cache bytes of all slots.", double(bytes));
  metric(out, "kv_cache_f16_bytes_total", "gauge", "What f16 K/V would take for all slots.",
         double(f16));
  metric(out, "kv_bits_per_value_mean", "gauge", "Bits per K/V value, mean over slots.",
         slots.empty() ? 0.0 : bits / double(slots.size()));
  const resident_set rss = process_rss();
  metric(out, "process_resident_bytes", "gauge", "Resident set size of the server.",
         double(rss.now));
  metric(out, "process_resident_peak_bytes", "gauge", "Peak resident set size.", double(rss.peak));
  return out;
}

}  // namespace engine::serve

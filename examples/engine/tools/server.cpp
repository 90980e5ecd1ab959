// strata-server: serves a GGUF model over HTTP (OpenAI and Ollama APIs) from several slots, each
// with its own compressed KV cache. Flags follow llama-server: -c is the total context, split
// across the -np slots. SIGTERM/SIGINT: stop accepting, answer what was taken, exit 0.
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "error.hpp"
#include "model/thread_pool.hpp"
#include "run/cli.hpp"
#include "run/memory_plan.hpp"
#include "run/process_plan.hpp"
#include "serve/http_server.hpp"
#include "serve/prompt.hpp"

int main(int argc, char** argv) {
  // Signals are taken by one thread (sigwait below), so every thread started later blocks them;
  // a client that closes its socket must not kill the server (the HTTP library sends with flags
  // 0, so a write to a closed socket raises SIGPIPE).
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  return engine::cli::run_tool([&] {
    namespace cli = engine::cli;
    namespace serve = engine::serve;
    std::string model_path = cli::default_model_path();
    int n_slots = 1, threads = 0;
    serve::scheduler_options so;
    so.kv.ctk = "q8_0";
    so.kv.ctv = "turbo3";
    serve::http_options ho;
    cli::flags f("strata-server", "usage: strata-server [options]",
                 "Endpoints: POST /v1/chat/completions /v1/completions, GET /v1/models; POST\n"
                 "/api/chat /api/generate /api/show, GET /api/tags /api/ps /api/version; GET\n"
                 "/health /metrics /slots, POST /slots/{id}?action=save|restore|erase\n"
                 "(docs/server.md).\n");
    cli::model_flag(f, model_path);
    cli::context_request ctx;
    cli::context_flag(f, ctx, "total context in tokens, split across the slots");
    cli::mem_flags(f, ctx);
    f.integer({"-np", "--parallel"}, "N", "slots (requests served at once), in {range} (default 1)",
              1, 256, [&](int64_t v) { n_slots = int(v); });
    cli::threads_flag(f, threads);
    cli::cache_type_flags(f, so.kv);
    cli::kv_policy_flag(f, so.kv);
    f.text({"--host"}, "ADDR", "address to listen on (default 127.0.0.1)",
           [&](std::string v) { ho.host = std::move(v); });
    f.integer({"--port"}, "N", "port, in {range} (default 8080; 0: any free port)", 0, 65535,
              [&](int64_t v) { ho.port = int(v); });
    f.text({"--api-key"}, "KEY",
           "require \"Authorization: Bearer KEY\" (all endpoints but /health and /)",
           [&](std::string v) { ho.api_key = std::move(v); });
    f.integer({"--timeout"}, "S", "socket read/write timeout in seconds, in {range} (default 600)",
              1, 86400, [&](int64_t v) { ho.timeout_s = int(v); });
    f.integer({"--queue"}, "N",
              "requests that may wait for a slot, in {range} (default 64); more get 503", 0, 100000,
              [&](int64_t v) { so.queue = int(v); });
    f.on({"--ctx-shift", "--context-shift"},
         "when a slot's context is full, drop tokens after the request's n_keep (default 0;\n"
         "n_discard, default half the rest) and go on generating (default: finish_reason\n"
         "\"length\")",
         [&] { so.ctx_shift = true; });
    f.text({"--slot-save-path"}, "DIR", "directory of slot files (/slots/{id}?action=save)",
           [&](std::string v) { ho.slot_save_path = std::move(v); });
    f.text({"--cors"}, "ORIGIN", "send Access-Control-Allow-Origin: ORIGIN (default: no CORS)",
           [&](std::string v) { ho.cors = std::move(v); });
    if (!f.parse(argc, argv)) return 0;
    so.kv.max_batch = so.fwd.n_batch;
    if (!ho.slot_save_path.empty() && !std::filesystem::is_directory(ho.slot_save_path))
      f.fail("--slot-save-path " + ho.slot_save_path + " is not a directory");

    auto lm = cli::load(model_path, true);
    engine::thread_pool pool(threads);
    engine::model& net = *lm.net;
    // An auto policy is chosen (or loaded from the tune cache) for the context of one slot; for
    // -c auto at the model's trained context capped at 32K, as strata-chat does.
    const int n_ctx_train = net.config().n_ctx_train > 0 ? net.config().n_ctx_train : 4096;
    cli::resolve_auto_policy(
        so.kv, lm, model_path,
        ctx.automatic ? std::min(n_ctx_train, 32768) : std::max(16, ctx.n_ctx / n_slots), pool);
    ho.threads = std::max(8, n_slots + std::min(so.queue, 256) + 4);
    // The whole process: a row of logits per slot and the decode step's rows; beside the pool,
    // the HTTP workers, the listener, the scheduler and the signal thread.
    engine::process_shape shape{.n_ctx = ctx.n_ctx / n_slots,
                                .n_seq = n_slots,
                                .n_batch = so.fwd.n_batch,
                                .logits_rows = n_slots,
                                .decode_rows = std::min(n_slots, so.fwd.n_batch),
                                .samplers = n_slots,
                                .threads = pool.size(),
                                .other_threads = ho.threads + 3};
    shape.resident_rest = engine::resident_rest(lm, 0);
    if (ctx.automatic)
      shape.n_ctx = cli::auto_context_or_fail(f, lm, so.kv, shape, ctx);
    else if (shape.n_ctx < 16)
      f.fail("-c " + std::to_string(ctx.n_ctx) + " over " + std::to_string(n_slots) +
             " slots leaves " + std::to_string(shape.n_ctx) + " tokens per slot (at least 16)");
    so.n_slots = n_slots;
    so.n_ctx = shape.n_ctx;
    const int n_ctx_total = ctx.automatic ? so.n_ctx * n_slots : ctx.n_ctx;
    cli::warn_sizes(threads, so.n_ctx, net.config());
    const uint64_t slot_kv = engine::kv_bytes(net, so.n_ctx, so.kv);
    engine::kv_options f16 = so.kv;
    f16.policy = "-ctk f16 -ctv f16";
    const uint64_t slot_f16 = engine::kv_bytes(net, so.n_ctx, f16);
    uint64_t planned = 0;
    {
      const engine::memory_plan plan = engine::process_plan(lm, so.kv, shape);
      planned = plan.total();
      if (ctx.print_plan) {
        cli::print_plan(plan, "strata-server", ctx);
        return 0;
      }
      cli::require_fits(plan, "strata-server", ctx);
    }
    const auto& c = net.config();
    std::fprintf(stderr,
                 "model: %s (%s, %d layers, %.1f M params), weights %s, loaded in %.0f ms\n",
                 model_path.c_str(), c.arch_name.c_str(), c.n_layer, double(net.n_params()) / 1e6,
                 cli::human_bytes(double(net.weight_bytes())).c_str(), lm.load_ms);
    std::fprintf(stderr,
                 "slots: %d x %d tokens (-c %d), KV %s: %s per slot, %s in total; f16 KV would "
                 "take %s (%s per slot)\n",
                 n_slots, so.n_ctx, n_ctx_total, so.kv.policy_string().c_str(),
                 cli::human_bytes(double(slot_kv)).c_str(),
                 cli::human_bytes(double(slot_kv * uint64_t(n_slots))).c_str(),
                 cli::human_bytes(double(slot_f16 * uint64_t(n_slots))).c_str(),
                 cli::human_bytes(double(slot_f16)).c_str());

    const engine::memory_available budget = cli::budget_of(ctx);
    std::fprintf(stderr, "memory: %s planned for the whole process, budget %s (%s; --mem-plan)\n",
                 cli::human_bytes(double(planned)).c_str(),
                 cli::human_bytes(double(budget.bytes)).c_str(), budget.source.c_str());
    serve::server_metrics metrics;
    serve::scheduler sched(net, *lm.tok, pool, so, metrics);
    std::string name = std::filesystem::path(model_path).filename().string();
    if (name.size() > 5 && name.substr(name.size() - 5) == ".gguf") name.resize(name.size() - 5);
    serve::model_context mc{net.file(),
                            *lm.tok,
                            sched,
                            name,
                            engine::chat_template_of(net.file()),
                            serve::has_chat_template(net.file())};
    serve::http_server http(mc, sched, metrics, ho);
    const int port = http.bind();
    std::fprintf(stderr, "listening on http://%s:%d (model '%s', %d threads%s)\n", ho.host.c_str(),
                 port, name.c_str(), pool.size(), ho.api_key.empty() ? "" : ", API key required");
    std::fflush(stderr);

    std::atomic<bool> signalled{false};
    std::thread signals([&] {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      if (signalled.exchange(true)) return;  // our own wake-up below
      std::fprintf(stderr, "signal %d: finishing the requests taken, then exiting\n", sig);
      http.stop();
    });
    http.listen();  // returns when every request taken has been answered
    sched.shutdown();
    // Wake the signal thread when listen() ended on its own (a bind loss): raise our own signal.
    if (!signalled.exchange(true)) pthread_kill(signals.native_handle(), SIGTERM);
    signals.join();
    std::fprintf(stderr, "stopped\n");
    return 0;
  });
}

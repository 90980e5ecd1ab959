// What a filled cache costs in resident memory: its one allocation, every slot written, adds
// exactly bytes() to the process's RSS, rounded up to whole pages, plus the small heap objects
// of the cache itself (its policy report and layer states: the same at every context), so the
// RSS difference between two contexts is the difference of their bytes() to a page (what
// strata::plan and the engine's --mem-plan predict). Each measurement runs in its own process
// (a fork of the same parent, so every one starts from the same heap), as the memory
// table measures one process per context. Linux: /proc/self/statm, fork.
#include <doctest/doctest.h>

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <strata/cache/runtime_kv_cache.hpp>
#include <strata/policy/parse.hpp>

#include "attention_reference.hpp"

namespace {

using namespace strata;

std::size_t page() { return std::size_t(sysconf(_SC_PAGESIZE)); }

// Resident bytes of this process.
std::size_t resident() {
  std::ifstream f("/proc/self/statm");
  std::size_t size = 0, res = 0;
  f >> size >> res;
  REQUIRE(f);
  return res * page();
}

struct measured {
  std::size_t bytes = 0, grown = 0, heap = 0;  // bytes(), RSS growth, heap bytes in use growth
};

// Builds a cache of n_ctx tokens for SmolLM2's shape (30 layers, 3 KV heads of 64, 9 query
// heads), fills every slot of every layer, and measures it.
measured fill(const std::string& policy, std::size_t n_ctx, const std::vector<float>& k,
              const std::vector<float>& v) {
  const layer_map m = layer_map::dense(30, 3, 64, 9);
  const std::size_t before = resident();
  const std::size_t heap_before = mallinfo2().uordblks;
  runtime_kv_cache c(m, parse_policy(policy), {.n_ctx = n_ctx});
  for (std::size_t l = 0; l < m.n_layers(); ++l) {
    for (std::size_t t = 0; t < n_ctx; t += 256)  // in batches, as the engine appends
      c.append(l, std::int64_t(t), &k[t * 3 * 64], &v[t * 3 * 64],
               std::min<std::size_t>(256, n_ctx - t));
    if (c.size(l) != n_ctx) return {};
  }
  return {c.bytes(), resident() - before, mallinfo2().uordblks - heap_before};
}

// fill() in a child process (a copy of this one: each measurement starts from the same state),
// after a first, smaller cache there.
measured fill_apart(const std::string& policy, std::size_t n_ctx, const std::vector<float>& k,
                    const std::vector<float>& v) {
  int fd[2];
  REQUIRE(pipe(fd) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fd[0]);
    measured r{};
    try {
      // Once first: the code and tables the policy's kernels use, the appends' scratch and the
      // heap pages a cache's own objects take become resident here, not in the measurement.
      (void)fill(policy, 256, k, v);
      r = fill(policy, n_ctx, k, v);
    } catch (...) {}
    const bool ok = write(fd[1], &r, sizeof r) == ssize_t(sizeof r);
    _exit(ok ? 0 : 1);
  }
  close(fd[1]);
  measured r{};
  const ssize_t got = read(fd[0], &r, sizeof r);
  close(fd[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  REQUIRE(got == ssize_t(sizeof r));
  REQUIRE(r.bytes != 0);
  return r;
}

}  // namespace

TEST_CASE("a filled cache adds its bytes() to the RSS, to the page, at every context") {
  REQUIRE(mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1);
  constexpr std::size_t max_ctx = 4096;
  const auto k = strata_test::gaussian(max_ctx * 3 * 64, 1);
  const auto v = strata_test::gaussian(max_ctx * 3 * 64, 2);
  (void)resident();  // the stream's own buffers, before the first measurement
  for (const std::string policy :
       {"-ctk f16 -ctv f16", "-ctk q8_0 -ctv turbo3", "-ctk turbo4 -ctv turbo4", "la7",
        "k=q8_0r;v=turbo5;recent=32"}) {
    std::vector<measured> runs;
    for (const std::size_t n_ctx : {1024, 1536, 2048, 3072, 4096}) {
      const measured r = fill_apart(policy, n_ctx, k, v);
      MESSAGE(policy, ", ", n_ctx, " tokens: bytes() ", r.bytes, ", RSS grew by ", r.grown,
              " (the cache's heap objects: ", r.heap, " bytes)");
      // The allocation's pages (its size plus malloc's header, rounded up), all written, to a
      // page (the cache's own heap objects reuse the first cache's pages).
      const std::size_t pages = (r.bytes + 16 + page() - 1) / page() * page();
      CHECK(r.grown >= pages);
      CHECK(r.grown <= pages + page());
      CHECK(r.heap < 64 * 1024);
      runs.push_back(r);
    }
    // The difference between two contexts, to a page.
    for (std::size_t i = 1; i < runs.size(); ++i) {
      const auto d_bytes = double(runs[i].bytes) - double(runs[i - 1].bytes);
      const auto d_rss = double(runs[i].grown) - double(runs[i - 1].grown);
      INFO(policy, ": bytes() grew by ", d_bytes, ", RSS by ", d_rss);
      CHECK(std::abs(d_rss - d_bytes) <= double(page()));
    }
  }
}

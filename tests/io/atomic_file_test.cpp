// strata::atomic_file: the new bytes appear whole or not at all, every write is checked, no
// temporary is left behind (commit, failure, destruction, the signal-cleanup registry), and
// concurrent writers of one path do not share a temporary.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <strata/cache/state_file.hpp>
#include <strata/io/atomic_file.hpp>

#include "../support/error_text.hpp"

namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const char* name) {
  const fs::path dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::size_t entries(const fs::path& dir) {
  return std::size_t(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// The message of f() run under a file size limit of `bytes` (SIGXFSZ ignored), which stands in
// for a full disk: write() fails with EFBIG past it.
template <class F> std::string under_file_size_limit(rlim_t bytes, F&& f) {
  struct rlimit old {};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old) == 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = bytes;
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  const std::string msg = strata_test::error_text(f);
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  return msg;
}

}  // namespace

TEST_CASE("commit replaces the file; without commit the old file stays and no temporary is left") {
  const fs::path dir = fresh_dir("strata_atomic_file_test_commit");
  const std::string path = (dir / "out.bin").string();
  {
    strata::atomic_file f(path);
    f.write("old", 3);
    f.commit();
  }
  CHECK(slurp(path) == "old");
  CHECK(entries(dir) == 1);
  {
    strata::atomic_file f(path);
    f.write("new bytes", 9);
    CHECK(entries(dir) == 2);  // the temporary, beside the old file
    CHECK(slurp(path) == "old");
  }  // destroyed without commit
  CHECK(slurp(path) == "old");
  CHECK(entries(dir) == 1);
  {
    strata::atomic_file f(path);
    f.write("xxxx tail", 9);
    const char head[4] = {'h', 'e', 'a', 'd'};
    f.write_at(0, head, 4);
    f.commit();
  }
  CHECK(slurp(path) == "head tail");
  fs::remove_all(dir);
}

TEST_CASE("a write the system refuses is an error naming the file, and the old file survives") {
  const fs::path dir = fresh_dir("strata_atomic_file_test_full");
  const std::string path = (dir / "base.kld").string();
  {
    strata::atomic_file f(path);
    f.write("previous", 8);
    f.commit();
  }
  const std::vector<char> big(1 << 16, 'x');
  const std::string msg = under_file_size_limit(4096, [&] {
    strata::atomic_file f(path);
    f.write(big.data(), big.size());
    f.commit();
  });
  CHECK(msg.find("write failed") != std::string::npos);
  CHECK(msg.find(path) != std::string::npos);
  CHECK(slurp(path) == "previous");
  CHECK(entries(dir) == 1);

  // The KV state writer goes through the same checks.
  const std::string state_msg = under_file_size_limit(4096, [&] {
    strata::detail::state_writer w((dir / "state.bin").string());
    w.bytes(big.data(), big.size());
    w.finish();
  });
  CHECK(state_msg.find("write failed") != std::string::npos);
  CHECK(!fs::exists(dir / "state.bin"));
  CHECK(entries(dir) == 1);
  fs::remove_all(dir);
}

TEST_CASE("targets that are not regular files or have no directory are refused up front") {
  CHECK(strata_test::error_text([] {
          strata::atomic_file f("/dev/full");
        }).find("not a regular file") != std::string::npos);
  const fs::path dir = fresh_dir("strata_atomic_file_test_dir");
  CHECK(strata_test::error_text([&] {
          strata::atomic_file f(dir.string());
        }).find("not a regular file") != std::string::npos);
  CHECK(strata_test::error_text([&] {
          strata::atomic_file f((dir / "missing" / "x").string());
        }).find("cannot create a temporary file") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("concurrent writers of one path use their own temporaries; the result is one of them") {
  const fs::path dir = fresh_dir("strata_atomic_file_test_race");
  const std::string path = (dir / "shared.bin").string();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string body(100000, char('a' + t));
      for (int rep = 0; rep < 5; ++rep) {
        strata::atomic_file f(path);
        f.write(body.data(), body.size());
        f.commit();
      }
    });
  }
  for (auto& th : threads) th.join();
  const std::string got = slurp(path);
  REQUIRE(got.size() == 100000);
  CHECK(got == std::string(100000, got[0]));
  CHECK(entries(dir) == 1);
  fs::remove_all(dir);
}

TEST_CASE("remove_pending_temp_files (what the tools' SIGINT/SIGTERM handler calls)") {
  const fs::path dir = fresh_dir("strata_atomic_file_test_signal");
  strata::atomic_file f((dir / "out.bin").string());
  f.write("partial", 7);
  CHECK(entries(dir) == 1);
  strata::remove_pending_temp_files();
  CHECK(entries(dir) == 0);
  fs::remove_all(dir);
}

TEST_CASE("a process killed in the middle of writing leaves the old file intact") {
  // SIGKILL cannot be caught: the temporary stays behind (named .out.bin.XXXXXX, beside the
  // target), but the target itself still holds its old bytes, whole.
  const fs::path dir = fresh_dir("strata_atomic_file_test_kill");
  const std::string path = (dir / "out.bin").string();
  {
    strata::atomic_file f(path);
    f.write("old", 3);
    f.commit();
  }
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    strata::detail::state_writer w(path);
    const std::vector<char> chunk(1 << 20, 'x');
    for (int i = 0; i < 8; ++i) w.bytes(chunk.data(), chunk.size());  // 8 MiB, half of it flushed
    raise(SIGKILL);
    _exit(0);  // not reached
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);
  CHECK(slurp(path) == "old");
  std::size_t temporaries = 0;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(".out.bin.", 0) == 0) {
      ++temporaries;
      CHECK(fs::file_size(e.path()) >= (std::size_t(7) << 20));  // the writes had happened
    }
  CHECK(temporaries == 1);
  fs::remove_all(dir);
}

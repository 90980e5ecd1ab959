#pragma once
// strata::atomic_file -- write a file so that readers see either the old file or the whole new
// one, and every failure is reported.
//
// The bytes go to a temporary file made by mkstemp in the target's directory (a unique name, so
// concurrent writers of one path do not share it), every write, flush and close is checked, the
// file and its directory are fsynced, and rename() puts it in place. Destroying an uncommitted
// atomic_file removes the temporary. While it exists, its name is in a small registry that
// remove_pending_temp_files() (async-signal-safe) empties: a tool's SIGINT/SIGTERM handler calls
// it so an interrupted run leaves no partial output behind.
//
// Errors throw std::runtime_error("error: <what> (<path>)").

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace strata {

namespace detail {
// Temporary files of live atomic_file objects; slots are claimed with a compare-exchange so a
// signal handler never sees a half-written name (the flag is set after the name is complete).
inline constexpr int temp_slots = 16;
inline constexpr std::size_t temp_name_max = 4096;
struct temp_slot {
  std::atomic<int> state{0};  // 0 free, 1 being written, 2 holds a name
  char name[temp_name_max];
};
inline temp_slot temp_registry[temp_slots];

inline int register_temp(const std::string& name) {
  if (name.size() >= temp_name_max) return -1;
  for (int i = 0; i < temp_slots; ++i) {
    int expect = 0;
    if (temp_registry[i].state.compare_exchange_strong(expect, 1)) {
      std::memcpy(temp_registry[i].name, name.c_str(), name.size() + 1);
      temp_registry[i].state.store(2);
      return i;
    }
  }
  return -1;  // more than temp_slots live writers: still correct, only not signal-cleaned
}
inline void unregister_temp(int slot) {
  if (slot >= 0) temp_registry[slot].state.store(0);
}
}  // namespace detail

// Removes every registered temporary file. Async-signal-safe (unlink and atomics only).
inline void remove_pending_temp_files() noexcept {
  for (auto& s : detail::temp_registry)
    if (s.state.load() == 2) ::unlink(s.name);
}

class atomic_file {
 public:
  explicit atomic_file(std::string path) : path_(std::move(path)) {
    const auto slash = path_.rfind('/');
    dir_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
    const std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
    if (base.empty()) fail("not a file name");
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
      fail("exists and is not a regular file");
    std::string tmpl = dir_ + "/." + base + ".XXXXXX";
    fd_ = ::mkstemp(tmpl.data());
    if (fd_ < 0)
      fail(std::string("cannot create a temporary file in ") + dir_ + ": " + std::strerror(errno));
    tmp_ = tmpl;
    slot_ = detail::register_temp(tmp_);
  }
  ~atomic_file() { discard(); }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;

  const std::string& path() const noexcept { return path_; }

  // Appends n bytes; throws naming the file when the system refuses any of them (disk full).
  void write(const void* p, std::size_t n) {
    const char* b = static_cast<const char*>(p);
    while (n > 0) {
      const ::ssize_t w = ::write(fd_, b, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail(std::string("write failed: ") + std::strerror(w < 0 ? errno : ENOSPC));
      b += w;
      n -= std::size_t(w);
    }
  }
  // Overwrites bytes already written (a header completed at the end).
  void write_at(std::size_t offset, const void* p, std::size_t n) {
    const char* b = static_cast<const char*>(p);
    while (n > 0) {
      const ::ssize_t w = ::pwrite(fd_, b, n, ::off_t(offset));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail(std::string("write failed: ") + std::strerror(w < 0 ? errno : ENOSPC));
      b += w;
      n -= std::size_t(w);
      offset += std::size_t(w);
    }
  }
  // fsync, close, rename into place, fsync the directory. After it, the file is the new one.
  void commit() {
    if (::fsync(fd_) != 0) fail(std::string("fsync failed: ") + std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail(std::string("close failed: ") + std::strerror(errno));
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail(std::string("cannot rename ") + tmp_ + " into place: " + std::strerror(errno));
    detail::unregister_temp(slot_);
    slot_ = -1;
    tmp_.clear();
    const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      const int rc = ::fsync(dfd);
      ::close(dfd);
      if (rc != 0 && errno != EINVAL)
        fail(std::string("fsync of the directory failed: ") + std::strerror(errno));
    }
  }
  // Drops the temporary file (also done by the destructor when commit() was not reached).
  void discard() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    tmp_.clear();
    detail::unregister_temp(slot_);
    slot_ = -1;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    discard();
    throw std::runtime_error("error: " + what + " (" + path_ + ")");
  }
  std::string path_, dir_, tmp_;
  int fd_ = -1;
  int slot_ = -1;
};

}  // namespace strata

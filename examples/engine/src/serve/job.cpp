#include "serve/job.hpp"

namespace engine::serve {

const char* finish_name(finish_reason r) {
  switch (r) {
    case finish_reason::stop: return "stop";
    case finish_reason::length: return "length";
    case finish_reason::cancelled: return "cancelled";
    case finish_reason::error: return "error";
    case finish_reason::none: break;
  }
  return "none";
}

job::update job::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return done_ || !pending_.empty(); });
  update u;
  u.pieces.swap(pending_);
  u.done = done_;
  return u;
}

void job::emit(const std::string& text) {
  if (text.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(text);
  }
  cv_.notify_all();
}

void job::end(finish_reason r, std::string err) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reason = r;
    error = std::move(err);
    done_ = true;
  }
  cv_.notify_all();
}

}  // namespace engine::serve

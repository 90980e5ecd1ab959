// engine::kld_base_writer / kld_base_reader -- the KL-divergence base file of strata-perplexity:
// the log-probs of every scored token of a reference run (--kld-base-out), read back by later
// runs (--kld-base-in) to compare their distributions with it.
//
// Version 2, little-endian, written through strata::atomic_file and the checksummed stream of
// the KV state files (strata/cache/state_file.hpp):
//   "SKLD", u32 version, u32 n_ctx, u32 n_vocab, u32 n_chunks, u32 first (first scored position)
//   i32 tokens [n_chunks][n_ctx]
//   f16 log-probs [n_chunks][n_ctx - 1 - first][n_vocab]   (finite, <= 0)
//   u64 FNV-1a 64 of every byte before it
// The reader compares the header's sizes with the run's and with the file's size before it
// allocates anything, and checks every log-prob and the checksum; each problem throws
// engine::error naming the file and the field.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace strata::detail {
class state_reader;
class state_writer;
}  // namespace strata::detail

namespace engine {

// The sizes a base file is saved with; a run can read a base only with the same ones.
struct kld_shape {
  uint32_t n_ctx = 0, n_vocab = 0, first = 0;
  uint64_t scored_per_chunk() const { return uint64_t(n_ctx) - 1 - first; }
};

class kld_base_writer {
 public:
  // Starts the file with the header and the first n_chunks * n_ctx tokens.
  kld_base_writer(const std::string& path, const kld_shape& shape, uint32_t n_chunks,
                  std::span<const int32_t> tokens);
  ~kld_base_writer();
  // One scored position's n_vocab log-probs (clamped to f16's finite range, <= 0).
  void row(const float* log_probs);
  void finish();  // checksum, fsync, rename into place

 private:
  std::unique_ptr<strata::detail::state_writer> w_;
  std::vector<uint16_t> half_;
};

class kld_base_reader {
 public:
  // Checks the header against `shape`, that the base holds at least n_chunks chunks, that the
  // file's size is what its header implies, and that its first n_chunks * n_ctx tokens are
  // `tokens`'.
  kld_base_reader(const std::string& path, const kld_shape& shape, uint32_t n_chunks,
                  std::span<const int32_t> tokens);
  ~kld_base_reader();
  // The next scored position's n_vocab log-probs, each finite and <= 0 (chunk and position
  // only name the row in errors).
  void row(float* log_probs, int chunk, int position);
  // Reads the rows this run did not use and checks the checksum.
  void finish();
  uint32_t chunks() const { return chunks_; }  // chunks the file holds

 private:
  std::string path_;
  std::unique_ptr<strata::detail::state_reader> r_;
  kld_shape shape_;
  uint32_t chunks_ = 0;
  uint64_t rows_read_ = 0;
  std::vector<uint16_t> half_;
};

}  // namespace engine

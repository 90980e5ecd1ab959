#include "io/kld_base.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include <strata/cache/state_file.hpp>

#include "error.hpp"
#include "io/quant.hpp"

namespace engine {

namespace {

constexpr char kMagic[4] = {'S', 'K', 'L', 'D'};
static_assert(std::endian::native == std::endian::little,
              "the base file's rows are written as in memory");
constexpr uint32_t kVersion = 2;
constexpr uint64_t kHeaderBytes = 24;

// Bytes of a file with these header fields; the fields are u32, so this cannot overflow.
uint64_t file_bytes(uint64_t n_ctx, uint64_t n_vocab, uint64_t n_chunks, uint64_t first) {
  return kHeaderBytes + n_chunks * n_ctx * 4 + n_chunks * (n_ctx - 1 - first) * n_vocab * 2 + 8;
}

}  // namespace

kld_base_writer::kld_base_writer(const std::string& path, const kld_shape& shape, uint32_t n_chunks,
                                 std::span<const int32_t> tokens)
    : w_(std::make_unique<strata::detail::state_writer>(path)), half_(shape.n_vocab) {
  w_->bytes(kMagic, 4);
  w_->le(kVersion);
  w_->le(shape.n_ctx);
  w_->le(shape.n_vocab);
  w_->le(n_chunks);
  w_->le(shape.first);
  w_->bytes(tokens.data(), size_t(n_chunks) * shape.n_ctx * sizeof(int32_t));
}

kld_base_writer::~kld_base_writer() = default;

void kld_base_writer::row(const float* log_probs) {
  // Clamped to f16's finite range: a log-prob below -65504 is stored as -65504.
  for (size_t i = 0; i < half_.size(); ++i)
    half_[i] = float_to_half(std::clamp(log_probs[i], -65504.0f, 0.0f));
  w_->bytes(half_.data(), half_.size() * 2);
}

void kld_base_writer::finish() { w_->finish(); }

kld_base_reader::kld_base_reader(const std::string& path, const kld_shape& shape, uint32_t n_chunks,
                                 std::span<const int32_t> tokens)
    : path_(path), r_(std::make_unique<strata::detail::state_reader>(path)), shape_(shape) {
  auto& in = *r_;
  if (in.size() < kHeaderBytes + 8)
    throw make_error("not a strata KL-divergence base file (" + std::to_string(in.size()) +
                         " bytes, shorter than its header)",
                     path);
  char magic[4];
  in.bytes(magic, 4);
  if (std::memcmp(magic, kMagic, 4) != 0)
    throw make_error("not a strata KL-divergence base file (magic)", path);
  const auto version = in.le<uint32_t>();
  if (version != kVersion)
    throw make_error("KL-divergence base file version " + std::to_string(version) +
                         ", this strata reads version " + std::to_string(kVersion) +
                         " (save the base again)",
                     path);
  const uint32_t h_ctx = in.le<uint32_t>(), h_vocab = in.le<uint32_t>();
  chunks_ = in.le<uint32_t>();
  const uint32_t h_first = in.le<uint32_t>();
  auto differs = [&](const char* field, uint64_t saved, uint64_t now) {
    if (saved != now)
      throw make_error(std::string(field) + " differs: the base was saved with " +
                           std::to_string(saved) + ", this run has " + std::to_string(now),
                       path);
  };
  differs("n_ctx (-c)", h_ctx, shape.n_ctx);
  differs("n_vocab (the model's vocabulary)", h_vocab, shape.n_vocab);
  differs("first scored position", h_first, shape.first);
  if (shape.first >= shape.n_ctx)
    throw make_error("first scored position " + std::to_string(shape.first) +
                         " is not below n_ctx " + std::to_string(shape.n_ctx),
                     path);
  if (chunks_ < n_chunks)
    throw make_error("the base has " + std::to_string(chunks_) + " chunks, this run needs " +
                         std::to_string(n_chunks) + " (use --chunks)",
                     path);
  const uint64_t want = file_bytes(h_ctx, h_vocab, chunks_, h_first);
  if (in.size() != want)
    throw make_error("the header's sizes (" + std::to_string(chunks_) + " chunks of " +
                         std::to_string(h_ctx) + " tokens, " + std::to_string(h_vocab) +
                         " log-probs each) need " + std::to_string(want) + " bytes, the file has " +
                         std::to_string(in.size()),
                     path);
  if (tokens.size() < size_t(n_chunks) * shape.n_ctx)
    throw make_error("the run has " + std::to_string(tokens.size()) + " tokens, fewer than " +
                         std::to_string(n_chunks) + " chunks of " + std::to_string(shape.n_ctx),
                     path);
  std::vector<int32_t> saved(size_t(chunks_) * shape.n_ctx);  // the size matches the file's
  in.bytes(saved.data(), saved.size() * sizeof(int32_t));
  for (size_t i = 0; i < size_t(n_chunks) * shape.n_ctx; ++i)
    if (saved[i] != tokens[i])
      throw make_error("token " + std::to_string(i) + " differs: the base has " +
                           std::to_string(saved[i]) + ", this run " + std::to_string(tokens[i]) +
                           " (another text or tokenizer)",
                       path);
  half_.resize(shape.n_vocab);
}

kld_base_reader::~kld_base_reader() = default;

void kld_base_reader::row(float* log_probs, int chunk, int position) {
  if (rows_read_ >= uint64_t(chunks_) * shape_.scored_per_chunk())
    throw make_error("read past the last row of the base", path_);
  r_->bytes(half_.data(), half_.size() * 2);
  ++rows_read_;
  for (size_t i = 0; i < half_.size(); ++i) {
    const float x = half_to_float(half_[i]);
    if (!std::isfinite(x) || x > 1e-3f)
      throw make_error("log-prob " + std::to_string(x) + " of token " + std::to_string(i) +
                           " at chunk " + std::to_string(chunk) + ", position " +
                           std::to_string(position) +
                           " is not a finite value <= 0 (a damaged base file)",
                       path_);
    log_probs[i] = x;
  }
}

void kld_base_reader::finish() {
  // The chunks this run did not use still count for the checksum.
  for (; rows_read_ < uint64_t(chunks_) * shape_.scored_per_chunk(); ++rows_read_)
    r_->bytes(half_.data(), half_.size() * 2);
  r_->finish();
}

}  // namespace engine

// ByteBuffer: the engine's byte queues (input, output, plaintext). Internal
// to core.
#ifndef TLSENGINE_CORE_INTERNAL_BYTE_BUFFER_H_
#define TLSENGINE_CORE_INTERNAL_BYTE_BUFFER_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>

#include "absl/types/span.h"

namespace tlsengine {
namespace internal {

// The largest record a peer may send: 2^14 plaintext + 2048 expansion + 5
// header (RFC 5246 §6.2.3; TLS 1.3 allows less).
inline constexpr size_t kMaxRecord = 16384 + 2048 + 5;
inline constexpr size_t kMaxPlaintextRecord = 16384;

// A byte queue: append at the back, consume at the front. The readable part
// is one contiguous span. Memory is allocated on first use (not zero-filled)
// and can be released when empty, so idle connections cost little.
//
// A reservation (Reserve) is space handed out to be filled later; until it
// is committed or cancelled the buffer never moves or frees its memory, so
// the span stays valid while the front is consumed.
class ByteBuffer {
 public:
  size_t size() const { return end_ - start_; }
  bool empty() const { return end_ == start_; }
  const uint8_t* data() const { return data_.get() + start_; }
  size_t capacity() const { return capacity_; }
  bool reserved() const { return reserved_ > 0; }
  size_t reservation() const { return reserved_; }
  absl::Span<uint8_t> reserved_span() { return absl::MakeSpan(data_.get() + end_, reserved_); }

  // Space for `n` more bytes at the end, made contiguous (moving what is
  // buffered to the front, growing the allocation, to at most `limit`
  // bytes unless more are needed). Not while reserved.
  absl::Span<uint8_t> Reserve(size_t n, size_t limit = SIZE_MAX) {
    if (start_ != 0) {
      if (!empty()) std::memmove(data_.get(), data_.get() + start_, size());
      end_ -= start_;
      start_ = 0;
    }
    if (capacity_ < end_ + n) {
      size_t grown = std::max(end_ + n, std::min({2 * capacity_, end_ + n + kGrowLimit, limit}));
      std::unique_ptr<uint8_t[]> bigger(new uint8_t[grown]);  // uninitialised
      if (end_ > 0) std::memcpy(bigger.get(), data_.get(), end_);
      data_ = std::move(bigger);
      capacity_ = grown;
    }
    return absl::MakeSpan(data_.get() + end_, n);
  }
  // Reserve() that stays valid until Commit(): see the class comment.
  absl::Span<uint8_t> Hold(size_t n, size_t limit = SIZE_MAX) {
    absl::Span<uint8_t> span = Reserve(n, limit);
    reserved_ = n;
    return span;
  }
  // `n` bytes after the end were filled (n <= what was reserved); ends a
  // Hold().
  void Commit(size_t n) {
    end_ += n;
    reserved_ = 0;
    if (release_pending_) Release();
  }
  void Append(const uint8_t* p, size_t n) {
    if (n == 0) return;
    std::memcpy(Reserve(n).data(), p, n);
    end_ += n;
  }
  void Consume(size_t n) { start_ += std::min(n, size()); }
  // When less than half of the allocation is used, moves the content into
  // one of its size (none when empty), so a buffer that waits for more costs
  // little more than it holds. Only sparse ones: a buffer filled a little
  // at a time is copied so only while it holds less than a Reserve adds,
  // since growing it later doubles it. Not while reserved.
  void ShrinkIfSparse() {
    if (reserved_ > 0 || capacity_ <= 2 * size()) return;
    if (empty()) {
      Release();
      return;
    }
    std::unique_ptr<uint8_t[]> exact(new uint8_t[size()]);
    std::memcpy(exact.get(), data(), size());
    data_ = std::move(exact);
    capacity_ = end_ = size();
    start_ = 0;
  }
  // Frees the memory (idle or finished connections), dropping the content;
  // while a reservation is held, only once it is committed.
  void Release() {
    if (reserved_ > 0) {
      release_pending_ = true;
      return;
    }
    start_ = end_ = 0;
    release_pending_ = false;
    data_.reset();
    capacity_ = 0;
  }

 private:
  static constexpr size_t kGrowLimit = 64 * 1024;
  std::unique_ptr<uint8_t[]> data_;
  size_t capacity_ = 0;
  size_t start_ = 0;
  size_t end_ = 0;
  size_t reserved_ = 0;
  bool release_pending_ = false;
};

}  // namespace internal
}  // namespace tlsengine

#endif  // TLSENGINE_CORE_INTERNAL_BYTE_BUFFER_H_

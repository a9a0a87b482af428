#include "tests/testlib/memory_pair.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/default_answers.h"

namespace tlsengine {
namespace testing {
namespace {

using Spans = absl::InlinedVector<absl::Span<const uint8_t>, 2>;

size_t Total(const Spans& spans) {
  size_t n = 0;
  for (absl::Span<const uint8_t> s : spans) n += s.size();
  return n;
}

// Copies the first `n` bytes of `spans` (n <= Total) to `dst`.
void CopySpans(const Spans& spans, uint8_t* dst, size_t n) {
  for (absl::Span<const uint8_t> s : spans) {
    if (n == 0) break;
    const size_t k = std::min(n, s.size());
    std::memcpy(dst, s.data(), k);
    dst += k;
    n -= k;
  }
}

}  // namespace

MemoryPair::MemoryPair(std::unique_ptr<TlsConnection> server, std::unique_ptr<TlsConnection> client,
                       absl::Time now)
    : now_(now) {
  ends_[kServer].conn = std::move(server);
  ends_[kClient].conn = std::move(client);
}

void MemoryPair::Breach(absl::Status status) {
  if (breach_.ok()) breach_ = std::move(status);
}

void MemoryPair::Advance(absl::Duration d) {
  now_ += d;
  for (End& end : ends_) {
    if (end.conn == nullptr || now_ < end.conn->NextDeadline()) continue;
    Enter(end);
    end.conn->OnTimer(now_);
  }
}

void MemoryPair::Poll(Side side) {
  End& end = ends_[side];
  if (end.conn == nullptr) return;
  Enter(end);
  TlsConnection& conn = *end.conn;
  while (std::optional<Event> ev = conn.NextEvent(now_)) {
    if (end.hooks.on_event) {
      end.hooks.on_event(conn, *ev);
      Enter(end);  // the hook may have entered the other side
    }
    // Answering cannot fail here: the event was just polled and waits.
    if (end.hooks.answer_by_default && IsSuspension(ev->type)) AnswerByDefault(conn, *ev).IgnoreError();
  }
}

size_t MemoryPair::Transfer(Side from_side, size_t limit) {
  End& from = ends_[from_side];
  End& to = ends_[1 - from_side];
  size_t taken = 0;
  while (taken < limit && from.conn != nullptr && breach_.ok()) {
    Enter(from);
    Spans out = from.conn->Output();
    if (out.empty()) break;
    const size_t pending = std::min(Total(out), limit - taken);
    if (to.conn == nullptr || to.conn->finished()) {  // nobody listens
      if (from.hooks.on_wire) {
        std::string bytes(pending, '\0');
        CopySpans(out, reinterpret_cast<uint8_t*>(&bytes[0]), pending);
        from.hooks.on_wire(bytes);
        Enter(from);
      }
      absl::Status consumed = from.conn->ConsumeOutput(pending);
      if (!consumed.ok()) Breach(consumed);
      break;  // discarded: not counted as moved
    }
    Enter(to);
    absl::Span<uint8_t> space = to.conn->InputSpace();
    const size_t n = std::min({chunk_, pending, space.size()});
    if (n == 0) {  // backpressure: the receiver must be polled first
      if (!space.empty()) to.conn->CommitInput(0).IgnoreError();  // cancels the reservation
      break;
    }
    size_t delivered = n;
    if (from.hooks.on_wire) {
      std::string bytes(n, '\0');
      CopySpans(out, reinterpret_cast<uint8_t*>(&bytes[0]), n);
      from.hooks.on_wire(bytes);
      delivered = std::min(bytes.size(), space.size());
      std::memcpy(space.data(), bytes.data(), delivered);
    } else {
      CopySpans(out, space.data(), n);
    }
    Enter(to);
    absl::Status committed = to.conn->CommitInput(delivered);
    // A receiver that failed on this input reports it as kError.
    if (!committed.ok() && to.conn->status().ok()) {
      Breach(absl::InternalError(absl::StrCat("CommitInput(", delivered, "): ", committed.ToString())));
    }
    Enter(from);
    absl::Status consumed = from.conn->ConsumeOutput(n);
    if (!consumed.ok()) {
      Breach(absl::InternalError(absl::StrCat("ConsumeOutput(", n, "): ", consumed.ToString())));
    }
    taken += n;
    Poll(from_side == kServer ? kClient : kServer);
  }
  return taken;
}

bool MemoryPair::Pump(int max_rounds) {
  bool any = false;
  for (int round = 0; round < max_rounds && breach_.ok(); ++round) {
    PollBoth();
    bool moved = Transfer(kClient) > 0;
    moved |= Transfer(kServer) > 0;
    if (!moved) break;
    any = true;
  }
  PollBoth();
  return any;
}

}  // namespace testing
}  // namespace tlsengine

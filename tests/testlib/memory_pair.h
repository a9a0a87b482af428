// MemoryPair: a client and a server TlsConnection joined through memory,
// the one in-memory driver that the tests (EnginePair in testlib.h), the
// benchmark (bench/engine_driver.cc) and the fuzz targets use. It copies
// every span of one side's Output() into the other side's InputSpace(),
// `chunk` bytes per CommitInput (down to 1), and polls the receiver after
// every chunk; it owns neither the clock (now() is whatever the caller set)
// nor the answers to suspensions (an on_event hook gives them, or
// AnswerByDefault when the side asks for it).
//
//   MemoryPair pair(std::move(server), std::move(client), now);
//   pair.hooks(MemoryPair::kServer).on_event = [](TlsConnection& c, const Event& e) { ... };
//   pair.Pump();                       // until nothing moves
//   if (!pair.breach().ok()) ...       // an engine broke its contract
//
// Not thread-safe. No extra work in the data path when no hook is set: the
// benchmark's timed loop runs through it.
#ifndef TLSENGINE_TESTS_TESTLIB_MEMORY_PAIR_H_
#define TLSENGINE_TESTS_TESTLIB_MEMORY_PAIR_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace testing {

class MemoryPair {
 public:
  enum Side { kServer = 0, kClient = 1 };

  struct Hooks {
    // Every event NextEvent returns on this side, in order (kData's span is
    // valid during the call only). May call into the connection (answers,
    // writes), not into the pair.
    std::function<void(TlsConnection&, const Event&)> on_event;
    // After on_event: answer suspensions with AnswerByDefault. Off for a
    // side whose hook answers (or that answers later).
    bool answer_by_default = true;
    // Called before each call into this side's engine: the fuzzers switch
    // their per-endpoint random stream there.
    std::function<void()> enter;
    // Sees the bytes leaving this side after they left its output and before
    // the other side reads them; may change them and may shorten them (the
    // fuzzers flip and drop bytes). Unset: bytes go straight from one
    // engine's buffer into the other's, with no copy in between.
    std::function<void(std::string& bytes)> on_wire;
  };

  // Takes both connections (non-null). `now` is what NextEvent gets.
  MemoryPair(std::unique_ptr<TlsConnection> server, std::unique_ptr<TlsConnection> client, absl::Time now);

  TlsConnection& conn(Side side) { return *ends_[side].conn; }
  TlsConnection& server() { return conn(kServer); }
  TlsConnection& client() { return conn(kClient); }
  const TlsConnection& conn(Side side) const { return *ends_[side].conn; }
  const TlsConnection& server() const { return conn(kServer); }
  const TlsConnection& client() const { return conn(kClient); }
  // Gives up one side's connection (the benchmark keeps a server alone,
  // without the pair). Nothing moves to or from that side afterwards.
  std::unique_ptr<TlsConnection> Take(Side side) { return std::move(ends_[side].conn); }
  bool has(Side side) const { return ends_[side].conn != nullptr; }
  Hooks& hooks(Side side) { return ends_[side].hooks; }

  // Bytes per CommitInput (at least 1; SIZE_MAX: as much as fits).
  void set_chunk(size_t chunk) { chunk_ = chunk == 0 ? 1 : chunk; }
  size_t chunk() const { return chunk_; }
  absl::Time now() const { return now_; }
  void set_now(absl::Time now) { now_ = now; }
  // Moves the clock and fires every due timer (OnTimer, then Poll).
  void Advance(absl::Duration d);

  // Polls `side`'s events until none is left (hooks as above).
  void Poll(Side side);
  void PollBoth() {
    Poll(kClient);
    Poll(kServer);
  }
  // Moves up to `limit` bytes of `from`'s output to the other side, chunk
  // by chunk, polling the receiver after each. Stops when `from` has no
  // output, the receiver has no input space (backpressure: its events must
  // be polled), or `limit` is reached. When the receiver has finished,
  // discards the sender's output (nobody listens). Returns the bytes moved
  // into the receiver (discarded bytes do not count).
  size_t Transfer(Side from, size_t limit = SIZE_MAX);
  // Polls both sides and moves bytes both ways until nothing moves (at most
  // `max_rounds` rounds). Returns true if anything moved.
  bool Pump(int max_rounds = 100000);

  // OK, or the first time an engine broke its contract: ConsumeOutput
  // refused what Output() returned, or CommitInput failed while the
  // receiver still reported OK. Nothing moves after a breach.
  const absl::Status& breach() const { return breach_; }

 private:
  struct End {
    std::unique_ptr<TlsConnection> conn;
    Hooks hooks;
  };
  void Enter(End& end) {
    if (end.hooks.enter) end.hooks.enter();
  }
  void Breach(absl::Status status);

  End ends_[2];
  absl::Time now_;
  size_t chunk_ = SIZE_MAX;
  absl::Status breach_;
};

}  // namespace testing
}  // namespace tlsengine

#endif  // TLSENGINE_TESTS_TESTLIB_MEMORY_PAIR_H_

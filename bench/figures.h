// The figures of the benchmark table and how each is measured, over the
// Pair/Stack interface (the same loop for the engine and for plain OpenSSL).
//
//   for (const Figure& f : Figures(certs_dir)) {
//     auto stack = MakeEngineStack(f.config).value();
//     double rate = MeasureRate(f, *stack, {absl::Seconds(0.4), 0}).value();
//   }
#ifndef TLSENGINE_BENCH_FIGURES_H_
#define TLSENGINE_BENCH_FIGURES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/pair.h"

namespace tlsengine {
namespace bench {

enum class Kind {
  kHandshake,  // full handshakes/s
  kResume,     // resumed handshakes/s (the client offers a remembered ticket)
  kBulk,       // MB/s of plaintext, client to server, `bytes` per write
  kRecords,    // records/s, client to server, `bytes` per write (one record)
};

struct Figure {
  std::string name;   // --only=NAME
  std::string title;  // the table row
  Kind kind;
  Config config;
  size_t bytes = 0;  // kBulk, kRecords: bytes per write
};

// The rate figures, in table order; certificates from `certs_dir`.
std::vector<Figure> RateFigures(const std::string& certs_dir);
// The configuration of the memory figures (TLS 1.3, ECDSA P-256).
Config MemoryConfig(const std::string& certs_dir);

// When a measurement stops: after `time` (when not zero) or `iterations`
// (when not zero), whichever comes first.
struct Budget {
  absl::Duration time = absl::ZeroDuration();
  int64_t iterations = 0;
};

// Runs `figure` on `stack` and returns its rate per second of this thread's
// CPU time (MB/s for kBulk); the budget's time is wall time.
absl::StatusOr<double> MeasureRate(const Figure& figure, Stack& stack, const Budget& budget);

// What one pair of `stack` negotiates for `figure` ("TLSv1.3 TLS_AES_... full").
absl::StatusOr<std::string> Negotiated(const Figure& figure, Stack& stack);

// Heap bytes per server connection (mallinfo2: uordblks + hblkhd deltas)
// over `connections` held at once, clients freed.
struct MemoryFigures {
  double after_handshake = 0;
  double after_handshake_released = 0;  // after ReleaseServerBuffers()
  double idle = 0;                      // after 16 KB each way
  double idle_released = 0;
  bool released = false;                // the side has a release call
};
absl::StatusOr<MemoryFigures> MeasureMemory(Stack& stack, int connections);

}  // namespace bench
}  // namespace tlsengine

#endif  // TLSENGINE_BENCH_FIGURES_H_

#include "bench/figures.h"

#include <malloc.h>
#include <time.h>

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tlsengine {
namespace bench {
namespace {

Config Make(const std::string& certs, const std::string& identity, const std::string& version,
            const std::string& ciphers, const std::string& suites) {
  Config c;
  c.certs_dir = certs;
  c.identity = identity;
  c.version = version;
  c.ciphers = ciphers;
  c.ciphersuites = suites;
  return c;
}

constexpr char kAes128[] = "TLS_AES_128_GCM_SHA256";
constexpr char kChaCha[] = "TLS_CHACHA20_POLY1305_SHA256";

// A handshaken pair, for the figures that measure records.
absl::StatusOr<std::unique_ptr<Pair>> Connected(Stack& stack, bool resume) {
  absl::StatusOr<std::unique_ptr<Pair>> pair = stack.NewPair(resume);
  if (!pair.ok()) return pair.status();
  if (absl::Status s = (*pair)->Handshake(); !s.ok()) return s;
  return pair;
}

// The session to resume with, from one full handshake.
absl::Status PrepareResumption(Stack& stack) {
  absl::StatusOr<std::unique_ptr<Pair>> pair = Connected(stack, false);
  if (!pair.ok()) return pair.status();
  return stack.Remember(**pair);
}

// This thread's CPU time: on a shared machine, time spent waiting for a core
// does not count against either side.
double ThreadCpuSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

int64_t HeapInUse() {
  struct mallinfo2 info = mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
}

}  // namespace

std::vector<Figure> RateFigures(const std::string& certs) {
  return {
      {"hs13_ecdsa", "full handshakes/s, TLS 1.3, ECDSA P-256", Kind::kHandshake,
       Make(certs, "server-ecdsa", "TLSv1.3", "", "")},
      {"hs13_rsa", "full handshakes/s, TLS 1.3, RSA 2048", Kind::kHandshake,
       Make(certs, "server-rsa", "TLSv1.3", "", "")},
      {"hs12_ecdsa", "full handshakes/s, TLS 1.2, ECDHE-ECDSA-AES128-GCM-SHA256", Kind::kHandshake,
       Make(certs, "server-ecdsa", "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", "")},
      {"resume13", "resumed handshakes/s, TLS 1.3 ticket", Kind::kResume,
       Make(certs, "server-ecdsa", "TLSv1.3", "", "")},
      {"bulk_aes128gcm", "bulk MB/s, 16 KB writes, TLS_AES_128_GCM_SHA256", Kind::kBulk,
       Make(certs, "server-ecdsa", "TLSv1.3", "", kAes128), 16384},
      {"bulk_chacha20", "bulk MB/s, 16 KB writes, TLS_CHACHA20_POLY1305_SHA256", Kind::kBulk,
       Make(certs, "server-ecdsa", "TLSv1.3", "", kChaCha), 16384},
      {"rec1", "1-byte records/s (AES-128-GCM)", Kind::kRecords, Make(certs, "server-ecdsa", "TLSv1.3", "", kAes128),
       1},
      {"rec100", "100-byte records/s (AES-128-GCM)", Kind::kRecords,
       Make(certs, "server-ecdsa", "TLSv1.3", "", kAes128), 100},
  };
}

Config MemoryConfig(const std::string& certs) { return Make(certs, "server-ecdsa", "TLSv1.3", "", ""); }

absl::StatusOr<std::string> Negotiated(const Figure& figure, Stack& stack) {
  const bool resume = figure.kind == Kind::kResume;
  if (resume) {
    if (absl::Status s = PrepareResumption(stack); !s.ok()) return s;
  }
  absl::StatusOr<std::unique_ptr<Pair>> pair = Connected(stack, resume);
  if (!pair.ok()) return pair.status();
  return (*pair)->Negotiated();
}

absl::StatusOr<double> MeasureRate(const Figure& figure, Stack& stack, const Budget& budget) {
  std::unique_ptr<Pair> connected;
  std::vector<uint8_t> payload(figure.bytes, 'x');
  if (figure.kind == Kind::kResume) {
    if (absl::Status s = PrepareResumption(stack); !s.ok()) return s;
  }
  if (figure.kind == Kind::kBulk || figure.kind == Kind::kRecords) {
    absl::StatusOr<std::unique_ptr<Pair>> pair = Connected(stack, false);
    if (!pair.ok()) return pair.status();
    connected = *std::move(pair);
  }
  const double cpu_start = ThreadCpuSeconds();
  const absl::Time start = absl::Now();
  const absl::Time stop = budget.time > absl::ZeroDuration() ? start + budget.time : absl::InfiniteFuture();
  int64_t done = 0;
  absl::Time now = start;
  while ((budget.iterations == 0 || done < budget.iterations) && now < stop) {
    switch (figure.kind) {
      case Kind::kHandshake:
      case Kind::kResume: {
        absl::StatusOr<std::unique_ptr<Pair>> pair = Connected(stack, figure.kind == Kind::kResume);
        if (!pair.ok()) return pair.status();
        break;
      }
      case Kind::kBulk:
      case Kind::kRecords:
        if (absl::Status s = connected->Send(/*from_client=*/true, payload); !s.ok()) return s;
        break;
    }
    ++done;
    now = absl::Now();
  }
  double seconds = ThreadCpuSeconds() - cpu_start;
  if (seconds <= 0) seconds = 1e-9;
  if (figure.kind == Kind::kBulk) return static_cast<double>(done) * figure.bytes / seconds / 1e6;
  return static_cast<double>(done) / seconds;
}

absl::StatusOr<MemoryFigures> MeasureMemory(Stack& stack, int connections) {
  MemoryFigures out;
  const std::vector<uint8_t> block(16384, 'm');
  for (bool idle : {false, true}) {
    {  // warm up: OpenSSL's lazy initialisation stays out of the figures
      absl::StatusOr<std::unique_ptr<Pair>> warm = Connected(stack, false);
      if (!warm.ok()) return warm.status();
    }
    std::vector<std::unique_ptr<Pair>> held;
    held.reserve(connections);
    const int64_t before = HeapInUse();
    for (int i = 0; i < connections; ++i) {
      absl::StatusOr<std::unique_ptr<Pair>> pair = Connected(stack, false);
      if (!pair.ok()) return pair.status();
      if (idle) {
        if (absl::Status s = (*pair)->Send(true, block); !s.ok()) return s;
        if (absl::Status s = (*pair)->Send(false, block); !s.ok()) return s;
      }
      (*pair)->DropClient();
      held.push_back(*std::move(pair));
    }
    const double held_bytes = static_cast<double>(HeapInUse() - before) / connections;
    bool released = true;
    for (auto& pair : held) released &= pair->ReleaseServerBuffers();
    const double released_bytes = static_cast<double>(HeapInUse() - before) / connections;
    (idle ? out.idle : out.after_handshake) = held_bytes;
    (idle ? out.idle_released : out.after_handshake_released) = released_bytes;
    out.released = released;
  }
  return out;
}

}  // namespace bench
}  // namespace tlsengine

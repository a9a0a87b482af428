// What a benchmark figure drives: a connected client/server pair in memory,
// made by a Stack (the contexts of one configuration). Two implementations:
// the engine (engine_driver.cc, the only file that calls the TlsConnection
// API) and plain OpenSSL over a BIO pair (plain_driver.cc). Figures
// (figures.cc) see only this interface, so both sides do the same work.
//
//   absl::StatusOr<std::unique_ptr<Stack>> stack = MakeEngineStack(config);
//   std::unique_ptr<Pair> pair = (*stack)->NewPair(/*resume=*/false).value();
//   pair->Handshake();  pair->Send(/*from_client=*/true, data);
#ifndef TLSENGINE_BENCH_PAIR_H_
#define TLSENGINE_BENCH_PAIR_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace tlsengine {
namespace bench {

// One configuration, the same for both sides. Certificates come from
// `certs_dir` (tests/certs): NAME-chain.pem and NAME-key.pem for the server,
// ca1.pem for the client, which verifies the chain and the name "localhost".
// Key exchange is X25519 on both (P-256 is listed too: TLS 1.2 needs the
// curve of the ECDSA certificate among the supported groups).
struct Config {
  std::string certs_dir = "tests/certs";
  std::string identity = "server-ecdsa";  // or "server-rsa"
  std::string version = "TLSv1.3";        // min = max
  std::string ciphers;                    // TLS 1.2 list; "": tlsengine's default
  std::string ciphersuites;               // TLS 1.3 suites; "": the defaults
};

// A client and a server joined in memory. Not thread-safe.
class Pair {
 public:
  virtual ~Pair() = default;
  // Runs the handshake to its end, including the TLS 1.3 tickets reaching
  // the client. An error when either side failed or did not finish.
  virtual absl::Status Handshake() = 0;
  // Writes all of `data` on one side (one write call; small data makes one
  // record) and moves it until the other side has read all of it.
  virtual absl::Status Send(bool from_client, absl::Span<const uint8_t> data) = 0;
  // "TLSv1.3 TLS_AES_128_GCM_SHA256 full|resumed", from the client.
  virtual std::string Negotiated() const = 0;
  // Frees the client and whatever only the transport needs, keeping the
  // server connection alone (what a server holds per connection).
  virtual void DropClient() = 0;
  // What a careful server does on an idle connection, where the API has a
  // way (plain: SSL_free_buffers). Returns false when there is none.
  virtual bool ReleaseServerBuffers() = 0;
};

class Stack {
 public:
  virtual ~Stack() = default;
  // A new pair; with `resume`, the client offers the session kept by
  // Remember().
  virtual absl::StatusOr<std::unique_ptr<Pair>> NewPair(bool resume) = 0;
  // Keeps the client's session of `pair` (after its handshake) for resumption.
  virtual absl::Status Remember(Pair& pair) = 0;
};

absl::StatusOr<std::unique_ptr<Stack>> MakeEngineStack(const Config& config);
absl::StatusOr<std::unique_ptr<Stack>> MakePlainStack(const Config& config);

}  // namespace bench
}  // namespace tlsengine

#endif  // TLSENGINE_BENCH_PAIR_H_

// Test-only helpers: test certificates, a fake clock, and EnginePair, which
// pumps a client and a server TlsConnection through memory in chunks of any
// size (a MemoryPair, memory_pair.h), recording every event.
//
//   EnginePair pair(ServerOptions("server-rsa"), ClientOptions());
//   ASSERT_TRUE(pair.Handshake(/*chunk=*/1).ok());
#ifndef TLSENGINE_TESTS_TESTLIB_TESTLIB_H_
#define TLSENGINE_TESTS_TESTLIB_TESTLIB_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/secure_context.h"
#include "core/tls_connection.h"
#include "tests/testlib/memory_pair.h"

namespace tlsengine {
namespace testing {

// The fixed "now" of engine tests: inside every good test certificate's
// validity (2020..2099) and after the test CRLs were issued.
absl::Time TestNow();

// tests/certs/NAME, read from the runfiles. Aborts the test binary when
// missing: a missing fixture is a broken build, not a test result.
std::string ReadTestFile(const std::string& name);
inline std::string Cert(const std::string& identity) { return ReadTestFile(identity + ".pem"); }
inline std::string Key(const std::string& identity) { return ReadTestFile(identity + "-key.pem"); }
inline std::string Chain(const std::string& identity) { return ReadTestFile(identity + "-chain.pem"); }

// A context for `identity` (leaf + intermediate) trusting ca1, TLS `version`
// ("" for both 1.2 and 1.3).
SecureContextOptions IdentityOptions(const std::string& identity, const std::string& version = "");
std::shared_ptr<const SecureContext> MakeContext(const SecureContextOptions& options);

ConnectionOptions ServerOptions(const std::string& identity = "server-rsa", const std::string& version = "");
// A client trusting ca1 (no identity of its own), servername "localhost".
ConnectionOptions ClientOptions(const std::string& version = "");
// A server on a context made from `o`.
ConnectionOptions ServerWith(const SecureContextOptions& o);
// A client on a context made from `o` (trusting ca1 unless `o.ca` is set),
// servername "localhost".
ConnectionOptions ClientWith(SecureContextOptions o);

// The wire form of a ClientHello message of `length` bytes (its 4-byte
// header included; 50 <= length <= 131114) in handshake records of at most
// 16384 bytes: TLS 1.2 fields, TLS_AES_128_GCM_SHA256 and GREASE cipher
// suites, and a padding extension making up the size. For what a peer can
// make a server hold with a large (or, cut short, a stalled) first flight.
std::string SyntheticClientHello(size_t length);

// One side of an EnginePair: its connection (owned by the pair) and what it
// saw.
struct Side {
  TlsConnection* conn = nullptr;
  std::vector<EventType> events;
  std::vector<Event> log;  // every event, with `data` emptied (it is borrowed)
  std::string received;
  absl::Status error;  // the first error event
  // Called for every event, after it is recorded: answers suspensions
  // (none is answered without it: a test answers later, by hand).
  std::function<void(TlsConnection&, const Event&)> hook;
  bool Saw(EventType type) const;
  // The first event of `type` (a default Event when none).
  Event First(EventType type) const;
  int Count(EventType type) const;
};

// A MemoryPair (memory_pair.h) that records every event of each side and
// aborts the test binary when an engine breaks the buffer contract.
class EnginePair {
 public:
  EnginePair(ConnectionOptions server, ConnectionOptions client, absl::Time now = TestNow());

  TlsConnection& client() { return pair_->client(); }
  TlsConnection& server() { return pair_->server(); }
  Side& client_side() { return *client_; }
  Side& server_side() { return *server_; }
  absl::Time now() const { return pair_->now(); }
  // Moves the clock only: a test calls OnTimer itself.
  void Advance(absl::Duration d) { pair_->set_now(pair_->now() + d); }

  // Moves bytes both ways, `chunk` bytes at a time, polling events after
  // every chunk, until nothing moves. Returns true if anything moved.
  bool Pump(size_t chunk = SIZE_MAX);
  // Pumps until both sides are secure or one failed. Returns the first error
  // (client's first), or OK.
  absl::Status Handshake(size_t chunk = SIZE_MAX);
  // Polls both sides' events without moving bytes.
  void Poll();
  // Moves `from`'s output into `to`, `chunk` bytes at a time, polling `to`
  // after each. Returns true if anything moved.
  bool Transfer(Side& from, Side& to, size_t chunk = SIZE_MAX);
  // Writes all of `data` from one side, pumping as the write buffer fills.
  void SendAll(Side& from, const std::string& data, size_t chunk = SIZE_MAX);

 private:
  MemoryPair::Side Of(const Side& side) const {
    return &side == server_.get() ? MemoryPair::kServer : MemoryPair::kClient;
  }
  void CheckContract() const;

  // On the heap, so that an EnginePair can move: the hooks point at them.
  std::unique_ptr<Side> server_;
  std::unique_ptr<Side> client_;
  std::unique_ptr<MemoryPair> pair_;
};

}  // namespace testing
}  // namespace tlsengine

#endif  // TLSENGINE_TESTS_TESTLIB_TESTLIB_H_

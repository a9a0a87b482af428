// Shared by the fuzz targets, their corpus recorder and their replay tests:
// deterministic randomness and time, an input reader, prebuilt contexts,
// and the configurations a fuzzer's first bytes choose.
//
// Reproducibility: every input starts from the same state. OpenSSL's
// randomness comes from a RAND_METHOD (still honoured by OpenSSL 3.0) that
// returns a fixed pseudo-random stream per endpoint, reset for each input;
// time comes from the input (the engine's `now`) and OpenSSL's own time()
// calls return the same fuzz clock. A crash found once replays every time.
#ifndef TLSENGINE_FUZZ_COMMON_H_
#define TLSENGINE_FUZZ_COMMON_H_

#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/secure_context.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace fuzz {

// ---- Determinism ----

// Which pseudo-random stream OpenSSL draws from: one per endpoint, so that a
// server fed a recorded client flight draws exactly what it drew when the
// flight was recorded.
enum class Stream { kSetup = 0, kServer = 1, kClient = 2 };
void UseStream(Stream stream);
// Resets every stream and the clock. Call at the start of each input.
void ResetDeterminism();
// The fuzz clock: the engine's `now`, and what OpenSSL's time() returns.
absl::Time Now();
void Advance(absl::Duration d);

// A digest of everything the engines wrote (replay tests compare two runs).
void RecordOutput(absl::Span<const uint8_t> bytes);
uint64_t OutputDigest();

// ---- Input ----

class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return size_ - pos_; }
  uint8_t Byte();
  uint16_t U16();  // big-endian
  // Up to `n` bytes (fewer at the end).
  absl::string_view Bytes(size_t n);
  // A chunk: 2-byte length, then that many bytes.
  absl::string_view Chunk() { return Bytes(U16()); }
  absl::string_view Rest() { return Bytes(remaining()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Appends a chunk in Input::Chunk()'s format.
void AppendChunk(std::string* out, absl::string_view chunk);

// ---- Fixtures ----

// Test certificates, read from $TLSENGINE_CERTS or tests/certs.
std::string ReadCert(const std::string& name);

enum class Fixture {
  kServerRsa,
  kServerEcdsa,
  kServerTls12,
  kOtherName,
  kWildcard,
  kClient,
  kClientWithCert,
  kClientTls12,
};
// A context made once (on first use), from its own fixed random seed, so
// that the recorder and every target get the same ticket keys whatever the
// order. Its RSA key is replaced by a fresh copy at each ResetDeterminism:
// RSA blinding caches random state in the key (see common.cc).
std::shared_ptr<const SecureContext> Context(Fixture fixture);
// The addContext table: other.example.com and *.example.com.
std::shared_ptr<SniContexts> SniTable();

// ---- Configurations chosen by the first bytes of an input ----

// Two bytes choose a server's options; a server that answers suspensions
// late (`async`) does so at the next chunk.
struct ServerConfig {
  ConnectionOptions options;
  bool async_answers = false;
};
ServerConfig MakeServerConfig(uint8_t a, uint8_t b);

struct ClientConfig {
  ConnectionOptions options;
};
ClientConfig MakeClientConfig(uint8_t a, uint8_t b);

// Answers a suspension event the way the targets do (SNI: the table's pick;
// sessions: a fixed store; OCSP: the test response).
void AnswerSuspension(TlsConnection& conn, const Event& event);

// Polls every event (answering suspensions unless `pending` keeps them for
// later), and drains the output into RecordOutput. Returns the output bytes.
// Aborts when the engine breaks its contract: an event after its kError or
// kClosed, output it did not announce in interest(), interest() asking to
// write when Output() had nothing, or ConsumeOutput refusing what Output()
// returned.
std::string PollAndDrain(TlsConnection& conn, std::vector<Event>* pending = nullptr);

// Feeds `bytes` to `conn` as far as it takes them, polling (PollAndDrain,
// with `pending` as there) after each piece, and returns what the engine
// wrote meanwhile. The targets and the corpus recorder both feed this way,
// so a recorded flight drives an engine exactly as a target will.
std::string FeedAndPoll(TlsConnection& conn, absl::string_view bytes, std::vector<Event>* pending = nullptr);

// ---- Trust oracle ----

// ca1, the root every fixture trusts, as an X509_STORE (made once).
X509_STORE* TrustStore();
// The host a client checks the server's identity for (servername, else
// host, else "localhost", as the engine does).
std::string IdentityHost(const ConnectionOptions& client);
// After a handshake: if `client.authorized()`, the peer's leaf (from
// GetPeerCertificate(true): raw DER and the issuer chain) must verify to
// `trust` with X509_verify_cert at `now` (purpose sslserver) and pass
// X509_check_host (X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS), or
// X509_check_ip_asc for an IP host. OpenSSL's own verdict, independent of
// ours. True when not authorized.
bool AuthorizedImpliesOracle(const TlsConnection& client, X509_STORE* trust, const std::string& host,
                             absl::Time now);

// Sees every event PollAndDrain polls (tests of the corpus use it);
// nullptr to stop.
void SetEventObserver(std::function<void(const Event&)> observer);

}  // namespace fuzz
}  // namespace tlsengine

#endif  // TLSENGINE_FUZZ_COMMON_H_

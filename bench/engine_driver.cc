// The engine side of the benchmark: every call into the TlsConnection and
// SecureContext API is in this file, so an API change is adapted here only.
// Two engines are pumped through memory by tests/testlib's MemoryPair, as
// the tests and fuzzers do: every span of one side's Output() is copied into
// the other's InputSpace(), and events are polled after every chunk.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/pair.h"
#include "core/secure_context.h"
#include "core/tls_connection.h"
#include "core/tls_session.h"
#include "tests/testlib/memory_pair.h"

namespace tlsengine {
namespace bench {
namespace {

using testing::MemoryPair;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

absl::Status Unfinished(const char* what) { return absl::InternalError(absl::StrCat("engine: ", what)); }

// A Pair over the shared in-memory driver (tests/testlib/memory_pair.h):
// the tests, the fuzzers and this benchmark move bytes the same way.
class EnginePair : public Pair {
 public:
  EnginePair(std::unique_ptr<TlsConnection> client, std::unique_ptr<TlsConnection> server)
      : pair_(std::make_unique<MemoryPair>(std::move(server), std::move(client), absl::Now())) {
    for (Side side : {MemoryPair::kServer, MemoryPair::kClient}) {
      pair_->hooks(side).on_event = [this, side](TlsConnection&, const Event& ev) { OnEvent(side, ev); };
    }
  }
  EnginePair(const EnginePair&) = delete;  // the hooks point at this
  EnginePair& operator=(const EnginePair&) = delete;

  absl::Status Handshake() override {
    pair_->set_now(absl::Now());
    pair_->PollBoth();
    while ((pair_->Transfer(MemoryPair::kClient) | pair_->Transfer(MemoryPair::kServer)) != 0) {
    }
    // As an adapter does after ConsumeOutput: poll until nothing happens
    // (the engine releases idle buffers there).
    pair_->PollBoth();
    if (!error_.ok()) return error_;
    if (!pair_->breach().ok()) return pair_->breach();
    if (!pair_->client().secure() || !pair_->server().secure()) return Unfinished("handshake did not complete");
    return absl::OkStatus();
  }

  absl::Status Send(bool from_client, absl::Span<const uint8_t> data) override {
    const Side from_side = from_client ? MemoryPair::kClient : MemoryPair::kServer;
    const Side to_side = from_client ? MemoryPair::kServer : MemoryPair::kClient;
    TlsConnection& from = pair_->conn(from_side);
    const uint64_t goal = received_[to_side] + data.size();
    pair_->set_now(absl::Now());
    size_t sent = 0;
    for (int stalls = 0; received_[to_side] < goal && stalls < 3;) {
      size_t n = 0;
      if (sent < data.size()) {
        absl::StatusOr<size_t> w = from.Write(data.subspan(sent));
        if (!w.ok()) return w.status();
        n = *w;
        sent += n;
      }
      bool moved = pair_->Transfer(from_side) > 0;
      moved |= pair_->Transfer(to_side) > 0;
      if (!error_.ok()) return error_;
      if (!pair_->breach().ok()) return pair_->breach();
      stalls = moved || n > 0 ? 0 : stalls + 1;
    }
    pair_->Poll(from_side);  // its output was consumed (see Handshake)
    if (received_[to_side] < goal) return Unfinished("data did not arrive");
    return absl::OkStatus();
  }

  std::string Negotiated() const override {
    const TlsConnection& client = pair_->client();
    std::optional<CipherInfo> cipher = client.GetCipher();
    return absl::StrCat(client.protocol(), " ", cipher ? cipher->standard_name : "?", " ",
                        client.is_session_reused() ? "resumed" : "full");
  }

  // The memory figures count what is held per server connection: the
  // server alone, not the pair and its hooks.
  void DropClient() override {
    server_alone_ = pair_->Take(MemoryPair::kServer);
    pair_.reset();
    session_.reset();  // the client's, not what a server holds
  }
  bool ReleaseServerBuffers() override { return server_alone_->ReleaseBuffers(); }

  const std::shared_ptr<const TlsSession>& session() const { return session_; }

 private:
  using Side = MemoryPair::Side;

  void OnEvent(Side side, const Event& ev) {
    switch (ev.type) {
      case EventType::kData: received_[side] += ev.data.size(); break;
      case EventType::kSession: session_ = ev.session_handle; break;
      case EventType::kError:
        if (error_.ok()) error_ = ev.status;
        break;
      default: break;
    }
  }

  std::unique_ptr<MemoryPair> pair_;            // until DropClient()
  std::unique_ptr<TlsConnection> server_alone_;  // after it
  uint64_t received_[2] = {0, 0};
  // The client's latest kSession, decoded: resumptions reuse it as it is,
  // as a client keeping sessions in memory would (no DER to decode).
  std::shared_ptr<const TlsSession> session_;
  absl::Status error_;   // the first kError of either side
};

class EngineStack : public Stack {
 public:
  EngineStack(std::shared_ptr<const SecureContext> server, std::shared_ptr<const SecureContext> client)
      : server_(std::move(server)), client_(std::move(client)) {}

  absl::StatusOr<std::unique_ptr<Pair>> NewPair(bool resume) override {
    absl::Time now = absl::Now();
    ConnectionOptions server;
    server.is_server = true;
    server.secure_context = server_;
    ConnectionOptions client;
    client.secure_context = client_;
    client.servername = "localhost";
    if (resume) client.session_handle = session_;
    absl::StatusOr<std::unique_ptr<TlsConnection>> s = TlsConnection::Create(std::move(server), now);
    if (!s.ok()) return s.status();
    absl::StatusOr<std::unique_ptr<TlsConnection>> c = TlsConnection::Create(std::move(client), now);
    if (!c.ok()) return c.status();
    return std::unique_ptr<Pair>(new EnginePair(*std::move(c), *std::move(s)));
  }

  absl::Status Remember(Pair& pair) override {
    session_ = static_cast<EnginePair&>(pair).session();  // this stack made it
    if (!session_) return Unfinished("the client got no session");
    return absl::OkStatus();
  }

 private:
  std::shared_ptr<const SecureContext> server_;
  std::shared_ptr<const SecureContext> client_;
  std::shared_ptr<const TlsSession> session_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Stack>> MakeEngineStack(const Config& config) {
  const std::string dir = config.certs_dir + "/";
  absl::StatusOr<std::string> key = ReadFile(dir + config.identity + "-key.pem");
  absl::StatusOr<std::string> chain = ReadFile(dir + config.identity + "-chain.pem");
  absl::StatusOr<std::string> ca = ReadFile(dir + "ca1.pem");
  for (const auto* file : {&key, &chain, &ca}) {
    if (!file->ok()) return file->status();
  }
  SecureContextOptions common;
  common.min_version = common.max_version = config.version;
  common.ciphers = config.ciphers;
  common.ciphersuites = config.ciphersuites;
  common.ecdh_curve = "X25519:P-256";
  // The server keeps `ca` unset, as a server that never asks for client
  // certificates would (it gets the system trust store).
  SecureContextOptions server = common;
  server.key = {*key};
  server.cert = {*chain};
  SecureContextOptions client = common;
  client.ca = std::vector<std::string>{*ca};
  absl::StatusOr<std::shared_ptr<const SecureContext>> s = SecureContext::Create(server);
  if (!s.ok()) return s.status();
  absl::StatusOr<std::shared_ptr<const SecureContext>> c = SecureContext::Create(client);
  if (!c.ok()) return c.status();
  return std::unique_ptr<Stack>(new EngineStack(*std::move(s), *std::move(c)));
}

}  // namespace bench
}  // namespace tlsengine

// The engine side of the benchmark: every call into the TlsConnection and
// SecureContext API is in this file, so an API change is adapted here only.
// Two engines are pumped through memory the way tests/testlib does it:
// Output() of one side is copied into InputSpace() of the other, and events
// are polled after every chunk.
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

namespace tlsengine {
namespace bench {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

absl::Status Unfinished(const char* what) { return absl::InternalError(absl::StrCat("engine: ", what)); }

class EnginePair : public Pair {
 public:
  EnginePair(std::unique_ptr<TlsConnection> client, std::unique_ptr<TlsConnection> server)
      : client_(std::move(client)), server_(std::move(server)) {}

  absl::Status Handshake() override {
    absl::Time now = absl::Now();
    Drain(*client_, kClient, now);
    Drain(*server_, kServer, now);
    while (Transfer(*client_, *server_, kServer, now) | Transfer(*server_, *client_, kClient, now)) {
    }
    // As an adapter does after ConsumeOutput: poll until nothing happens
    // (the engine releases idle buffers there).
    Drain(*client_, kClient, now);
    Drain(*server_, kServer, now);
    if (!error_.ok()) return error_;
    if (!client_->secure() || !server_->secure()) return Unfinished("handshake did not complete");
    return absl::OkStatus();
  }

  absl::Status Send(bool from_client, absl::Span<const uint8_t> data) override {
    TlsConnection& from = from_client ? *client_ : *server_;
    TlsConnection& to = from_client ? *server_ : *client_;
    const int to_side = from_client ? kServer : kClient;
    const int from_side = from_client ? kClient : kServer;
    const uint64_t goal = received_[to_side] + data.size();
    absl::Time now = absl::Now();
    size_t sent = 0;
    for (int stalls = 0; received_[to_side] < goal && stalls < 3;) {
      size_t n = 0;
      if (sent < data.size()) {
        absl::StatusOr<size_t> w = from.Write(data.subspan(sent));
        if (!w.ok()) return w.status();
        n = *w;
        sent += n;
      }
      bool moved = Transfer(from, to, to_side, now);
      moved |= Transfer(to, from, from_side, now);
      if (!error_.ok()) return error_;
      stalls = moved || n > 0 ? 0 : stalls + 1;
    }
    Drain(from, from_side, now);  // its output was consumed (see Handshake)
    if (received_[to_side] < goal) return Unfinished("data did not arrive");
    return absl::OkStatus();
  }

  std::string Negotiated() const override {
    std::optional<CipherInfo> cipher = client_->GetCipher();
    return absl::StrCat(client_->protocol(), " ", cipher ? cipher->standard_name : "?", " ",
                        client_->is_session_reused() ? "resumed" : "full");
  }

  void DropClient() override {
    client_.reset();
    session_.reset();  // the client's, not what a server holds
  }
  bool ReleaseServerBuffers() override { return server_->ReleaseBuffers(); }

  const std::shared_ptr<const TlsSession>& session() const { return session_; }

 private:
  static constexpr int kClient = 0;
  static constexpr int kServer = 1;

  void Drain(TlsConnection& conn, int side, absl::Time now) {
    while (std::optional<Event> ev = conn.NextEvent(now)) {
      switch (ev->type) {
        case EventType::kData: received_[side] += ev->data.size(); break;
        case EventType::kSession: session_ = std::move(ev->session_handle); break;
        case EventType::kError:
          if (error_.ok()) error_ = ev->status;
          break;
        default: break;
      }
    }
  }

  // Moves what `from` has to send into `to`, polling `to` after each chunk.
  bool Transfer(TlsConnection& from, TlsConnection& to, int to_side, absl::Time now) {
    bool moved = false;
    for (;;) {
      absl::InlinedVector<absl::Span<const uint8_t>, 2> out = from.Output();
      if (out.empty()) break;
      absl::Span<uint8_t> space = to.InputSpace();
      size_t n = std::min(out[0].size(), space.size());
      if (n == 0) break;
      std::memcpy(space.data(), out[0].data(), n);
      absl::Status committed = to.CommitInput(n);
      if (!committed.ok()) {
        if (error_.ok()) error_ = committed;
        break;
      }
      absl::Status consumed = from.ConsumeOutput(n);
      if (!consumed.ok()) {
        if (error_.ok()) error_ = consumed;
        break;
      }
      moved = true;
      Drain(to, to_side, now);
    }
    return moved;
  }

  std::unique_ptr<TlsConnection> client_;
  std::unique_ptr<TlsConnection> server_;
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

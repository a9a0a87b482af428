#include "tests/testlib/testlib.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace tlsengine {
namespace testing {

absl::Time TestNow() { return absl::FromUnixSeconds(1906502400); }  // 2030-06-01

std::string ReadTestFile(const std::string& name) {
  std::ifstream in("tests/certs/" + name, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "missing test file tests/certs/%s\n", name.c_str());
    std::abort();
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

SecureContextOptions IdentityOptions(const std::string& identity, const std::string& version) {
  SecureContextOptions o;
  if (!identity.empty()) {
    o.key = {Key(identity)};
    o.cert = {Chain(identity)};
  }
  o.ca = std::vector<std::string>{Cert("ca1")};
  if (!version.empty()) o.min_version = o.max_version = version;
  return o;
}

std::shared_ptr<const SecureContext> MakeContext(const SecureContextOptions& options) {
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(options);
  if (!ctx.ok()) {
    std::fprintf(stderr, "test context: %s\n", ctx.status().ToString().c_str());
    std::abort();
  }
  return *ctx;
}

ConnectionOptions ServerOptions(const std::string& identity, const std::string& version) {
  ConnectionOptions o;
  o.is_server = true;
  o.secure_context = MakeContext(IdentityOptions(identity, version));
  return o;
}

ConnectionOptions ClientOptions(const std::string& version) {
  ConnectionOptions o;
  o.secure_context = MakeContext(IdentityOptions("", version));
  o.servername = "localhost";
  return o;
}

ConnectionOptions ServerWith(const SecureContextOptions& o) {
  ConnectionOptions so;
  so.is_server = true;
  so.secure_context = MakeContext(o);
  return so;
}

ConnectionOptions ClientWith(SecureContextOptions o) {
  ConnectionOptions co = ClientOptions();
  if (!o.ca.has_value()) o.ca = std::vector<std::string>{Cert("ca1")};
  co.secure_context = MakeContext(o);
  return co;
}

std::string SyntheticClientHello(size_t length) {
  auto u16 = [](size_t v) { return std::string{static_cast<char>(v >> 8), static_cast<char>(v)}; };
  // Body: version, random, empty session id, suites, null compression,
  // extensions (one padding extension): 45 bytes besides suites and padding.
  const size_t body = length - 4;
  size_t padding = std::min<size_t>(body - 47, 65531);
  size_t suites = body - 45 - padding;
  if (suites % 2 != 0) {
    --padding;
    ++suites;
  }
  std::string hello = "\x01";
  hello += static_cast<char>(body >> 16);
  hello += u16(body);
  hello += std::string("\x03\x03", 2) + std::string(32, 'r') + std::string(1, '\0');
  hello += u16(suites) + std::string("\x13\x01", 2);
  for (size_t i = 2; i < suites; i += 2) hello += "\x0a\x0a";
  hello += std::string("\x01\x00", 2) + u16(4 + padding) + std::string("\x00\x15", 2) + u16(padding);
  hello += std::string(padding, '\0');
  std::string wire;
  for (size_t at = 0; at < hello.size(); at += 16384) {
    const size_t len = std::min<size_t>(16384, hello.size() - at);
    wire += std::string("\x16\x03\x01", 3) + u16(len) + hello.substr(at, len);
  }
  return wire;
}

bool Side::Saw(EventType type) const { return Count(type) > 0; }

int Side::Count(EventType type) const {
  return static_cast<int>(std::count(events.begin(), events.end(), type));
}

Event Side::First(EventType type) const {
  for (const Event& e : log) {
    if (e.type == type) return e;
  }
  return Event{};
}

namespace {

std::unique_ptr<TlsConnection> MakeConnection(ConnectionOptions options, absl::Time now) {
  absl::StatusOr<std::unique_ptr<TlsConnection>> conn = TlsConnection::Create(std::move(options), now);
  if (!conn.ok()) {
    std::fprintf(stderr, "EnginePair: %s\n", conn.status().ToString().c_str());
    std::abort();
  }
  return *std::move(conn);
}

void Record(Side& side, TlsConnection& conn, const Event& ev) {
  side.events.push_back(ev.type);
  if (ev.type == EventType::kData) {
    side.received.append(reinterpret_cast<const char*>(ev.data.data()), ev.data.size());
  }
  if (ev.type == EventType::kError && side.error.ok()) side.error = ev.status;
  Event copy = ev;
  copy.data = {};
  side.log.push_back(std::move(copy));
  if (side.hook) side.hook(conn, ev);
}

}  // namespace

EnginePair::EnginePair(ConnectionOptions server, ConnectionOptions client, absl::Time now)
    : server_(std::make_unique<Side>()), client_(std::make_unique<Side>()) {
  std::unique_ptr<TlsConnection> s = MakeConnection(std::move(server), now);
  std::unique_ptr<TlsConnection> c = MakeConnection(std::move(client), now);
  pair_ = std::make_unique<MemoryPair>(std::move(s), std::move(c), now);
  for (auto [which, side] :
       {std::pair{MemoryPair::kServer, server_.get()}, std::pair{MemoryPair::kClient, client_.get()}}) {
    side->conn = &pair_->conn(which);
    MemoryPair::Hooks& hooks = pair_->hooks(which);
    hooks.answer_by_default = false;  // the test's hook answers, or the test itself
    hooks.on_event = [side](TlsConnection& conn, const Event& ev) { Record(*side, conn, ev); };
  }
}

void EnginePair::CheckContract() const {
  if (pair_->breach().ok()) return;
  std::fprintf(stderr, "EnginePair: %s\n", pair_->breach().ToString().c_str());
  std::abort();
}

void EnginePair::Poll() { pair_->PollBoth(); }

bool EnginePair::Transfer(Side& from, Side& to, size_t chunk) {
  (void)to;  // the other side of `from`
  pair_->set_chunk(chunk);
  bool moved = pair_->Transfer(Of(from)) > 0;
  CheckContract();
  return moved;
}

bool EnginePair::Pump(size_t chunk) {
  pair_->set_chunk(chunk);
  bool any = pair_->Pump();
  CheckContract();
  return any;
}

absl::Status EnginePair::Handshake(size_t chunk) {
  Pump(chunk);
  if (!client_->error.ok()) return client_->error;
  if (!server_->error.ok()) return server_->error;
  if (!client().secure() || !server().secure()) {
    return absl::InternalError("handshake did not complete");
  }
  return absl::OkStatus();
}

void EnginePair::SendAll(Side& from, const std::string& data, size_t chunk) {
  size_t sent = 0;
  for (int stalls = 0; sent < data.size() && stalls < 3;) {
    absl::StatusOr<size_t> n = from.conn->Write(absl::string_view(data).substr(sent));
    if (!n.ok()) return;
    sent += *n;
    stalls = Pump(chunk) || *n > 0 ? 0 : stalls + 1;
  }
  Pump(chunk);
}

}  // namespace testing
}  // namespace tlsengine

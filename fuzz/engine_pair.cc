// engine_pair: a connected client and server whose API calls the fuzzer
// chooses: writes of any size, moving bytes (all or some), key updates,
// renegotiation, setMaxSendFragment, close, timers, transport EOF, and
// bytes dropped or flipped on the wire.
//
// Invariants checked (abort on violation):
// - plaintext arrives in order and unchanged: every byte received is the
//   byte sent at that position, even after the wire was corrupted (TLS must
//   turn corruption into an error, never into wrong data);
// - no event follows kError or kClosed;
// - the output buffer never grows past its bound by more than a record and
//   a flight (End() included: it once flushed everything past the bound);
// - ConsumeOutput accepts what Output() returned.
//
// The pair is tests/testlib's MemoryPair (the tests and the benchmark drive
// engines through it too), with this target's checks in its hooks.
//
// Input: [server a][server b][client a][client b] then operations.
#include <cstdlib>
#include <string>

#include "fuzz/common.h"
#include "tests/testlib/memory_pair.h"

using namespace tlsengine;
using testing::MemoryPair;

namespace {

// One record of plaintext encrypted just under the bound, plus a flight
// (certificates, renegotiation) or an answer OpenSSL writes while reading.
constexpr size_t kMaxOutputSlack = 16384 + 256 + 8192;

uint8_t Pattern(size_t position, int side) { return static_cast<uint8_t>(position * 131 + side * 7 + 1); }

struct End {
  MemoryPair::Side side;
  fuzz::Stream stream;
  size_t written = 0;    // plaintext accepted by Write
  size_t received = 0;   // plaintext received from the other side
  bool failed = false;   // saw kError or kClosed
  size_t max_output = 0;
  const ConnectionOptions* client_options = nullptr;  // client: identity oracle after every handshake
  int mangle = 0;        // the next bytes on the wire from this side: 1 flip a bit, 2 drop some
  size_t where = 0;      // where (modulo their size)
};

// The checks on every event of `end`, whose peer is `peer`; answers suspensions.
void OnEvent(End& end, const End& peer, TlsConnection& conn, const Event& ev) {
  if (end.failed) std::abort();  // an event after the end
  if (ev.type == EventType::kError || ev.type == EventType::kClosed) end.failed = true;
  if (ev.type == EventType::kData) {
    for (uint8_t byte : ev.data) {
      if (end.received >= peer.written || byte != Pattern(end.received, peer.side)) std::abort();
      end.received++;
    }
  }
  fuzz::AnswerSuspension(conn, ev);
  // Identity: after every handshake (resumed ones too) an authorized client holds OpenSSL's verdict.
  if (end.client_options != nullptr && (ev.type == EventType::kSecure || ev.type == EventType::kRenegotiated) &&
      !fuzz::AuthorizedImpliesOracle(conn, fuzz::TrustStore(), fuzz::IdentityHost(*end.client_options),
                                     fuzz::Now())) {
    std::abort();
  }
}

// The bytes leaving `end` (already taken from its output): the output bound,
// the digest, and the mangling the input asked for (once).
void OnWire(End& end, const TlsConnection& conn, std::string& bytes) {
  if (conn.OutputSize() > end.max_output + kMaxOutputSlack) std::abort();
  fuzz::RecordOutput(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  if (!bytes.empty() && end.mangle == 1) bytes[end.where % bytes.size()] ^= static_cast<char>(1 << (end.where % 8));
  if (!bytes.empty() && end.mangle == 2) bytes.erase(end.where % bytes.size(), 1 + end.where % 7);
  end.mangle = 0;
}

void Write(MemoryPair& pair, End& end, size_t n) {
  fuzz::UseStream(end.stream);
  std::string data(n, '\0');
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>(Pattern(end.written + i, end.side));
  absl::StatusOr<size_t> taken = pair.conn(end.side).Write(data);
  if (taken.ok()) end.written += *taken;
}

// Moves up to `limit` bytes of `from`'s output to the other side, perhaps
// flipping or dropping some of the first piece on the way.
void Transfer(MemoryPair& pair, End& from, size_t limit, int mangle, size_t where) {
  from.mangle = mangle;
  from.where = where;
  pair.Transfer(from.side, limit);
  from.mangle = 0;
  if (!pair.breach().ok()) std::abort();  // ConsumeOutput refused what Output() returned
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ResetDeterminism();
  fuzz::Input in(data, size);
  uint8_t sa = in.Byte(), sb = in.Byte(), ca = in.Byte(), cb = in.Byte();
  fuzz::ServerConfig server_config = fuzz::MakeServerConfig(sa, sb);
  fuzz::ClientConfig client_config = fuzz::MakeClientConfig(ca, cb);
  End server{MemoryPair::kServer, fuzz::Stream::kServer};
  End client{MemoryPair::kClient, fuzz::Stream::kClient};
  fuzz::UseStream(fuzz::Stream::kServer);
  std::unique_ptr<TlsConnection> server_conn = *TlsConnection::Create(server_config.options, fuzz::Now());
  server.max_output = server_config.options.max_output_buffer;
  fuzz::UseStream(fuzz::Stream::kClient);
  std::unique_ptr<TlsConnection> client_conn = *TlsConnection::Create(client_config.options, fuzz::Now());
  client.max_output = client_config.options.max_output_buffer;
  client.client_options = &client_config.options;
  MemoryPair pair(std::move(server_conn), std::move(client_conn), fuzz::Now());
  for (auto [end, peer] : {std::pair{&server, &client}, std::pair{&client, &server}}) {
    MemoryPair::Hooks& hooks = pair.hooks(end->side);
    hooks.answer_by_default = false;  // OnEvent answers, as the application
    hooks.enter = [end = end] { fuzz::UseStream(end->stream); };
    hooks.on_event = [end = end, peer = peer](TlsConnection& c, const Event& e) { OnEvent(*end, *peer, c, e); };
    const TlsConnection* conn = &pair.conn(end->side);
    hooks.on_wire = [end = end, conn](std::string& bytes) { OnWire(*end, *conn, bytes); };
  }

  for (int ops = 0; !in.empty() && ops < 400; ++ops) {
    uint8_t op = in.Byte();
    End& end = (op & 0x80) ? client : server;
    TlsConnection& conn = pair.conn(end.side);
    switch (op & 0x0f) {
      case 0: Write(pair, end, in.U16() % 40000); break;
      case 1: Transfer(pair, end, SIZE_MAX, 0, 0); break;
      case 2: Transfer(pair, end, 1 + in.U16() % 20000, 0, 0); break;
      case 3: pair.Poll(end.side); break;
      case 4: fuzz::UseStream(end.stream); conn.KeyUpdate(op & 0x10).IgnoreError(); break;
      case 5:
        fuzz::UseStream(end.stream);
        conn.Renegotiate({.request_cert = (op & 0x10) != 0, .reject_unauthorized = (op & 0x20) != 0}).IgnoreError();
        break;
      case 6: conn.SetMaxSendFragment(in.U16()); break;
      case 7:
        fuzz::UseStream(end.stream);
        if (op & 0x20) {
          conn.Destroy();
        } else {
          conn.End(fuzz::Now(), op & 0x10);
        }
        break;
      case 8: {
        const absl::Duration d = absl::Seconds(in.Byte());
        fuzz::Advance(d);
        pair.Advance(d);  // the same clock: fires what is due, server first
        break;
      }
      case 9: conn.OnTransportEof(); break;
      case 10: Transfer(pair, end, SIZE_MAX, 1, in.U16()); break;  // flip a bit
      case 11: Transfer(pair, end, SIZE_MAX, 2, in.U16()); break;  // drop bytes
      default: pair.Poll(MemoryPair::kServer); pair.Poll(MemoryPair::kClient); break;
    }
  }
  return 0;
}

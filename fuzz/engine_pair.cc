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
// Input: [server a][server b][client a][client b] then operations.
#include <cstdlib>

#include "fuzz/common.h"

using namespace tlsengine;

namespace {

// One record of plaintext encrypted just under the bound, plus a flight
// (certificates, renegotiation) or an answer OpenSSL writes while reading.
constexpr size_t kMaxOutputSlack = 16384 + 256 + 8192;

uint8_t Pattern(size_t position, int side) { return static_cast<uint8_t>(position * 131 + side * 7 + 1); }

struct End {
  std::unique_ptr<TlsConnection> conn;
  fuzz::Stream stream;
  int side;              // 0 server, 1 client
  size_t written = 0;    // plaintext accepted by Write
  size_t received = 0;   // plaintext received from the other side
  bool failed = false;   // saw kError or kClosed
  size_t max_output = 0;
  const ConnectionOptions* client_options = nullptr;  // client: identity oracle after every handshake
};

void Poll(End& end, End& peer) {
  fuzz::UseStream(end.stream);
  while (std::optional<Event> ev = end.conn->NextEvent(fuzz::Now())) {
    if (end.failed) std::abort();  // an event after the end
    if (ev->type == EventType::kError || ev->type == EventType::kClosed) end.failed = true;
    if (ev->type == EventType::kData) {
      for (uint8_t byte : ev->data) {
        if (end.received >= peer.written || byte != Pattern(end.received, peer.side)) std::abort();
        end.received++;
      }
    }
    fuzz::AnswerSuspension(*end.conn, *ev);
    // Identity: after every handshake (resumed ones too) an authorized client holds OpenSSL's verdict.
    if (end.client_options != nullptr && (ev->type == EventType::kSecure || ev->type == EventType::kRenegotiated) &&
        !fuzz::AuthorizedImpliesOracle(*end.conn, fuzz::TrustStore(), fuzz::IdentityHost(*end.client_options),
                                       fuzz::Now())) {
      std::abort();
    }
  }
}

void Write(End& end, size_t n) {
  fuzz::UseStream(end.stream);
  std::string data(n, '\0');
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>(Pattern(end.written + i, end.side));
  absl::StatusOr<size_t> taken = end.conn->Write(data);
  if (taken.ok()) end.written += *taken;
}

// Moves up to `limit` bytes of `from`'s output to `to`, perhaps dropping or
// flipping some on the way.
void Transfer(End& from, End& to, size_t limit, int mangle, size_t where) {
  fuzz::UseStream(from.stream);
  auto out = from.conn->Output();
  if (out.empty()) return;
  if (from.conn->OutputSize() > from.max_output + kMaxOutputSlack) std::abort();
  std::string bytes(reinterpret_cast<const char*>(out[0].data()), std::min(limit, out[0].size()));
  if (!from.conn->ConsumeOutput(bytes.size()).ok()) std::abort();
  fuzz::RecordOutput(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  if (!bytes.empty() && mangle == 1) bytes[where % bytes.size()] ^= static_cast<char>(1 << (where % 8));
  if (!bytes.empty() && mangle == 2) bytes.erase(where % bytes.size(), 1 + where % 7);
  fuzz::UseStream(to.stream);
  absl::string_view rest = bytes;
  while (!rest.empty()) {
    absl::StatusOr<size_t> n =
        to.conn->Feed(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(rest.data()), rest.size()));
    if (!n.ok() || *n == 0) break;
    rest.remove_prefix(*n);
    Poll(to, from);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ResetDeterminism();
  fuzz::Input in(data, size);
  uint8_t sa = in.Byte(), sb = in.Byte(), ca = in.Byte(), cb = in.Byte();
  fuzz::ServerConfig server_config = fuzz::MakeServerConfig(sa, sb);
  fuzz::ClientConfig client_config = fuzz::MakeClientConfig(ca, cb);
  End server{nullptr, fuzz::Stream::kServer, 0};
  End client{nullptr, fuzz::Stream::kClient, 1};
  fuzz::UseStream(fuzz::Stream::kServer);
  server.conn = *TlsConnection::Create(server_config.options, fuzz::Now());
  server.max_output = server_config.options.max_output_buffer;
  fuzz::UseStream(fuzz::Stream::kClient);
  client.conn = *TlsConnection::Create(client_config.options, fuzz::Now());
  client.max_output = client_config.options.max_output_buffer;
  client.client_options = &client_config.options;

  for (int ops = 0; !in.empty() && ops < 400; ++ops) {
    uint8_t op = in.Byte();
    End& end = (op & 0x80) ? client : server;
    End& peer = (op & 0x80) ? server : client;
    switch (op & 0x0f) {
      case 0: Write(end, in.U16() % 40000); break;
      case 1: Transfer(end, peer, SIZE_MAX, 0, 0); break;
      case 2: Transfer(end, peer, 1 + in.U16() % 20000, 0, 0); break;
      case 3: Poll(end, peer); break;
      case 4: fuzz::UseStream(end.stream); end.conn->KeyUpdate(op & 0x10).IgnoreError(); break;
      case 5:
        fuzz::UseStream(end.stream);
        end.conn->Renegotiate({.request_cert = (op & 0x10) != 0, .reject_unauthorized = (op & 0x20) != 0})
            .IgnoreError();
        break;
      case 6: end.conn->SetMaxSendFragment(in.U16()); break;
      case 7:
        fuzz::UseStream(end.stream);
        if (op & 0x20) {
          end.conn->Destroy();
        } else {
          end.conn->End(fuzz::Now(), op & 0x10);
        }
        break;
      case 8: {
        fuzz::Advance(absl::Seconds(in.Byte()));
        for (End* e : {&server, &client}) {
          fuzz::UseStream(e->stream);
          if (fuzz::Now() >= e->conn->NextDeadline()) e->conn->OnTimer(fuzz::Now());
        }
        break;
      }
      case 9: end.conn->OnTransportEof(); break;
      case 10: Transfer(end, peer, SIZE_MAX, 1, in.U16()); break;  // flip a bit
      case 11: Transfer(end, peer, SIZE_MAX, 2, in.U16()); break;  // drop bytes
      default: Poll(server, client); Poll(client, server); break;
    }
  }
  return 0;
}

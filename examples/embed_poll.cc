// embed_poll: the engine driven from a hand-written poll() loop, for programs
// with an event loop of their own. It connects to a line echo server, sends
// 1 MiB, reads all of it back, and closes. The whole engine contract is here:
//   * interest() is one answer that arms poll() (read, write) and the timer;
//   * backpressure both ways: Write() takes what fits and kDrain says when to
//     offer more; while the engine's buffers are full interest().read is
//     false, so we stop reading the socket and the kernel slows the peer;
//   * timers: OnTimer() once interest().deadline has passed (the handshake
//     timeout, the wait for the peer's close_notify);
//   * the careful close: send the last record, shut down writing, drain
//     briefly, close, so that the peer reads our close_notify or alert.
// Usage: embed_poll IPV4_ADDRESS PORT CA_FILE   (the server must be "localhost")
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/time/clock.h"
#include "core/errors.h"
#include "core/secure_context.h"
#include "core/tls_connection.h"

using namespace tlsengine;  // NOLINT: a short example

namespace {

int MillisUntil(absl::Time t) {  // for poll(); -1 waits forever
  if (t == absl::InfiniteFuture()) return -1;
  return static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(t - absl::Now()) + 1));
}

// Sends what the socket takes now; the rest stays in the engine for the
// next POLLOUT. Output() is borrowed: valid until the next engine call.
void SendSome(int fd, TlsConnection& conn) {
  for (absl::Span<const uint8_t> span : conn.Output()) {
    ssize_t n = send(fd, span.data(), span.size(), MSG_NOSIGNAL);
    if (n <= 0) return;                      // EAGAIN (or an error the next recv reports)
    conn.ConsumeOutput(n).IgnoreError();     // fails only if n > pending
    if (static_cast<size_t>(n) < span.size()) return;
  }
}

// The careful close (see the header comment): bounded to half a second.
void CarefulClose(int fd, TlsConnection& conn) {
  const absl::Time until = absl::Now() + absl::Milliseconds(500);
  for (pollfd p{fd, POLLOUT, 0}; !conn.Output().empty() && poll(&p, 1, MillisUntil(until)) > 0;) SendSome(fd, conn);
  shutdown(fd, SHUT_WR);
  char sink[4096];
  for (pollfd p{fd, POLLIN, 0}; poll(&p, 1, MillisUntil(until)) > 0 && recv(fd, sink, sizeof(sink), 0) > 0;) {
  }
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return std::fprintf(stderr, "usage: embed_poll IPV4_ADDRESS PORT CA_FILE\n"), 2;
  // A context is built once and shared by any number of connections.
  SecureContextOptions ctx_opts;
  std::stringstream ca;
  ca << std::ifstream(argv[3]).rdbuf();
  ctx_opts.ca = std::vector<std::string>{ca.str()};
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(ctx_opts);
  if (!ctx.ok()) return std::fprintf(stderr, "context: %s\n", ctx.status().ToString().c_str()), 1;
  ConnectionOptions opts;
  opts.secure_context = *ctx;
  opts.servername = "localhost";
  opts.handshake_timeout = absl::Seconds(10);  // the engine's timer; we only call OnTimer()
  std::unique_ptr<TlsConnection> conn = TlsConnection::Create(opts, absl::Now()).value();

  // A plain TCP connection (a blocking connect keeps this short), then
  // non-blocking: from here on the program waits only in poll().
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1 ||
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return std::perror("connect"), 1;
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);

  std::string payload(1 << 20, 'x');  // 1 MiB of 64-byte lines for the echo server
  for (size_t i = 63; i < payload.size(); i += 64) payload[i] = '\n';
  size_t offered = 0, echoed = 0;
  // Offers plaintext until the engine's write buffer is full; kDrain calls
  // again. What is written before the handshake is sent after it.
  auto offer = [&] {
    while (offered < payload.size()) {
      absl::StatusOr<size_t> n = conn->Write(absl::string_view(payload).substr(offered));
      if (!n.ok() || *n == 0) return;  // an error comes as kError too; 0 is backpressure
      offered += *n;
    }
  };
  offer();

  absl::Status failure;
  for (bool closed = false, ended = false; !closed && failure.ok();) {
    // 1. Poll events until nullopt after anything that may change the engine.
    while (std::optional<Event> ev = conn->NextEvent(absl::Now())) {
      switch (ev->type) {
        case EventType::kSecure:
          std::printf("secure: %s, authorized: %d\n", conn->protocol().c_str(), conn->authorized());
          break;
        case EventType::kData: echoed += ev->data.size(); break;  // borrowed: use it now
        case EventType::kDrain: offer(); break;
        case EventType::kPeerClosed: std::printf("peer sent close_notify\n"); break;
        case EventType::kTruncated: failure = absl::UnavailableError("truncated"); break;
        case EventType::kError: failure = ev->status; break;  // its alert waits in Output()
        case EventType::kClosed: closed = true; break;        // both close_notifys exchanged
        default: break;
      }
    }
    if (echoed == payload.size() && !ended) {
      conn->End(absl::Now(), /*wait_for_peer=*/true);  // close_notify, then wait for the peer's
      ended = true;
      continue;  // End() changed the engine: poll its events again
    }
    if (closed || !failure.ok()) break;
    // 2. One answer arms poll() and the timer.
    Interest want = conn->interest();
    pollfd p{fd, static_cast<short>((want.read ? POLLIN : 0) | (want.write ? POLLOUT : 0)), 0};
    poll(&p, 1, MillisUntil(want.deadline));
    // 3. Timers, then bytes out, then bytes in (into the engine's own buffer).
    if (absl::Now() >= want.deadline) conn->OnTimer(absl::Now());
    if (p.revents & POLLOUT) SendSome(fd, *conn);
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      absl::Span<uint8_t> space = conn->InputSpace();  // a reservation, until committed
      ssize_t n = recv(fd, space.data(), space.size(), 0);
      conn->CommitInput(n > 0 ? n : 0).IgnoreError();  // a failure arrives as kError
      if (n == 0 || (n < 0 && errno != EAGAIN)) conn->OnTransportEof();
    }
  }
  CarefulClose(fd, *conn);
  if (!failure.ok()) {
    std::fprintf(stderr, "embed_poll: %s [%s]\n", failure.ToString().c_str(), NodeCode(failure).c_str());
    return 1;
  }
  std::printf("echoed %zu bytes\n", echoed);
  return 0;
}

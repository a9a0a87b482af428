// Link: one socket fd and one TlsConnection on an epoll::Loop, the small
// driver tlsctl runs on until adapters/epoll's TlsSocket and Server are
// implemented (their headers are on branch `adapter`; swap this for them
// then). It reads into the engine's input space, sends from its output
// spans, arms the watch from interest() and one timer from its deadline,
// and closes without losing the alert: flush, shutdown(SHUT_WR), read and
// discard briefly, close.
//
//   auto link = Link::Start(loop, fd, conn_opts, handlers).value();
//   // handlers.on_event sees every engine event; it may Write(), End(),
//   // answer suspensions on link->tls(); handlers.on_close comes last.
//
// Threads: a Link belongs to its loop's thread.
#ifndef TLSENGINE_EXAMPLES_TLSCTL_LINK_H_
#define TLSENGINE_EXAMPLES_TLSCTL_LINK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/epoll/loop.h"
#include "core/tls_connection.h"
#include "examples/tlsctl/report.h"

namespace tlsengine {
namespace tlsctl {

class Link : public epoll::Closable, public std::enable_shared_from_this<Link> {
 public:
  struct Handlers {
    // Every engine event, kData included (the view is valid during the call).
    std::function<void(Link&, const Event&)> on_event;
    // The fd is closed; `status` is the engine's (OK for a clean close).
    // Always last, exactly once. The Link may be dropped from here.
    std::function<void(Link&, const absl::Status&)> on_close;
  };

  // Takes `fd` (a connected, non-blocking stream socket; closed at the end).
  // The Link keeps itself alive until on_close. kInvalidArgument for bad
  // options (TlsConnection::Create), a Loop::Watch error otherwise.
  static absl::StatusOr<std::shared_ptr<Link>> Start(epoll::Loop* loop, int fd, ConnectionOptions options,
                                                     Handlers handlers);
  ~Link() override;

  TlsConnection& tls() { return *tls_; }
  // Queues plaintext; it is handed to the engine as its write buffer frees.
  void Write(absl::string_view data);
  // Node's end(): after everything queued, close_notify; with
  // wait_for_peer, the engine keeps reading until the peer's.
  void End(bool wait_for_peer = false);
  // The peer left without close_notify (kTruncated): sends what the
  // engine has already encrypted, then closes. End() cannot be used there:
  // after OpenSSL's unexpected-EOF error the engine never sends
  // close_notify, so kClosed would never come.
  void Abandon();
  // Runs the engine after a change made outside an event (Renegotiate, ...).
  void Pump();

  const PeerAddress& peer() const { return peer_; }
  uint64_t bytes_read() const { return bytes_read_; }        // ciphertext in
  uint64_t bytes_written() const { return bytes_written_; }  // ciphertext out
  size_t queued() const { return pending_.size(); }

  // epoll::Closable, for Loop::Shutdown.
  void CloseGracefully(absl::Time deadline) override;
  void ForceClose() override;

 private:
  Link(epoll::Loop* loop, int fd, Handlers handlers);
  void OnReady(epoll::Ready ready);
  void OnTimer();
  bool Flush();     // sends what the socket takes; true if anything went
  void Fail(const absl::Status& status);  // the transport broke
  void Feed();      // moves pending_ into the engine
  void Arm();
  void BeginLinger();
  void Finish();

  epoll::Loop* const loop_;
  int fd_;
  Handlers handlers_;
  std::unique_ptr<TlsConnection> tls_;
  std::shared_ptr<Link> self_;  // alive until on_close
  PeerAddress peer_;
  std::string pending_;
  bool end_requested_ = false;
  bool end_wait_ = false;
  bool engine_done_ = false;  // kClosed or kError seen
  bool lingering_ = false;    // write side shut, discarding input
  bool finished_ = false;
  bool in_pump_ = false;
  bool blocked_ = false;      // the socket said EAGAIN: arm EPOLLOUT
  absl::Status status_;
  epoll::TimerId timer_ = epoll::kNoTimer;
  absl::Time timer_when_ = absl::InfiniteFuture();
  absl::Time linger_until_;
  uint64_t bytes_read_ = 0, bytes_written_ = 0, discarded_ = 0;
};

}  // namespace tlsctl
}  // namespace tlsengine

#endif  // TLSENGINE_EXAMPLES_TLSCTL_LINK_H_

// Hold mode: what a hold connection receives waits in its Inbox until Read
// takes it, under budgets that keep memory bounded without starving
// anyone. A connection whose unread data passes max_connection_buffer
// stops reading from its socket (backpressure, not loss); past
// max_buffered_bytes over all connections, so does one holding its fair
// share (the budget divided among the connections holding data) or more;
// past twice that, any holding max_buffered_bytes / max_connections or
// more. The total stays under three budgets plus one read per connection.
//
//   if (inbox.Hold(conn, data)) conn.socket->Pause();   // loop thread
//   inbox.Read(req, emit, cancelled);                   // a caller's thread
//
// Thread-safe: the counters are atomic, each Inbox has its own mutex.
#ifndef TLSENGINE_ADAPTERS_GRPC_READ_INBOX_H_
#define TLSENGINE_ADAPTERS_GRPC_READ_INBOX_H_

#include <atomic>
#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "adapters/grpc/control.pb.h"
#include "adapters/grpc/registry.h"

namespace tlsengine {
namespace control {

class ReadInbox {
 public:
  // `registry` must outlive this.
  explicit ReadInbox(Registry& registry) : r_(registry) {}

  // Loop thread: keeps `data` for Read on `c`'s inbox; true when `c`
  // should stop reading from its socket now (it is not paused yet).
  bool Hold(Conn& c, absl::string_view data);
  // Loop thread: gives back what `c`'s inbox counted (it is forgotten).
  void Release(Conn& c);
  // Bytes held over all connections.
  size_t buffered() const { return buffered_.load(); }

  // Controller::Read: streams the held data of hold connection
  // `req.connection_id` to `emit` until the peer ends, max_bytes, timeout,
  // `cancelled()` or close, resuming the socket once it holds under half
  // the bounds. kNotFound, kFailedPrecondition (ERR_TLS_CONTROL_ECHO for
  // an echo connection, ERR_TLS_CONTROL_BUSY while another Read runs),
  // kInvalidArgument, kUnavailable after shutdown.
  absl::Status Read(const v1::ReadRequest& req, const std::function<bool(const v1::ReadChunk&)>& emit,
                    const std::function<bool()>& cancelled);

 private:
  // Whether a connection holding `held` bytes stops reading (slack 1) or
  // may not resume yet (slack 2: under half of each bound, so that it
  // does not stop again at the next chunk).
  bool MustPause(size_t held, size_t slack) const;
  void ResumeIfDrained(const std::string& cid);

  Registry& r_;
  std::atomic<size_t> buffered_{0};
  std::atomic<size_t> holders_{0};  // hold connections with bytes in their inbox
};

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_READ_INBOX_H_

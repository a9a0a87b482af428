// Controller: what the TlsControl service does, in absl::Status terms, with
// no gRPC in sight. It owns contexts, listeners (epoll Servers) and
// connections (TlsSockets) on one epoll loop thread of its own; every method
// is thread-safe and may block briefly while the loop runs it. The gRPC
// service (daemon.h: ControlServer, over the Service in daemon.cc) maps
// these statuses to gRPC codes; tlsctl serve calls Listen() directly so its
// listener is managed like any other.
//
//   auto c = Controller::Create(ControllerOptions()).value();
//   v1::CreateContextRequest req;  req.add_cert_file("cert.pem"); ...
//   absl::StatusOr<v1::CreateContextResponse> made = c->CreateContext(req);
//
// Controller is a thin facade over one part per concern, each a small class
// over the shared Registry (registry.h: the loop and the resources on it):
// validate.h and request_files.h (requests), contexts.h, listeners.h,
// live.h (live changes), connections.h and read_inbox.h (hold mode's Read),
// event_bus.h (WatchEvents) and stats.h. A facade rather than the parts
// themselves, so that the service, tlsctl and the tests see one object
// with one lifetime and one Shutdown, while each concern reads on its own.
//
// Errors (gRPC's names): kInvalidArgument naming the field in the request's
// JSON spelling ("certFile[0]: ..."), kNotFound for an unknown id,
// kAlreadyExists for an address in use, kFailedPrecondition for a call in the
// wrong state, kResourceExhausted for a limit, kUnavailable after Shutdown();
// each carries a Node-style code (NodeCode()) where one applies.
#ifndef TLSENGINE_ADAPTERS_GRPC_CONTROLLER_H_
#define TLSENGINE_ADAPTERS_GRPC_CONTROLLER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "adapters/grpc/control.pb.h"

namespace tlsengine {
namespace control {

namespace v1 = ::tlsengine::control::v1;

// Limits for one controller (one service instance). Past each, the call is
// refused with kResourceExhausted (Node code ERR_TLS_CONTROL_LIMIT).
struct ControllerLimits {
  int max_contexts = 256;
  int max_listeners = 32;
  // Open connections, over every listener and Connect.
  int max_connections = 1024;
  // Plaintext held for Read (all connections together); a connection whose
  // unread data passes max_connection_buffer stops reading from its socket
  // until Read drains it (backpressure, not loss; GetConnection says
  // `paused`). Past max_buffered_bytes, so does one holding its fair share
  // (max_buffered_bytes / connections holding data) or more, and past twice
  // that, one holding max_buffered_bytes / max_connections or more: the
  // total stays under 3 * max_buffered_bytes plus one read per connection,
  // and no connection starves because others are not read.
  // max_connection_buffer also bounds what Write queues for a peer that
  // does not read: past it, Write is refused until it drains.
  size_t max_buffered_bytes = 16 << 20;
  size_t max_connection_buffer = 1 << 20;
  // One Write's data.
  size_t max_write_bytes = 1 << 20;
  // One inline PEM/DER field, and one file read for a *File field.
  size_t max_field_bytes = 1 << 20;
  // Files one CreateContext may name (keyFile, certFile, caFile, crlFile,
  // pfxFile, dhparamFile together), and the bytes read from them in all.
  int max_files_per_request = 64;
  size_t max_file_bytes_per_request = 4 << 20;
  int max_watchers = 16;
  size_t watcher_queue = 4096;  // events kept per watcher before dropping
  size_t closed_kept = 256;     // closed connections kept for GetConnection
};

struct ControllerOptions {
  ControllerLimits limits;
  // The clock for days until expiry and connection ages; absl::Now when
  // empty (tests inject one).
  std::function<absl::Time()> clock;
};

// Every unary method of TlsControl as X(Method, Request, Response, Part),
// in control.proto's order, with the part of the controller that answers
// it (its header says what the method does): contexts (contexts.h),
// listeners (listeners.h), live (live.h), conns (connections.h), stats
// (stats.h). The gRPC service (daemon.cc), Controller's declarations and
// its definitions all expand it, so they cannot drift apart.
#define TLSCTL_UNARY_METHODS(X)                                                 \
  X(GetCiphers, GetCiphersRequest, GetCiphersResponse, contexts)                \
  X(CreateContext, CreateContextRequest, CreateContextResponse, contexts)       \
  X(DeleteContext, DeleteContextRequest, DeleteContextResponse, contexts)       \
  X(Listen, ListenRequest, ListenResponse, listeners)                           \
  X(CloseListener, CloseListenerRequest, CloseListenerResponse, listeners)      \
  X(AddContext, AddContextRequest, ChangeResponse, live)                        \
  X(RemoveContext, RemoveContextRequest, ChangeResponse, live)                  \
  X(ReplaceContext, ReplaceContextRequest, ChangeResponse, live)                \
  X(RotateTicketKeys, RotateTicketKeysRequest, ChangeResponse, live)            \
  X(SetOcspResponse, SetOcspResponseRequest, ChangeResponse, live)              \
  X(ListCertificates, ListCertificatesRequest, ListCertificatesResponse, contexts) \
  X(Connect, ConnectRequest, ConnectResponse, conns)                            \
  X(Write, WriteRequest, WriteResponse, conns)                                  \
  X(End, ConnectionRequest, ConnectionInfo, conns)                              \
  X(Destroy, ConnectionRequest, ConnectionInfo, conns)                          \
  X(Renegotiate, RenegotiateRequest, ConnectionInfo, conns)                     \
  X(KeyUpdate, KeyUpdateRequest, ConnectionInfo, conns)                         \
  X(SetMaxSendFragment, SetMaxSendFragmentRequest, ConnectionInfo, conns)       \
  X(GetConnection, ConnectionRequest, ConnectionInfo, conns)                    \
  X(ListConnections, ListConnectionsRequest, ListConnectionsResponse, conns)    \
  X(GetStats, GetStatsRequest, GetStatsResponse, stats)

class Controller {
 public:
  // Starts the loop thread. kResourceExhausted/kInternal from the loop.
  static absl::StatusOr<std::unique_ptr<Controller>> Create(ControllerOptions options);
  // Shutdown(), then joins the loop.
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Closes listeners and destroys connections (bounded: a few seconds);
  // afterwards every call fails with kUnavailable. Idempotent.
  void Shutdown();

  // The unary methods (TLSCTL_UNARY_METHODS above), e.g.
  //   absl::StatusOr<v1::ListenResponse> Listen(const v1::ListenRequest& req);
#define TLSCTL_DECLARE(Method, Req, Resp, Part) absl::StatusOr<v1::Resp> Method(const v1::Req& req);
  TLSCTL_UNARY_METHODS(TLSCTL_DECLARE)
#undef TLSCTL_DECLARE

  // Streams chunks to `emit` (false from it stops: the client went away)
  // until the peer ends, max_bytes, timeout, `cancelled()` or the
  // connection closes. One reader per connection at a time (read_inbox.h).
  absl::Status Read(const v1::ReadRequest& req, const std::function<bool(const v1::ReadChunk&)>& emit,
                    const std::function<bool()>& cancelled);
  // Streams events to `emit` until it returns false, `cancelled()` or
  // Shutdown(). `ready` (may be empty) runs once the watcher is registered,
  // so a caller knows no later event is missed (event_bus.h).
  absl::Status WatchEvents(const v1::WatchEventsRequest& req,
                           const std::function<bool(const v1::ControlEvent&)>& emit,
                           const std::function<bool()>& cancelled,
                           const std::function<void()>& ready = nullptr);

  struct Parts;  // defined in controller.cc

 private:
  explicit Controller(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_CONTROLLER_H_

// Controller: what the TlsControl service does, in absl::Status terms, with
// no gRPC in sight. It owns contexts, listeners (epoll Servers) and
// connections (TlsSockets) on one epoll loop thread of its own; every method
// is thread-safe and may block briefly while the loop runs it. The gRPC
// service (service.h) maps these statuses to gRPC codes; tlsctl serve calls
// Listen() directly so its listener is managed like any other.
//
//   auto c = Controller::Create(ControllerOptions()).value();
//   v1::CreateContextRequest req;  req.add_cert_file("cert.pem"); ...
//   absl::StatusOr<v1::CreateContextResponse> made = c->CreateContext(req);
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

// Every unary method of TlsControl as X(Method, Request, Response), in
// control.proto's order: the gRPC service (daemon.cc) and Controller's
// definitions both expand it, so the two cannot drift apart.
#define TLSCTL_UNARY_METHODS(X)                                       \
  X(GetCiphers, GetCiphersRequest, GetCiphersResponse)                \
  X(CreateContext, CreateContextRequest, CreateContextResponse)       \
  X(DeleteContext, DeleteContextRequest, DeleteContextResponse)       \
  X(Listen, ListenRequest, ListenResponse)                            \
  X(CloseListener, CloseListenerRequest, CloseListenerResponse)       \
  X(AddContext, AddContextRequest, ChangeResponse)                    \
  X(RemoveContext, RemoveContextRequest, ChangeResponse)              \
  X(ReplaceContext, ReplaceContextRequest, ChangeResponse)            \
  X(RotateTicketKeys, RotateTicketKeysRequest, ChangeResponse)        \
  X(SetOcspResponse, SetOcspResponseRequest, ChangeResponse)          \
  X(ListCertificates, ListCertificatesRequest, ListCertificatesResponse) \
  X(Connect, ConnectRequest, ConnectResponse)                         \
  X(Write, WriteRequest, WriteResponse)                               \
  X(End, ConnectionRequest, ConnectionInfo)                           \
  X(Destroy, ConnectionRequest, ConnectionInfo)                       \
  X(Renegotiate, RenegotiateRequest, ConnectionInfo)                  \
  X(KeyUpdate, KeyUpdateRequest, ConnectionInfo)                      \
  X(SetMaxSendFragment, SetMaxSendFragmentRequest, ConnectionInfo)    \
  X(GetConnection, ConnectionRequest, ConnectionInfo)                 \
  X(ListConnections, ListConnectionsRequest, ListConnectionsResponse) \
  X(GetStats, GetStatsRequest, GetStatsResponse)

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

  absl::StatusOr<v1::GetCiphersResponse> GetCiphers(const v1::GetCiphersRequest& req);
  absl::StatusOr<v1::CreateContextResponse> CreateContext(const v1::CreateContextRequest& req);
  absl::StatusOr<v1::DeleteContextResponse> DeleteContext(const v1::DeleteContextRequest& req);
  absl::StatusOr<v1::ListenResponse> Listen(const v1::ListenRequest& req);
  absl::StatusOr<v1::CloseListenerResponse> CloseListener(const v1::CloseListenerRequest& req);
  absl::StatusOr<v1::ChangeResponse> AddContext(const v1::AddContextRequest& req);
  absl::StatusOr<v1::ChangeResponse> RemoveContext(const v1::RemoveContextRequest& req);
  absl::StatusOr<v1::ChangeResponse> ReplaceContext(const v1::ReplaceContextRequest& req);
  absl::StatusOr<v1::ChangeResponse> RotateTicketKeys(const v1::RotateTicketKeysRequest& req);
  absl::StatusOr<v1::ChangeResponse> SetOcspResponse(const v1::SetOcspResponseRequest& req);
  absl::StatusOr<v1::ListCertificatesResponse> ListCertificates(const v1::ListCertificatesRequest& req);
  absl::StatusOr<v1::ConnectResponse> Connect(const v1::ConnectRequest& req);
  absl::StatusOr<v1::WriteResponse> Write(const v1::WriteRequest& req);
  // Streams chunks to `emit` (false from it stops: the client went away)
  // until the peer ends, max_bytes, timeout, `cancelled()` or the
  // connection closes. One reader per connection at a time.
  absl::Status Read(const v1::ReadRequest& req, const std::function<bool(const v1::ReadChunk&)>& emit,
                    const std::function<bool()>& cancelled);
  absl::StatusOr<v1::ConnectionInfo> End(const v1::ConnectionRequest& req);
  absl::StatusOr<v1::ConnectionInfo> Destroy(const v1::ConnectionRequest& req);
  absl::StatusOr<v1::ConnectionInfo> Renegotiate(const v1::RenegotiateRequest& req);
  absl::StatusOr<v1::ConnectionInfo> KeyUpdate(const v1::KeyUpdateRequest& req);
  absl::StatusOr<v1::ConnectionInfo> SetMaxSendFragment(const v1::SetMaxSendFragmentRequest& req);
  absl::StatusOr<v1::ConnectionInfo> GetConnection(const v1::ConnectionRequest& req);
  absl::StatusOr<v1::ListConnectionsResponse> ListConnections(const v1::ListConnectionsRequest& req);
  // Streams events to `emit` until it returns false, `cancelled()` or
  // Shutdown(). `ready` (may be empty) runs once the watcher is registered,
  // so a caller knows no later event is missed.
  absl::Status WatchEvents(const v1::WatchEventsRequest& req,
                           const std::function<bool(const v1::ControlEvent&)>& emit,
                           const std::function<bool()>& cancelled,
                           const std::function<void()>& ready = nullptr);
  absl::StatusOr<v1::GetStatsResponse> GetStats(const v1::GetStatsRequest& req);

  class State;  // defined in controller.cc

 private:
  explicit Controller(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_CONTROLLER_H_

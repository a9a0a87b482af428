// Connections: the TlsSockets the controller holds, accepted by a listener
// or made by Connect, in "echo" mode (what arrives goes back, pausing
// while the peer does not read) or "hold" mode (what arrives waits for
// Read, read_inbox.h). Here are their records and handlers, Connect, Write
// (bounded by max_connection_buffer for a peer that does not read), the
// per-connection calls (End, Destroy, Renegotiate, KeyUpdate,
// SetMaxSendFragment), GetConnection and ListConnections.
//
//   Connections conns(registry, events, inbox);
//   absl::StatusOr<v1::ConnectResponse> c = conns.Connect(req);  // waits for secureConnect
//
// The public calls are thread-safe; Add and Describe run on the loop.
// Errors as Controller's (controller.h).
#ifndef TLSENGINE_ADAPTERS_GRPC_CONNECTIONS_H_
#define TLSENGINE_ADAPTERS_GRPC_CONNECTIONS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/epoll/socket.h"
#include "adapters/grpc/control.pb.h"
#include "adapters/grpc/event_bus.h"
#include "adapters/grpc/read_inbox.h"
#include "adapters/grpc/registry.h"

namespace tlsengine {
namespace control {

class Connections {
 public:
  // Hold connections keep what they receive in `inbox`; events go to
  // `events`. All three outlive this.
  Connections(Registry& registry, EventBus& events, ReadInbox& inbox)
      : r_(registry), events_(events), inbox_(inbox) {}

  // Loop thread: a record for `s` (listener `lid`, "" for a client) with
  // the handlers of `mode`; nullptr past max_connections.
  Conn* Add(const std::shared_ptr<epoll::TlsSocket>& s, const std::string& lid, const std::string& mode);
  // Loop thread: `c` as ConnectionInfo.
  void Describe(const Conn& c, v1::ConnectionInfo* out);

  absl::StatusOr<v1::ConnectResponse> Connect(const v1::ConnectRequest& req);
  absl::StatusOr<v1::WriteResponse> Write(const v1::WriteRequest& req);
  absl::StatusOr<v1::ConnectionInfo> End(const v1::ConnectionRequest& req);
  absl::StatusOr<v1::ConnectionInfo> Destroy(const v1::ConnectionRequest& req);
  absl::StatusOr<v1::ConnectionInfo> Renegotiate(const v1::RenegotiateRequest& req);
  absl::StatusOr<v1::ConnectionInfo> KeyUpdate(const v1::KeyUpdateRequest& req);
  absl::StatusOr<v1::ConnectionInfo> SetMaxSendFragment(const v1::SetMaxSendFragmentRequest& req);
  absl::StatusOr<v1::ConnectionInfo> GetConnection(const v1::ConnectionRequest& req);
  absl::StatusOr<v1::ListConnectionsResponse> ListConnections(const v1::ListConnectionsRequest& req);

 private:
  void OnClose(const std::string& cid, epoll::TlsSocket* sock);
  // Runs `fn` (may be empty) on connection `id` on the loop, then
  // describes it.
  absl::StatusOr<v1::ConnectionInfo> OnConn(const std::string& id, const std::function<absl::Status(Conn&)>& fn);

  Registry& r_;
  EventBus& events_;
  ReadInbox& inbox_;
};

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_CONNECTIONS_H_

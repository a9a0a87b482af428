// Listeners: Listen (an epoll Server on a TCP port or a unix path, whose
// Server binds it and, on close, unlinks only the socket file it bound)
// and CloseListener (stop accepting, end the listener's connections, and
// destroy those still open at the deadline). The Server's events become
// ControlEvents, stats and connection records here.
//
//   Listeners listeners(registry, events, conns);
//   absl::StatusOr<v1::ListenResponse> l = listeners.Listen(req);
//
// Thread-safe; errors as Controller's (controller.h).
#ifndef TLSENGINE_ADAPTERS_GRPC_LISTENERS_H_
#define TLSENGINE_ADAPTERS_GRPC_LISTENERS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "adapters/epoll/server.h"
#include "adapters/grpc/connections.h"
#include "adapters/grpc/control.pb.h"
#include "adapters/grpc/event_bus.h"
#include "adapters/grpc/registry.h"

namespace tlsengine {
namespace control {

class Listeners {
 public:
  // What a listener accepts becomes a record in `conns` (which also
  // bounds max_connections). All three outlive this.
  Listeners(Registry& registry, EventBus& events, Connections& conns)
      : r_(registry), events_(events), conns_(conns) {}

  absl::StatusOr<v1::ListenResponse> Listen(const v1::ListenRequest& req);
  // Waits up to `deadline` (5 s by default) for the listener's connections
  // to end, then destroys the rest.
  absl::StatusOr<v1::CloseListenerResponse> CloseListener(const v1::CloseListenerRequest& req);

 private:
  // The Server's handlers for listener `lid` (loop thread); `sessions`:
  // keep sessions in the listener's store.
  epoll::ServerHandlers Handlers(const std::string& lid, bool sessions);
  void OnSecureConnection(const std::string& lid, std::shared_ptr<epoll::TlsSocket> s);

  Registry& r_;
  EventBus& events_;
  Connections& conns_;
};

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_LISTENERS_H_

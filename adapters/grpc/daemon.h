// The TlsControl gRPC server: a Controller behind gRPC, with server
// reflection and the standard health service, on a control address that is
// never open by accident. tlsctl's `daemon` and `serve` subcommands call
// RunControlService; tests use ControlServer directly.
//
//   // tlsctl daemon --control unix:/run/user/1000/tlsctl.sock
//   absl::Status s = RunControlService("unix:/run/user/1000/tlsctl.sock", DaemonOptions());
//   // tlsctl serve --control ADDRESS: the same, with the served listener
//   // made through the service so ListConnections, ReplaceContext... see it.
//   s = RunControlService(address, options, [&](Controller& c) { return MakeListener(c); });
//
// Control addresses: "unix:/path" (or "/path"), made mode 0600 so only its
// user can connect; "host:port" / "[v6]:port" over TCP, which every local
// user can reach: refused unless the channel uses TLS with client
// certificates (control_cert + control_key + control_ca), or the host is
// loopback and calls carry a token the service writes to a 0600 file
// (control_token_file). Whoever the service answers acts with its rights:
// it reads the files they name and binds where they say.
#ifndef TLSENGINE_ADAPTERS_GRPC_DAEMON_H_
#define TLSENGINE_ADAPTERS_GRPC_DAEMON_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/epoll/bound_name.h"
#include "adapters/grpc/controller.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace tlsengine {
namespace control {

// The metadata key a control token travels in: "Bearer TOKEN".
inline constexpr char kControlTokenMetadata[] = "authorization";

struct DaemonOptions {
  // TLS on the control channel (PEM files, all three or none): the server's
  // certificate and key, and the CA that client certificates must chain to.
  // With them a client without a valid certificate is refused.
  std::string control_cert;
  std::string control_key;
  std::string control_ca;
  // A TCP address without TLS needs it: the service writes a fresh token
  // (64 hex digits) to this new file, mode 0600, in a directory of your own
  // that no one else can write to, and answers only calls that carry it
  // (metadata "authorization: Bearer TOKEN"; ClientOptions::token_file),
  // UNAUTHENTICATED (ERR_TLS_CONTROL_TOKEN) otherwise. The file is removed
  // at Shutdown.
  std::string control_token_file;
  ControllerOptions controller;
  // Largest request the service accepts, in bytes (gRPC refuses bigger ones
  // with RESOURCE_EXHAUSTED).
  int max_request_bytes = 8 << 20;
};

// unix:$XDG_RUNTIME_DIR/tlsctl.sock, else unix:${TMPDIR:-/tmp}/tlsctl-$EUID/
// control.sock. ControlServer::Start makes that directory mode 0700 and
// refuses it (kPermissionDenied, EACCES) unless it is a directory of ours,
// not a symlink, mode 0700 ($XDG_RUNTIME_DIR: no group or other bits).
std::string DefaultControlAddress();

// Whether `address` is a TCP address whose host is loopback (127.0.0.0/8,
// ::1, localhost). kInvalidArgument when it does not parse as host:port.
absl::StatusOr<bool> IsLoopbackTcp(const std::string& address);

class ControlServer {
 public:
  // Binds and starts serving. Errors: kInvalidArgument for a bad address or
  // TLS files (naming the option), a non-loopback TCP address without
  // TLS, or a TCP address with neither TLS nor a token file;
  // kPermissionDenied (EACCES) for a default directory or token file
  // another user could reach; kAlreadyExists when a unix socket at the path is live (a stale one
  // is replaced) or the TCP port is taken; kUnavailable when gRPC cannot
  // bind; kInternal when the unix socket's mode cannot be made 0600.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(const std::string& address,
                                                              DaemonOptions options = DaemonOptions());
  ~ControlServer();  // Shutdown()
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Where it listens, as a gRPC target: "unix:/path" or "127.0.0.1:PORT"
  // (the real port when 0 was asked for).
  const std::string& address() const { return address_; }
  Controller& controller() { return *controller_; }
  // Closes every listener and connection, then stops gRPC (in-flight calls
  // get a second). Idempotent. Removes the unix socket.
  void Shutdown();

 private:
  ControlServer() = default;
  std::string address_;
  epoll::BoundName unix_path_;
  epoll::BoundName token_file_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  bool shut_down_ = false;
};

// Starts a ControlServer at `address` ("" = DefaultControlAddress()), runs
// `setup` (may be empty) against its controller, prints
// "control: listening on ADDRESS" to stderr, and serves until SIGINT or
// SIGTERM, then shuts down. Call it from the main thread before starting
// other threads (it blocks those signals for the whole process). Returns
// Start's or setup's error, else OK.
absl::Status RunControlService(const std::string& address, DaemonOptions options,
                               std::function<absl::Status(Controller&)> setup = nullptr);

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_DAEMON_H_

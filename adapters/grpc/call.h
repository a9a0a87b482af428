// The command-line client behind `tlsctl call`: one request in protobuf's
// JSON mapping, each reply printed as one JSON line (server-streaming
// methods print one line per message), and `--list` from server reflection.
//
//   ClientOptions o;  o.address = "unix:/run/user/1000/tlsctl.sock";
//   absl::Status s = CallMethod(o, "CreateContext", R"({"certFile":["c.pem"],"keyFile":["k.pem"]})",
//                               [](const std::string& line) { std::cout << line << "\n"; });
//
// tlsctl's `call` subcommand (examples/tlsctl/call.cc) is the command line
// over these.
#ifndef TLSENGINE_ADAPTERS_GRPC_CALL_H_
#define TLSENGINE_ADAPTERS_GRPC_CALL_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace grpc {
class Channel;
}  // namespace grpc

namespace tlsengine {
namespace control {

struct ClientOptions {
  // "unix:/path", "/path" or "host:port"; "" = DefaultControlAddress().
  std::string address;
  // TLS with a client certificate (PEM files; all three or none).
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  // The token file `tlsctl daemon --control-token-file` wrote (TCP without
  // TLS); it must be ours or root's, mode 0600, not a symlink.
  std::string token_file;
  // The name the server certificate is checked against ("" = the host).
  std::string server_name;
  // Deadline for unary calls; streaming calls run until the server ends
  // them (or `stream_timeout` when not zero).
  absl::Duration timeout = absl::Seconds(30);
  absl::Duration stream_timeout = absl::ZeroDuration();
};

// A channel to the control service. Over a unix socket without TLS it is
// connected here, and refused (kPermissionDenied) before a byte is sent
// unless the server's uid (SO_PEERCRED) is ours or root's; kUnavailable
// when nothing listens there. kInvalidArgument for unreadable TLS files,
// kPermissionDenied for a token file others could have written or read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ClientOptions& options);

// Calls `method` ("CreateContext", "TlsControl.CreateContext" or
// "tlsengine.control.v1.TlsControl/CreateContext") with `json`, handing
// each reply to `out` as one line of JSON (lowerCamelCase names, defaults
// included). Errors: kInvalidArgument for an unknown method or JSON that
// does not fit the request; else the call's gRPC status, with its code and
// message (the Node-style code stays in the message).
absl::Status CallMethod(const ClientOptions& options, const std::string& method, const std::string& json,
                        const std::function<void(const std::string&)>& out);

// Every method the server offers, from server reflection:
// "tlsengine.control.v1.TlsControl.Read(ReadRequest) returns (stream ReadChunk)".
absl::StatusOr<std::vector<std::string>> ListMethods(const ClientOptions& options);

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_CALL_H_

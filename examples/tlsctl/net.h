// Sockets for tlsctl: listeners and a non-blocking connect, with errors
// carrying Node's errno codes (ECONNREFUSED, EADDRINUSE, ...).
//
//   absl::StatusOr<int> fd = ListenTcp("127.0.0.1", 0, /*reuse_port=*/false);
//   PeerAddress where = LocalAddressOf(*fd);   // the port the kernel chose
#ifndef TLSENGINE_EXAMPLES_TLSCTL_NET_H_
#define TLSENGINE_EXAMPLES_TLSCTL_NET_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "examples/tlsctl/report.h"

namespace tlsengine {
namespace tlsctl {

// "ECONNREFUSED" for ECONNREFUSED, ...; "E<number>" for the rare others.
std::string ErrnoName(int err);
// kUnavailable with code ErrnoName(err) and Node's message shape:
// "<syscall> ECONNREFUSED <where>".
absl::Status ErrnoError(absl::string_view syscall, int err, absl::string_view where);

// A non-blocking listening socket. `host` is a numeric address or a name
// (resolved once, before serving). With reuse_port, several listeners may
// share the port (one per loop). Errors: ErrnoError ("listen EADDRINUSE ..."),
// kInvalidArgument (ENOTFOUND) for a host that does not resolve.
absl::StatusOr<int> ListenTcp(const std::string& host, int port, bool reuse_port);
// A unix stream listener at `path`, which must not exist (EADDRINUSE).
absl::StatusOr<int> ListenUnix(const std::string& path);
// getsockname() / getpeername() as a PeerAddress.
PeerAddress LocalAddressOf(int fd);
PeerAddress PeerAddressOf(int fd);

// Starts a non-blocking connect; the fd becomes writable when it is done
// (then call FinishConnect). Errors as ErrnoError, ENOTFOUND for names that
// do not resolve.
absl::StatusOr<int> StartConnectTcp(const std::string& host, int port, std::string* where);
absl::StatusOr<int> StartConnectUnix(const std::string& path);
// The outcome of a connect started above (SO_ERROR).
absl::Status FinishConnect(int fd, absl::string_view where);

}  // namespace tlsctl
}  // namespace tlsengine

#endif  // TLSENGINE_EXAMPLES_TLSCTL_NET_H_

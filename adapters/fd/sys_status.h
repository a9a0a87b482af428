// Failed system calls as statuses, for every adapter: one mapping from errno
// to a status code, one message format, Node's: the errno name is the
// Node-style code (err.code === 'ECONNREFUSED') and follows what failed,
// then strerror:
//
//   SysError("connect 127.0.0.1:443", ECONNREFUSED)
//     -> kUnavailable "connect 127.0.0.1:443 ECONNREFUSED: Connection refused"
#ifndef TLSENGINE_ADAPTERS_FD_SYS_STATUS_H_
#define TLSENGINE_ADAPTERS_FD_SYS_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tlsengine {
namespace fdio {

// The status code for errno `err`: kDeadlineExceeded for ETIMEDOUT;
// kResourceExhausted for EMFILE, ENFILE, ENOMEM, ENOBUFS, ENOSPC;
// kInvalidArgument for the caller's mistakes (EBADF, EFAULT, EINVAL, ELOOP,
// ENOTSOCK); kUnavailable (a transport that closed or failed) otherwise.
absl::StatusCode SysCode(int err);

// `what` failed with `err`: code SysCode(err) unless `code` is given, Node
// code the errno name ("ECONNRESET"; "E<number>" for an unnamed one),
// message "what ECONNRESET: Connection reset by peer". Thread-safe.
absl::Status SysError(absl::string_view what, int err);
absl::Status SysError(absl::string_view what, int err, absl::StatusCode code);

}  // namespace fdio
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_FD_SYS_STATUS_H_

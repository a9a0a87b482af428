// Failed system calls as statuses, for the epoll adapter's sockets: the
// errno name is the Node-style code, as Node reports system errors
// (err.code === 'ECONNREFUSED'). Private to adapters/epoll.
#ifndef TLSENGINE_ADAPTERS_EPOLL_SYS_STATUS_H_
#define TLSENGINE_ADAPTERS_EPOLL_SYS_STATUS_H_

#include <errno.h>
#include <string.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/errors.h"

namespace tlsengine {
namespace epoll {
namespace internal {

// `what` failed with `err`: kUnavailable (transport failures, STYLE.md)
// unless `code` says otherwise; message "connect ECONNREFUSED: Connection
// refused", as Node words it ("connect ECONNREFUSED 127.0.0.1:1").
inline absl::Status SysError(absl::string_view what, int err,
                             absl::StatusCode code = absl::StatusCode::kUnavailable) {
  const char* name = strerrorname_np(err);
  std::string node = name != nullptr ? name : absl::StrCat("E", err);
  return MakeError(code, node, absl::StrCat(what, " ", node, ": ", strerror(err)));
}

}  // namespace internal
}  // namespace epoll
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_EPOLL_SYS_STATUS_H_

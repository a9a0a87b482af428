#include "adapters/fd/sys_status.h"

#include <errno.h>
#include <string.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "core/errors.h"

namespace tlsengine {
namespace fdio {

absl::StatusCode SysCode(int err) {
  switch (err) {
    case ETIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case ENOBUFS:
    case ENOSPC:
      return absl::StatusCode::kResourceExhausted;
    case EBADF:
    case EFAULT:
    case EINVAL:
    case ELOOP:
    case ENOTSOCK:
      return absl::StatusCode::kInvalidArgument;
    default:
      return absl::StatusCode::kUnavailable;
  }
}

absl::Status SysError(absl::string_view what, int err) { return SysError(what, err, SysCode(err)); }

absl::Status SysError(absl::string_view what, int err, absl::StatusCode code) {
  // glibc 2.32+ knows the names.
  const char* name = strerrorname_np(err);
  std::string node = name != nullptr ? name : absl::StrCat("E", err);
  return MakeError(code, node, absl::StrCat(what, " ", node, ": ", strerror(err)));
}

}  // namespace fdio
}  // namespace tlsengine

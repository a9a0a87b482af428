// tlsctl's stdout: whole JSON lines, flushed one at a time, from any thread
// (serve --loops runs several), so a reader of the pipe never sees half a line;
// and the few helpers serve and connect share.
#ifndef TLSENGINE_EXAMPLES_TLSCTL_OUTPUT_H_
#define TLSENGINE_EXAMPLES_TLSCTL_OUTPUT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "adapters/epoll/socket.h"
#include "examples/tlsctl/json.h"
#include "examples/tlsctl/report.h"

namespace tlsengine {
namespace tlsctl {

// Writes `o` and a newline to stdout and flushes. Thread-safe.
void Emit(const JsonObject& o);
// "tlsctl: <text>" on stderr (progress and diagnostics). Thread-safe.
void Note(absl::string_view text);

// A file the adapter will write (--keylog, --session-out), opened once
// (created if missing) and closed, so that an unwritable one is a bad flag
// found before listening or connecting. kInvalidArgument
// "--<flag>: cannot <verb> '<shown>': <strerror>".
absl::Status CheckWritable(absl::string_view flag, const std::string& path, absl::string_view shown,
                           absl::string_view verb);

// secureConnection / secureConnect for a handshaked socket (SecureReport
// with the socket's peer address).
JsonObject SecureReportOf(absl::string_view event, epoll::TlsSocket& socket, uint64_t id);

}  // namespace tlsctl
}  // namespace tlsengine

#endif  // TLSENGINE_EXAMPLES_TLSCTL_OUTPUT_H_

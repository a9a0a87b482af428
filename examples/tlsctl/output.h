// tlsctl's stdout: whole JSON lines, flushed one at a time, from any thread
// (serve --loops runs several), so a reader of the pipe never sees half a line.
#ifndef TLSENGINE_EXAMPLES_TLSCTL_OUTPUT_H_
#define TLSENGINE_EXAMPLES_TLSCTL_OUTPUT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "examples/tlsctl/json.h"

namespace tlsengine {
namespace tlsctl {

// Writes `o` and a newline to stdout and flushes. Thread-safe.
void Emit(const JsonObject& o);
// "tlsctl: <text>" on stderr (progress and diagnostics). Thread-safe.
void Note(absl::string_view text);

// Appends NSS key-log lines to a file opened once with O_APPEND, so the
// lines of concurrent connections never interleave. Thread-safe.
class KeylogFile {
 public:
  KeylogFile() = default;
  ~KeylogFile();
  KeylogFile(const KeylogFile&) = delete;
  KeylogFile& operator=(const KeylogFile&) = delete;
  // kInvalidArgument "--keylog: cannot open 'path': ..." on failure.
  absl::Status Open(const std::string& path);
  void Append(absl::string_view line);

 private:
  int fd_ = -1;
};

}  // namespace tlsctl
}  // namespace tlsengine

#endif  // TLSENGINE_EXAMPLES_TLSCTL_OUTPUT_H_

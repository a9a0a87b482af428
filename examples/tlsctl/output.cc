#include "examples/tlsctl/output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tlsengine {
namespace tlsctl {
namespace {
std::mutex& OutputMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}
}  // namespace

void Emit(const JsonObject& o) {
  std::string line = o.Line();
  std::lock_guard<std::mutex> lock(OutputMutex());
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

void Note(absl::string_view text) {
  std::string line = absl::StrCat("tlsctl: ", text, "\n");
  std::lock_guard<std::mutex> lock(OutputMutex());
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

absl::Status CheckWritable(absl::string_view flag, const std::string& path, absl::string_view shown,
                           absl::string_view verb) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": cannot ", verb, " '", shown, "': ", std::strerror(errno)));
  }
  close(fd);
  return absl::OkStatus();
}

JsonObject SecureReportOf(absl::string_view event, epoll::TlsSocket& socket, uint64_t id) {
  PeerAddress peer{socket.remote_address(), socket.remote_port(), socket.remote_family()};
  return SecureReport(event, *socket.engine(), peer, id);
}

}  // namespace tlsctl
}  // namespace tlsengine

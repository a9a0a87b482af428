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

KeylogFile::~KeylogFile() {
  if (fd_ >= 0) close(fd_);
}

absl::Status KeylogFile::Open(const std::string& path) {
  fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--keylog: cannot open '", path, "': ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

void KeylogFile::Append(absl::string_view line) {
  if (fd_ < 0) return;
  std::string l = absl::StrCat(line, "\n");
  // One write with O_APPEND: the line lands whole.
  ssize_t n = write(fd_, l.data(), l.size());
  (void)n;  // a full disk loses key-log lines, never the connection
}

}  // namespace tlsctl
}  // namespace tlsengine

#include "adapters/grpc/request_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "adapters/grpc/validate.h"

namespace tlsengine {
namespace control {

absl::StatusOr<std::string> ReadFileField(absl::string_view field, const std::string& path, size_t max,
                                          FileBudget* budget) {
  if (path.empty()) return Invalid(field, "empty path");
  if (path.size() > 4096 || path.find('\0') != std::string::npos) return Invalid(field, "bad path");
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return Invalid(field, absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  absl::Cleanup closer = [fd] { close(fd); };
  struct stat st {};
  if (fstat(fd, &st) != 0) return Invalid(field, absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return Invalid(field, absl::StrCat(path, " is not a regular file"));
  auto too_big = [&] { return Invalid(field, absl::StrCat(path, " is larger than ", max, " bytes")); };
  auto over_budget = [&] {
    return Limit(absl::StrCat(field, ": ", path, ": more bytes than one request may read from files"),
                 budget->bytes_limit);
  };
  size_t cap = budget != nullptr ? std::min(max, budget->bytes_left) : max;
  size_t size = static_cast<size_t>(st.st_size);
  if (size > max) return too_big();
  if (size > cap) return over_budget();
  std::string data;
  data.reserve(size);
  char chunk[16384];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Invalid(field, absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
    if (n == 0) break;
    if (data.size() + static_cast<size_t>(n) > cap) return data.size() + n > max ? too_big() : over_budget();
    data.append(chunk, static_cast<size_t>(n));
  }
  if (data.empty()) return Invalid(field, absl::StrCat(path, " is empty"));
  if (budget != nullptr) budget->bytes_left -= data.size();
  return data;
}

absl::StatusOr<std::string> InlineOrFile(absl::string_view inline_name, const std::string& inline_value,
                                         absl::string_view file_name, const std::string& file, size_t max,
                                         FileBudget* budget) {
  if (!inline_value.empty() && !file.empty()) {
    return Invalid(file_name, absl::StrCat("give ", inline_name, " or ", file_name, ", not both"));
  }
  if (absl::Status s = CheckText(inline_name, inline_value, max); !s.ok()) return s;
  if (file.empty()) return inline_value;
  return ReadFileField(file_name, file, max, budget);
}

absl::StatusOr<std::vector<std::string>> Gather(absl::string_view inline_name,
                                                const google::protobuf::RepeatedPtrField<std::string>& inline_values,
                                                absl::string_view file_name,
                                                const google::protobuf::RepeatedPtrField<std::string>& files,
                                                size_t max, FileBudget* budget) {
  std::vector<std::string> out;
  for (int i = 0; i < inline_values.size(); ++i) {
    std::string field = absl::StrCat(inline_name, "[", i, "]");
    if (inline_values[i].empty()) return Invalid(field, "empty");
    if (absl::Status s = CheckText(field, inline_values[i], max); !s.ok()) return s;
    out.push_back(inline_values[i]);
  }
  for (int i = 0; i < files.size(); ++i) {
    absl::StatusOr<std::string> data = ReadFileField(absl::StrCat(file_name, "[", i, "]"), files[i], max, budget);
    if (!data.ok()) return data.status();
    out.push_back(*std::move(data));
  }
  return out;
}

}  // namespace control
}  // namespace tlsengine

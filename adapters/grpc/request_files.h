// What a request can make the daemon read. Paths a request names are
// opened with the daemon's rights, so each read is capped: a regular file
// only (never a FIFO or a device, never blocking), at most max_field_bytes
// per file, and, for one CreateContext, at most max_files_per_request
// files and max_file_bytes_per_request bytes together (FileBudget).
//
//   FileBudget budget{limits.max_file_bytes_per_request, limits.max_file_bytes_per_request};
//   absl::StatusOr<std::vector<std::string>> certs =
//       Gather("cert", r.cert(), "certFile", r.cert_file(), limits.max_field_bytes, &budget);
//
// Thread-safe (each call reads on the calling thread, never the loop's).
#ifndef TLSENGINE_ADAPTERS_GRPC_REQUEST_FILES_H_
#define TLSENGINE_ADAPTERS_GRPC_REQUEST_FILES_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace tlsengine {
namespace control {

// What one request may still make the daemon read from files it names.
struct FileBudget {
  size_t bytes_left;
  size_t bytes_limit;
};

// Reads the file at `path` for `field`: a non-empty regular file of at most
// `max` bytes and at most what `budget` (may be null) has left, which it
// then spends. Never reads past the bound. kInvalidArgument (unreadable,
// not regular, empty, larger than `max`), kResourceExhausted
// (ERR_TLS_CONTROL_LIMIT) past the budget.
absl::StatusOr<std::string> ReadFileField(absl::string_view field, const std::string& path, size_t max,
                                          FileBudget* budget = nullptr);

// One value given inline or as a file (not both: kInvalidArgument); ""
// when neither. Errors as ReadFileField.
absl::StatusOr<std::string> InlineOrFile(absl::string_view inline_name, const std::string& inline_value,
                                         absl::string_view file_name, const std::string& file, size_t max,
                                         FileBudget* budget = nullptr);

// The inline values (each non-empty, at most `max`), then the files'
// contents, in order. Errors as ReadFileField, naming the entry.
absl::StatusOr<std::vector<std::string>> Gather(absl::string_view inline_name,
                                                const google::protobuf::RepeatedPtrField<std::string>& inline_values,
                                                absl::string_view file_name,
                                                const google::protobuf::RepeatedPtrField<std::string>& files,
                                                size_t max, FileBudget* budget);

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_REQUEST_FILES_H_

// Request validation for the control service: the errors every part of the
// controller answers with, and the checks of fields that several methods
// share. Each check names the field in the request's JSON spelling
// ("certFile[0]: ..."), so a caller knows what to fix.
//
//   if (absl::Status s = CheckId("listenerId", r.listener_id()); !s.ok()) return s;
//
// Pure functions, thread-safe; none reads a file (request_files.h does).
#ifndef TLSENGINE_ADAPTERS_GRPC_VALIDATE_H_
#define TLSENGINE_ADAPTERS_GRPC_VALIDATE_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/secure_context.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace tlsengine {
namespace control {

// The Node-style code of every ControllerLimits refusal.
inline constexpr char kLimitCode[] = "ERR_TLS_CONTROL_LIMIT";
inline constexpr size_t kTicketKeyBytes = 48;  // Node's layout: 16 name, 16 HMAC, 16 AES
inline constexpr size_t kMaxIdBytes = 64;
inline constexpr size_t kMaxNameBytes = 253;  // a DNS name

// kInvalidArgument, ERR_INVALID_ARG_VALUE: "field: what".
absl::Status Invalid(absl::string_view field, absl::string_view what);
// kNotFound, ERR_TLS_CONTROL_NOT_FOUND: "field: no such id \"id\"".
absl::Status NotFound(absl::string_view field, absl::string_view id);
// kFailedPrecondition with `code`.
absl::Status Precondition(absl::string_view code, absl::string_view what);
// kResourceExhausted, kLimitCode: "what (limit N)".
absl::Status Limit(absl::string_view what, size_t limit);
// `s` (from core or the adapter) with "field: " in front of its message;
// its code and payloads (the Node-style code) kept.
absl::Status Prefixed(absl::string_view field, const absl::Status& s);

// An id we handed out: 1..64 bytes. kInvalidArgument.
absl::Status CheckId(absl::string_view field, const std::string& id);
// At most `max` bytes. kInvalidArgument.
absl::Status CheckText(absl::string_view field, const std::string& s, size_t max);
// ALPN or NPN names: at most 32, each 1..255 bytes (one length byte on the
// wire). kInvalidArgument naming the entry.
absl::Status CheckProtocols(absl::string_view field, const google::protobuf::RepeatedPtrField<std::string>& names);
// Where Listen binds or Connect goes: a unix path (at most 107 bytes), or
// host and port (0..65535), not both. kInvalidArgument.
absl::Status CheckEndpoint(const std::string& path, const std::string& host, int port);
// "example.com" or "*.example.com", by the SniContexts rules (checked on a
// throwaway table with `any` as the context, so that a bad name changes
// nothing). kInvalidArgument with SniContexts' code.
absl::Status CheckServername(absl::string_view field, const std::string& name,
                             const std::shared_ptr<const SecureContext>& any);
// Node's ticketKeys (field "ticketKeys"): 48 bytes per key, at most 16
// keys, split into keys. kInvalidArgument.
absl::StatusOr<std::vector<std::string>> SplitTicketKeys(const std::string& keys);

// ASCII lower case: SNI names and patterns are compared this way.
std::string Lower(std::string s);

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_VALIDATE_H_

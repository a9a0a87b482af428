// Errors: every failure is an absl::Status whose canonical code says what
// kind of failure it is, with a Node-style code string and, where TLS sent
// or received one, the alert number travelling as payloads.
//
//   absl::Status s = conn->status();
//   if (tlsengine::NodeCode(s) == "DEPTH_ZERO_SELF_SIGNED_CERT") { ... }
//
// Canonical codes (STYLE.md): kInvalidArgument for bad options,
// kFailedPrecondition for calls out of state, kUnauthenticated for a rejected
// peer certificate, kAborted when the peer broke the protocol or sent a fatal
// alert, kDeadlineExceeded for timeouts, kUnavailable for transport failures,
// kInternal for OpenSSL or internal failures.
#ifndef TLSENGINE_CORE_ERRORS_H_
#define TLSENGINE_CORE_ERRORS_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tlsengine {

// Node's error codes that the engine itself produces.
inline constexpr absl::string_view kErrHandshakeTimeout = "ERR_TLS_HANDSHAKE_TIMEOUT";
inline constexpr absl::string_view kErrCertAltnameInvalid = "ERR_TLS_CERT_ALTNAME_INVALID";
inline constexpr absl::string_view kErrInvalidArgValue = "ERR_INVALID_ARG_VALUE";
inline constexpr absl::string_view kErrConnReset = "ECONNRESET";
inline constexpr absl::string_view kErrCloseTimeout = "ERR_TLS_CLOSE_TIMEOUT";
inline constexpr absl::string_view kErrInvalidState = "ERR_TLS_INVALID_STATE";
inline constexpr absl::string_view kErrBufferFull = "ERR_TLS_BUFFER_FULL";
inline constexpr absl::string_view kErrInternal = "ERR_TLS_INTERNAL";

// Builds a status carrying `node_code`. An empty node_code adds no payload.
absl::Status MakeError(absl::StatusCode code, absl::string_view node_code,
                       absl::string_view message);

// Returns `status` with the TLS alert number (RFC 8446 §6) attached.
absl::Status WithAlert(absl::Status status, int alert);

// The Node-style code carried by `status`, or "" when it has none.
std::string NodeCode(const absl::Status& status);

// The TLS alert carried by `status`, if any.
std::optional<int> AlertOf(const absl::Status& status);

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_ERRORS_H_

// OCSP responses (RFC 6960) as a server staples them: checked once when the
// application hands one in, and summarized for people, without OpenSSL
// types in the caller.
//
//   absl::StatusOr<OcspResponseInfo> r = ParseOcspResponse(der);
//   if (r.ok()) std::cout << "next update " << r->next_update;
#ifndef TLSENGINE_CORE_OCSP_H_
#define TLSENGINE_CORE_OCSP_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tlsengine {

struct OcspResponseInfo {
  // The first SingleResponse's certStatus: "good", "revoked" or "unknown".
  std::string cert_status;
  // Its thisUpdate and nextUpdate as CertificateInfo prints times
  // ("Nov 11 09:52:22 2099 GMT"); next_update is "" when absent.
  std::string this_update;
  std::string next_update;
};

// Checks that `der` is exactly one DER OCSPResponse whose responseStatus is
// successful and that holds a basic response with at least one
// SingleResponse. The signature is not checked here: the client checks it.
// Pure function, thread-safe. Errors: kInvalidArgument, code
// ERR_INVALID_ARG_VALUE, with the reason: "not a DER OCSPResponse",
// "OCSP response status is <status>", "OCSP response has no basic
// response", "OCSP response has no single response".
absl::StatusOr<OcspResponseInfo> ParseOcspResponse(absl::string_view der);

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_OCSP_H_

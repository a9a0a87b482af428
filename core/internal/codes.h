// Node-style codes for OpenSSL's errors. Internal to core.
#ifndef TLSENGINE_CORE_INTERNAL_CODES_H_
#define TLSENGINE_CORE_INTERNAL_CODES_H_

#include <string>

#include "absl/status/status.h"

namespace tlsengine {
namespace internal {

// Node's code for an X509_V_ERR_* value ("DEPTH_ZERO_SELF_SIGNED_CERT"), as
// io.js's VerifyError() maps them; an unmapped value uses OpenSSL's message
// as its code, as Node does.
std::string VerifyCode(long verify_result);

// kUnauthenticated with the verify code and OpenSSL's message
// ("self-signed certificate").
absl::Status VerifyError(long verify_result);

// Node's code for a queued OpenSSL error: "ERR_SSL_WRONG_VERSION_NUMBER" for
// the SSL library, "ERR_OSSL_<LIB>_<REASON>" otherwise.
std::string OpenSslCode(unsigned long error);

}  // namespace internal
}  // namespace tlsengine

#endif  // TLSENGINE_CORE_INTERNAL_CODES_H_

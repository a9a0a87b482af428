// Building CertificateInfo from OpenSSL objects. Internal to core.
#ifndef TLSENGINE_CORE_INTERNAL_X509_INFO_H_
#define TLSENGINE_CORE_INTERNAL_X509_INFO_H_

#include <openssl/x509.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/certificate.h"

namespace tlsengine {
namespace internal {

// Decodes `cert` (borrowed) into Node's fields.
absl::StatusOr<CertificateInfo> InfoFromX509(X509* cert);

// CheckServerIdentity(hostname, *InfoFromX509(cert)), verdict and message,
// without building the whole CertificateInfo when the name matches (the
// check on every handshake).
absl::Status CheckServerIdentityOfX509(absl::string_view hostname, X509* cert);

// True when `text` is an IPv4 or IPv6 literal ("[::1]" too); then `bytes`,
// if given, receives the address in network order.
bool ParseIpAddress(absl::string_view text, std::string* bytes);

}  // namespace internal
}  // namespace tlsengine

#endif  // TLSENGINE_CORE_INTERNAL_X509_INFO_H_

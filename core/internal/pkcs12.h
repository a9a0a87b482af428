// PKCS#12 parsing shared by SecureContext (which loads the key and chain)
// and ReadPkcs12 (which describes them). Internal to core.
#ifndef TLSENGINE_CORE_INTERNAL_PKCS12_H_
#define TLSENGINE_CORE_INTERNAL_PKCS12_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/internal/openssl_util.h"

namespace tlsengine {
namespace internal {

// A PFX's parts, owned; `key` or `cert` may be null when the file lacks it.
struct ParsedPkcs12 {
  OpenSslPtr<EVP_PKEY> key;
  OpenSslPtr<X509> cert;
  OpenSslPtr<STACK_OF(X509)> ca;
};

// Parses `pfx` (DER) with `passphrase`. kInvalidArgument as ReadPkcs12
// (core/pkcs12.h) says; OpenSSL's error queue is empty afterwards.
absl::StatusOr<ParsedPkcs12> ParsePkcs12(absl::string_view pfx, const std::string& passphrase);

}  // namespace internal
}  // namespace tlsengine

#endif  // TLSENGINE_CORE_INTERNAL_PKCS12_H_

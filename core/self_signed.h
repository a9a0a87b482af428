// A throw-away identity: an ECDSA P-256 key and a self-signed certificate
// for `common_name`, localhost, 127.0.0.1 and ::1. For demos, first runs
// and tests; never for production trust.
//
//   auto id = GenerateSelfSigned("localhost", absl::Now(), /*serial=*/1);
//   opts.key = {id->key_pem};  opts.cert = {id->cert_pem};
#ifndef TLSENGINE_CORE_SELF_SIGNED_H_
#define TLSENGINE_CORE_SELF_SIGNED_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tlsengine {

struct GeneratedIdentity {
  std::string key_pem;   // PKCS#8, unencrypted
  std::string cert_pem;
};

// Valid from `now` minus one hour (clock skew) for `validity`. Time and the
// serial number come from the caller; the key from OpenSSL's generator.
// kInvalidArgument for an empty name or non-positive validity.
absl::StatusOr<GeneratedIdentity> GenerateSelfSigned(absl::string_view common_name, absl::Time now,
                                                     uint64_t serial,
                                                     absl::Duration validity = absl::Hours(24 * 365));

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_SELF_SIGNED_H_

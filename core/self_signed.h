// A throw-away identity: an ECDSA P-256 key and a self-signed certificate
// for `common_name`, localhost, 127.0.0.1 and ::1. For demos, first runs
// and tests; never for production trust.
//
//   uint8_t serial[16];  // from a CSPRNG: getrandom(serial, sizeof serial, 0)
//   auto id = GenerateSelfSigned("localhost", absl::Now(), serial);
//   opts.key = {id->key_pem};  opts.cert = {id->cert_pem};
#ifndef TLSENGINE_CORE_SELF_SIGNED_H_
#define TLSENGINE_CORE_SELF_SIGNED_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace tlsengine {

struct GeneratedIdentity {
  std::string key_pem;   // PKCS#8, unencrypted
  std::string cert_pem;
};

// Valid from `now` minus one hour (clock skew) for `validity`. Time and the
// serial number come from the caller; the key from OpenSSL's generator.
// `serial` is big-endian, 1..20 bytes (RFC 5280 §4.1.2.2); its top bit is
// cleared, so random bytes make a positive number. Give 16 random bytes:
// the CA/Browser Forum asks for 64 bits of entropy or more, and scanners
// (testssl.sh) flag serials that can be guessed.
// kInvalidArgument (ERR_INVALID_ARG_VALUE) for an empty name, non-positive
// validity, or a serial that is too long, empty or zero.
absl::StatusOr<GeneratedIdentity> GenerateSelfSigned(absl::string_view common_name, absl::Time now,
                                                     absl::Span<const uint8_t> serial,
                                                     absl::Duration validity = absl::Hours(24 * 365));
// The same with a small, predictable serial (tests and in-memory demos).
absl::StatusOr<GeneratedIdentity> GenerateSelfSigned(absl::string_view common_name, absl::Time now,
                                                     uint64_t serial,
                                                     absl::Duration validity = absl::Hours(24 * 365));

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_SELF_SIGNED_H_

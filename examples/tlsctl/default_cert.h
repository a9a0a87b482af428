// The certificate `tlsctl serve` uses when given none: an ECDSA identity for
// localhost (and 127.0.0.1, ::1) made with core/self_signed.h on first use
// and kept in a cache directory, so clients can pin or trust it across runs.
//
//   absl::StatusOr<CachedIdentity> id = LoadOrCreateIdentity(DefaultCacheDir(), absl::Now());
//   // id->cert_path: give it to clients as --ca / -CAfile
#ifndef TLSENGINE_EXAMPLES_TLSCTL_DEFAULT_CERT_H_
#define TLSENGINE_EXAMPLES_TLSCTL_DEFAULT_CERT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/self_signed.h"

namespace tlsengine {
namespace tlsctl {

struct CachedIdentity {
  GeneratedIdentity identity;
  std::string cert_path;       // localhost.pem in the cache directory
  std::string key_path;        // localhost-key.pem (mode 0600)
  std::string fingerprint256;  // SHA-256 of the certificate, "AB:CD:..."
  bool generated = false;      // made by this call (not found in the cache)
};

// $XDG_CACHE_HOME/tlsengine/tlsctl, else $HOME/.cache/tlsengine/tlsctl.
// kFailedPrecondition when neither variable is set.
absl::StatusOr<std::string> DefaultCacheDir();

// Loads the identity cached in `dir`, or makes one (creating `dir`, mode
// 0700) when there is none, it does not parse, its key does not match, or
// it expires within a day of `now`. Files are written whole and renamed
// into place, so a concurrent run never sees half a key.
// kInternal (with the path and errno text) when the directory or the files
// cannot be written.
absl::StatusOr<CachedIdentity> LoadOrCreateIdentity(const std::string& dir, absl::Time now);

}  // namespace tlsctl
}  // namespace tlsengine

#endif  // TLSENGINE_EXAMPLES_TLSCTL_DEFAULT_CERT_H_

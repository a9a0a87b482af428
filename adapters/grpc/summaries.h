// control.proto's views of core and adapter objects: a certificate as a
// CertificateSummary, an address as a SocketAddress, and the certificates
// a context serves. Pure functions, thread-safe.
#ifndef TLSENGINE_ADAPTERS_GRPC_SUMMARIES_H_
#define TLSENGINE_ADAPTERS_GRPC_SUMMARIES_H_

#include <vector>

#include "absl/time/time.h"
#include "adapters/epoll/socket.h"
#include "adapters/grpc/control.pb.h"
#include "core/certificate.h"
#include "core/secure_context.h"

namespace tlsengine {
namespace control {

// `c` as control.proto shows it; days until expiry counted from `now`.
void FillSummary(const CertificateInfo& c, absl::Time now, v1::CertificateSummary* out);
void FillAddress(const epoll::SocketAddress& a, v1::SocketAddress* out);
// The certificates a context with options `o` serves: each `cert` string's
// leaf, then the PFX's certificate (ReadPkcs12). What does not decode is
// left out (SecureContext::Create has accepted it already).
std::vector<CertificateInfo> ServedCertificates(const SecureContextOptions& o);

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_SUMMARIES_H_

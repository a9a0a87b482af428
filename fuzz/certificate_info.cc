// certificate_info: DER certificates into CertificateInfo (every field Node
// reports), then the identity check against a few names.
#include <cstdlib>

#include "core/certificate.h"
#include "core/errors.h"
#include "fuzz/common.h"

using namespace tlsengine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<CertificateInfo> info = CertificateInfo::FromDer(absl::MakeConstSpan(data, size));
  if (!info.ok()) {
    if (NodeCode(info.status()) != "ERR_INVALID_ARG_VALUE") std::abort();
    return 0;
  }
  if (info->raw.size() != size) std::abort();  // FromDer refuses trailing bytes
  for (const char* host : {"localhost", "a.example.com", "127.0.0.1", "::1"}) {
    absl::Status s = CheckServerIdentity(host, *info);
    if (!s.ok() && NodeCode(s) != "ERR_TLS_CERT_ALTNAME_INVALID") std::abort();
  }
  return 0;
}

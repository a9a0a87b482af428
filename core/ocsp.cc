#include "core/ocsp.h"

#include <openssl/ocsp.h>

#include <ctime>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/openssl_util.h"

namespace tlsengine {
namespace {

using internal::OpenSslPtr;

absl::Status Bad(absl::string_view what) {
  return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, what);
}

// The form CertificateInfo prints times in, whole seconds.
std::string TimeText(const ASN1_GENERALIZEDTIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return "";
  char buf[64];
  strftime(buf, sizeof buf, "%b %e %H:%M:%S %Y GMT", &tm);
  return buf;
}

struct OcspResponseDeleter {
  void operator()(OCSP_RESPONSE* p) const { OCSP_RESPONSE_free(p); }
};
struct OcspBasicDeleter {
  void operator()(OCSP_BASICRESP* p) const { OCSP_BASICRESP_free(p); }
};

}  // namespace

absl::StatusOr<OcspResponseInfo> ParseOcspResponse(absl::string_view der) {
  internal::ErrorQueueCleaner clean_errors_on_exit;
  const unsigned char* begin = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* p = begin;
  std::unique_ptr<OCSP_RESPONSE, OcspResponseDeleter> resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())));
  if (resp == nullptr || p != begin + der.size()) return Bad("not a DER OCSPResponse");
  const int status = OCSP_response_status(resp.get());
  if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    return Bad(absl::StrCat("OCSP response status is ", OCSP_response_status_str(status)));
  }
  std::unique_ptr<OCSP_BASICRESP, OcspBasicDeleter> basic(OCSP_response_get1_basic(resp.get()));
  if (basic == nullptr) return Bad("OCSP response has no basic response");
  OCSP_SINGLERESP* single = OCSP_resp_get0(basic.get(), 0);  // borrowed from basic
  if (single == nullptr) return Bad("OCSP response has no single response");
  int reason = 0;
  ASN1_GENERALIZEDTIME *revoked = nullptr, *this_update = nullptr, *next_update = nullptr;  // borrowed
  const int cert_status = OCSP_single_get0_status(single, &reason, &revoked, &this_update, &next_update);
  OcspResponseInfo info;
  info.cert_status = cert_status >= 0 ? OCSP_cert_status_str(cert_status) : "unknown";
  info.this_update = TimeText(this_update);
  info.next_update = TimeText(next_update);
  return info;
}

}  // namespace tlsengine

#include "adapters/grpc/summaries.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/pkcs12.h"

namespace tlsengine {
namespace control {

void FillSummary(const CertificateInfo& c, absl::Time now, v1::CertificateSummary* out) {
  out->set_subject(c.subject.ToString());
  for (const std::string& d : c.DnsNames()) out->add_subjectaltname(absl::StrCat("DNS:", d));
  for (const std::string& ip : c.IpAddresses()) out->add_subjectaltname(absl::StrCat("IP Address:", ip));
  out->set_issuer(c.issuer.ToString());
  out->set_serial_number(c.serial_number);
  out->set_fingerprint256(c.fingerprint256);
  out->set_valid_from(c.valid_from);
  out->set_valid_to(c.valid_to);
  int64_t secs = c.valid_to_unix - absl::ToUnixSeconds(now);
  // Envoy's days_until_expiration: whole days, rounded down (negative once
  // expired).
  out->set_days_until_expiration(secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400));
}

void FillAddress(const epoll::SocketAddress& a, v1::SocketAddress* out) {
  out->set_address(a.address);
  out->set_family(a.family);
  out->set_port(a.port);
}

std::vector<CertificateInfo> ServedCertificates(const SecureContextOptions& o) {
  std::vector<CertificateInfo> out;
  for (const std::string& pem : o.cert) {
    absl::StatusOr<CertificateInfo> info = CertificateInfo::FromPem(pem);
    if (info.ok()) out.push_back(*std::move(info));
  }
  if (!o.pfx.empty()) {
    absl::StatusOr<Pkcs12Contents> pfx = ReadPkcs12(o.pfx, o.passphrase);
    if (pfx.ok()) out.push_back(std::move(pfx->certificate));
  }
  return out;
}

}  // namespace control
}  // namespace tlsengine

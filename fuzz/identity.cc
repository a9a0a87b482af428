// identity: the parsers this project writes itself: RFC 6125 host name
// matching (CheckServerIdentity over a fuzzed subjectAltName and CN, with
// IP literal parsing) and the SNI context table (SniContexts::Add/Find).
//
// Input: chunks: host, subjectaltname, CN, an SNI pattern, an SNI name.
#include <cstdlib>

#include "core/certificate.h"
#include "core/errors.h"
#include "fuzz/common.h"

using namespace tlsengine;

namespace {

// Letters, digits and hyphens in non-empty labels, not all digits and dots
// (an IPv4 literal): a name that must match a certificate listing it.
bool IsPlainDnsName(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.' || name.find("..") != std::string::npos) {
    return false;
  }
  bool letter = false;
  for (char c : name) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
    if (!alpha && !(c >= '0' && c <= '9') && c != '.') return false;
    letter |= alpha;
  }
  return letter;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  std::string host(in.Chunk());
  CertificateInfo cert;
  cert.subjectaltname = std::string(in.Chunk());
  std::string cn(in.Chunk());
  if (!cn.empty()) cert.subject.entries.push_back({"CN", cn});
  absl::Status s = CheckServerIdentity(host, cert);
  if (!s.ok() && (NodeCode(s) != "ERR_TLS_CERT_ALTNAME_INVALID" || s.message().empty())) std::abort();
  // A plain name always matches a certificate that lists exactly it.
  if (IsPlainDnsName(host)) {
    CertificateInfo exact;
    exact.subjectaltname = "DNS:" + host;
    if (!CheckServerIdentity(host, exact).ok()) std::abort();
  }
  SniContexts table;
  std::string pattern(in.Chunk());
  std::string name(in.Chunk());
  const std::shared_ptr<const SecureContext> ctx = fuzz::Context(fuzz::Fixture::kServerRsa);
  absl::Status added = table.Add(pattern, ctx);
  if (!added.ok() && NodeCode(added).empty()) std::abort();
  std::shared_ptr<const SecureContext> found = table.Find(name);
  if (found != nullptr && found != ctx) std::abort();
  if (added.ok() && table.Find(pattern) != ctx && pattern.rfind("*.", 0) != 0) std::abort();
  return 0;
}

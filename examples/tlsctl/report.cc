#include "examples/tlsctl/report.h"

#include <map>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/errors.h"

namespace tlsengine {
namespace tlsctl {

JsonObject NameJson(const DistinguishedName& name) {
  // Keep certificate order of first appearance; gather repeats.
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>> values;
  for (const auto& [attr, value] : name.entries) {
    if (values.find(attr) == values.end()) order.push_back(attr);
    values[attr].push_back(value);
  }
  JsonObject o;
  for (const std::string& attr : order) {
    const std::vector<std::string>& v = values[attr];
    if (v.size() == 1) {
      o.Add(attr, v[0]);
      continue;
    }
    std::string arr = "[";
    for (size_t i = 0; i < v.size(); ++i) absl::StrAppend(&arr, i ? "," : "", JsonString(v[i]));
    o.AddRaw(attr, arr + "]");
  }
  return o;
}

JsonObject CertificateJson(const CertificateInfo& cert) {
  JsonObject o;
  o.Add("subject", NameJson(cert.subject))
      .Add("issuer", NameJson(cert.issuer))
      .AddOrNull("subjectaltname", cert.subjectaltname)
      .Add("ca", cert.ca)
      .Add("bits", cert.bits)
      .Add("valid_from", cert.valid_from)
      .Add("valid_to", cert.valid_to)
      .Add("fingerprint", cert.fingerprint)
      .Add("fingerprint256", cert.fingerprint256)
      .Add("serialNumber", cert.serial_number);
  return o;
}

JsonObject SecureReport(absl::string_view event, const TlsConnection& conn, const PeerAddress& peer, uint64_t id) {
  JsonObject o;
  o.Add("event", event).Add("id", id);
  o.Add("remoteAddress", peer.address);
  if (peer.family == "unix") {
    o.AddNull("remotePort");
  } else {
    o.Add("remotePort", peer.port);
  }
  o.AddOrNull("protocol", conn.protocol());
  if (std::optional<CipherInfo> c = conn.GetCipher()) {
    JsonObject cipher;
    cipher.Add("name", c->name).Add("standardName", c->standard_name).Add("version", c->version);
    o.Add("cipher", cipher);
  } else {
    o.AddNull("cipher");
  }
  o.Add("authorized", conn.authorized());
  o.AddOrNull("authorizationError", conn.authorization_error());
  o.AddOrNull("servername", conn.servername());
  o.AddOrNull("alpnProtocol", conn.alpn_protocol());
  o.AddOrNull("npnProtocol", conn.npn_protocol());
  o.Add("sessionReused", conn.is_session_reused());
  if (std::optional<CertificateInfo> cert = conn.GetPeerCertificate()) {
    o.Add("peerCertificate", CertificateJson(*cert));
  } else {
    o.AddNull("peerCertificate");
  }
  return o;
}

JsonObject ErrorReport(absl::string_view event, const absl::Status& status, std::optional<uint64_t> id) {
  JsonObject o;
  o.Add("event", event);
  if (id) o.Add("id", *id);
  std::string code = NodeCode(status);
  if (code.empty()) code = absl::StatusCodeToString(status.code());
  o.Add("code", code).Add("message", status.message());
  return o;
}

std::string Base64(absl::string_view bytes) { return absl::Base64Escape(bytes); }

}  // namespace tlsctl
}  // namespace tlsengine

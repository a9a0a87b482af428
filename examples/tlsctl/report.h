// The JSON objects tlsctl prints for a connection, with Node's field names
// (tls.TLSSocket's getProtocol(), getCipher(), authorized, ...).
//
//   std::cout << SecureReport("secureConnection", conn, peer, /*id=*/7).Line();
#ifndef TLSENGINE_EXAMPLES_TLSCTL_REPORT_H_
#define TLSENGINE_EXAMPLES_TLSCTL_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "core/certificate.h"
#include "core/tls_connection.h"
#include "examples/tlsctl/json.h"

namespace tlsengine {
namespace tlsctl {

// Where a socket's peer is. `family` is "IPv4", "IPv6" or "unix" (port 0).
struct PeerAddress {
  std::string address;
  int port = 0;
  std::string family;
};

// Node's getPeerCertificate() subset: subject, issuer, subjectaltname, ca,
// bits, valid_from, valid_to, fingerprint, fingerprint256, serialNumber.
JsonObject CertificateJson(const CertificateInfo& cert);
// A distinguished name as Node's object ({"CN":"localhost"}); a repeated
// attribute becomes an array.
JsonObject NameJson(const DistinguishedName& name);

// secureConnection / secureConnect: {"event", "id", "remoteAddress",
// "remotePort", "protocol", "cipher" {name, standardName, version},
// "authorized", "authorizationError", "servername", "alpnProtocol",
// "npnProtocol", "sessionReused", "peerCertificate"}. Absent values are null.
JsonObject SecureReport(absl::string_view event, const TlsConnection& conn, const PeerAddress& peer, uint64_t id);

// {"event", ["id",] "code", "message"}: the status's Node code (or its
// canonical code's name when it has none) and message.
JsonObject ErrorReport(absl::string_view event, const absl::Status& status, std::optional<uint64_t> id = std::nullopt);

// Standard base64 (RFC 4648 §4), for DER blobs in JSON.
std::string Base64(absl::string_view bytes);

}  // namespace tlsctl
}  // namespace tlsengine

#endif  // TLSENGINE_EXAMPLES_TLSCTL_REPORT_H_

// The peer-certificate object, with the fields and spellings of Node's
// tlsSocket.getPeerCertificate(), and Node's tls.checkServerIdentity.
//
//   absl::StatusOr<CertificateInfo> cert = CertificateInfo::FromDer(der);
//   absl::Status ok = CheckServerIdentity("example.com", *cert);
#ifndef TLSENGINE_CORE_CERTIFICATE_H_
#define TLSENGINE_CORE_CERTIFICATE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace tlsengine {

// A distinguished name in certificate order: {"C","UK"}, {"CN","localhost"}.
// Node turns this into an object ({C: 'UK', CN: 'localhost'}); repeated
// attributes become arrays there and repeated entries here.
class DistinguishedName {
 public:
  std::vector<std::pair<std::string, std::string>> entries;

  // The first value of `attribute` ("CN", "O", ...), or "" when absent.
  std::string Get(absl::string_view attribute) const;
  // All values of `attribute`, in order.
  std::vector<std::string> GetAll(absl::string_view attribute) const;
  // One-line form, "C=UK, O=io.js, CN=localhost".
  std::string ToString() const;
};

// One certificate, decoded once. Immutable value; safe to share.
struct CertificateInfo {
  DistinguishedName subject;
  DistinguishedName issuer;          // Node's `issuer` object (the DN)
  std::string subjectaltname;        // "DNS:localhost, IP Address:127.0.0.1"
  bool ca = false;                   // basicConstraints CA:TRUE
  int bits = 0;                      // key size
  std::string modulus;               // RSA: uppercase hex
  std::string exponent;              // RSA: "0x10001"
  std::string asn1_curve;            // EC: "prime256v1"
  std::string nist_curve;            // EC: "P-256"
  std::string pubkey;                // SubjectPublicKeyInfo, DER
  std::string valid_from;            // "Nov 11 09:52:22 2009 GMT"
  std::string valid_to;
  int64_t valid_from_unix = 0;       // the same instants, seconds since 1970
  int64_t valid_to_unix = 0;
  std::string fingerprint;           // SHA-1, "2A:7A:..."
  std::string fingerprint256;        // SHA-256
  std::string fingerprint512;        // SHA-512
  std::vector<std::string> ext_key_usage;  // dotted OIDs
  std::string serial_number;         // uppercase hex, Node's serialNumber
  std::string raw;                   // the DER encoding
  // getPeerCertificate(true): the certificate that issued this one, as sent
  // by the peer or found in the trust store (Node's issuerCertificate). A
  // self-signed certificate is its own issuer in Node; here the chain ends
  // with nullptr instead, so it never loops.
  std::shared_ptr<const CertificateInfo> issuer_certificate;

  // Decodes a DER certificate. kInvalidArgument when it does not parse.
  static absl::StatusOr<CertificateInfo> FromDer(absl::Span<const uint8_t> der);
  // Decodes the first certificate of a PEM text.
  static absl::StatusOr<CertificateInfo> FromPem(absl::string_view pem);

  // The DNS names and IP addresses (as text) of the subjectAltName.
  std::vector<std::string> DnsNames() const;
  std::vector<std::string> IpAddresses() const;
};

// Node's tls.checkServerIdentity(hostname, cert), by RFC 6125: an IP host
// must be among the IP subjectAltNames; a DNS host must match a DNS
// subjectAltName, where `*` is allowed only as the whole left-most label of
// a name with at least three labels; the subject CN is consulted only when
// there is no DNS subjectAltName. Comparison ignores case and a trailing dot.
// Returns OK, or kUnauthenticated with code ERR_TLS_CERT_ALTNAME_INVALID and
// Node's message ("Hostname/IP does not match certificate's altnames: ...").
absl::Status CheckServerIdentity(absl::string_view hostname, const CertificateInfo& cert);

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_CERTIFICATE_H_

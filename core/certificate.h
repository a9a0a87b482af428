// The peer-certificate object, with the fields and spellings of Node's
// tlsSocket.getPeerCertificate(), and Node's tls.checkServerIdentity.
//
//   absl::StatusOr<CertificateInfo> cert = CertificateInfo::FromDer(der);
//   absl::Status ok = CheckServerIdentity("example.com", *cert);
#ifndef TLSENGINE_CORE_CERTIFICATE_H_
#define TLSENGINE_CORE_CERTIFICATE_H_

#include <cstdint>
#include <map>
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
  // Node's display form, "DNS:localhost, IP Address:127.0.0.1". A value
  // with a comma, quote, backslash, apostrophe or control character (or,
  // for ASCII types, a byte outside ' '..'~') is printed JSON-quoted, as
  // Node does since CVE-2021-44532: URI:"spiffe://x/y\u002c DNS:v.example".
  // For people: identity checks read dns_names and ip_addresses.
  std::string subjectaltname;
  // The subjectAltName's dNSName values, as encoded (an embedded NUL or
  // other malformation is kept, and matches nothing). A subjectAltName that
  // does not decode yields one empty name: it matches nothing and, being a
  // DNS name, stops the fallback to the subject CN.
  std::vector<std::string> dns_names;
  // The subjectAltName's iPAddress values, raw: 4 or 16 bytes in network
  // order (any other length is kept and matches nothing).
  std::vector<std::string> ip_addresses;
  // Node's infoAccess, from authorityInfoAccess: "<method> - <name type>"
  // to values, {"OCSP - URI": {"http://..."}, "CA Issuers - URI": {...}}.
  std::map<std::string, std::vector<std::string>> info_access;
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

  // dns_names, and ip_addresses as text ("127.0.0.1", "0:0:0:0:0:0:0:1").
  std::vector<std::string> DnsNames() const;
  std::vector<std::string> IpAddresses() const;
};

// Node's tls.checkServerIdentity(hostname, cert), by RFC 6125, on the
// structured names (cert.dns_names, cert.ip_addresses, subject CN), never
// on the display string: an IP host must be among the IP subjectAltNames; a
// DNS host must match a DNS subjectAltName, where `*` is allowed only as the
// whole left-most label of a name with at least three labels, the others
// letters, digits and inner hyphens, and stands for one label of letters,
// digits and hyphens; the subject CN is consulted only when there is no DNS
// subjectAltName. URI, email and other names never count. Comparison
// ignores ASCII case and one trailing dot; a host or name with a byte
// outside '!'..'~' (NUL, space, non-ASCII), an empty label, or a host with
// `*` matches nothing.
// Returns OK, or kUnauthenticated with code ERR_TLS_CERT_ALTNAME_INVALID and
// Node's message ("Hostname/IP does not match certificate's altnames: ...").
absl::Status CheckServerIdentity(absl::string_view hostname, const CertificateInfo& cert);

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_CERTIFICATE_H_

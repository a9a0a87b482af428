// PKCS#12 (PFX) files: what one holds, decoded into CertificateInfo, so a
// program can show what a SecureContextOptions::pfx serves without OpenSSL.
//
//   absl::StatusOr<Pkcs12Contents> p = ReadPkcs12(pfx_der, "secret");
//   if (p.ok()) std::cout << p->certificate.subject.ToString();
#ifndef TLSENGINE_CORE_PKCS12_H_
#define TLSENGINE_CORE_PKCS12_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/certificate.h"

namespace tlsengine {

// What a PFX holds besides its private key (which stays inside core).
struct Pkcs12Contents {
  CertificateInfo certificate;       // the key's certificate
  std::vector<CertificateInfo> ca;   // the other certificates, in file order
};

// Decodes the DER PKCS#12 `pfx` with `passphrase` ("" for none), as
// SecureContext::Create reads SecureContextOptions::pfx. Pure function,
// thread-safe. Errors, all kInvalidArgument with the messages Create()
// gives ("pfx: <OpenSSL's reason> (<meaning>)"):
//   ERR_INVALID_ARG_VALUE            not a PKCS#12, wrong passphrase, or no
//                                    certificate in it;
//   ERR_CRYPTO_UNSUPPORTED_OPERATION a legacy algorithm (RC2) OpenSSL 3
//                                    does not load.
absl::StatusOr<Pkcs12Contents> ReadPkcs12(absl::string_view pfx, const std::string& passphrase);

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_PKCS12_H_

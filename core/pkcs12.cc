#include "core/pkcs12.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/pkcs12.h"
#include "core/internal/x509_info.h"

namespace tlsengine {
namespace internal {
namespace {

// A PFX that does not load, in Node's words: the reason text of OpenSSL's
// first error ("mac verify failure", "not enough data", "wrong tag"), or
// ERR_CRYPTO_UNSUPPORTED_OPERATION "Unsupported PKCS12 PFX data" for an
// algorithm OpenSSL 3 no longer loads (RC2); then what it means.
absl::Status BadPfx(absl::string_view meaning) {
  const unsigned long first = ERR_peek_error();
  if (ERR_GET_LIB(first) == ERR_LIB_EVP && ERR_GET_REASON(first) == ERR_R_UNSUPPORTED) {
    return MakeError(absl::StatusCode::kInvalidArgument, "ERR_CRYPTO_UNSUPPORTED_OPERATION",
                     absl::StrCat("pfx: Unsupported PKCS12 PFX data (a legacy algorithm such as RC2, which "
                                  "OpenSSL 3 does not load: ",
                                  DrainErrors(), ")"));
  }
  const char* reason = ERR_reason_error_string(first);
  std::string text = reason != nullptr ? reason : "Unknown error";
  ERR_clear_error();
  return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                   absl::StrCat("pfx: ", text, " (", meaning, ")"));
}

}  // namespace

absl::StatusOr<ParsedPkcs12> ParsePkcs12(absl::string_view pfx, const std::string& passphrase) {
  ErrorQueueCleaner clean_errors_on_exit;
  // Read from a BIO, as Node does: a short file is "not enough data".
  OpenSslPtr<BIO> bio = MemoryBio(pfx);
  OpenSslPtr<PKCS12> p12(d2i_PKCS12_bio(bio.get(), nullptr));
  if (!p12) return BadPfx("not a PKCS#12 (PFX) file");
  EVP_PKEY* raw_key = nullptr;
  X509* raw_cert = nullptr;
  STACK_OF(X509)* raw_ca = nullptr;
  int ok = PKCS12_parse(p12.get(), passphrase.c_str(), &raw_key, &raw_cert, &raw_ca);
  // PKCS12_parse hands us ownership of all three.
  ParsedPkcs12 out{OpenSslPtr<EVP_PKEY>(raw_key), OpenSslPtr<X509>(raw_cert), OpenSslPtr<STACK_OF(X509)>(raw_ca)};
  if (ok != 1) {
    return BadPfx(PeekErrorReason() == PKCS12_R_MAC_VERIFY_FAILURE ? "wrong passphrase?" : "unreadable PKCS#12");
  }
  return out;
}

}  // namespace internal

absl::StatusOr<Pkcs12Contents> ReadPkcs12(absl::string_view pfx, const std::string& passphrase) {
  absl::StatusOr<internal::ParsedPkcs12> parsed = internal::ParsePkcs12(pfx, passphrase);
  if (!parsed.ok()) return parsed.status();
  if (!parsed->cert) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, "pfx: PKCS#12 holds no certificate");
  }
  absl::StatusOr<CertificateInfo> leaf = internal::InfoFromX509(parsed->cert.get());
  if (!leaf.ok()) return leaf.status();
  Pkcs12Contents out{*std::move(leaf), {}};
  for (int i = 0; parsed->ca && i < sk_X509_num(parsed->ca.get()); ++i) {
    absl::StatusOr<CertificateInfo> ca = internal::InfoFromX509(sk_X509_value(parsed->ca.get(), i));  // borrowed
    if (!ca.ok()) return ca.status();
    out.ca.push_back(*std::move(ca));
  }
  return out;
}

}  // namespace tlsengine

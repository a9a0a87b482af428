#include "core/self_signed.h"

#include <openssl/bn.h>
#include <openssl/pem.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/openssl_util.h"

namespace tlsengine {

using internal::OpenSslPtr;

absl::StatusOr<GeneratedIdentity> GenerateSelfSigned(absl::string_view common_name, absl::Time now,
                                                     absl::Span<const uint8_t> serial, absl::Duration validity) {
  if (common_name.empty() || validity <= absl::ZeroDuration()) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     "GenerateSelfSigned: needs a common name and a positive validity");
  }
  if (serial.empty() || serial.size() > 20) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     absl::StrCat("GenerateSelfSigned: the serial is ", serial.size(), " bytes; want 1..20"));
  }
  // Positive: the top bit of the first byte is the sign in DER.
  std::vector<uint8_t> positive(serial.begin(), serial.end());
  positive[0] &= 0x7f;
  if (std::all_of(positive.begin(), positive.end(), [](uint8_t b) { return b == 0; })) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     "GenerateSelfSigned: the serial is zero; it must be positive");
  }
  auto fail = [](absl::string_view what) {
    return MakeError(absl::StatusCode::kInternal, kErrInternal,
                     absl::StrCat("GenerateSelfSigned: ", what, ": ", internal::DrainErrors()));
  };
  OpenSslPtr<EVP_PKEY> key(EVP_EC_gen("P-256"));
  OpenSslPtr<X509> cert(X509_new());
  OpenSslPtr<BIGNUM> serial_bn(BN_bin2bn(positive.data(), static_cast<int>(positive.size()), nullptr));
  if (!key || !cert) return fail("key generation");
  X509_set_version(cert.get(), X509_VERSION_3);
  if (!serial_bn || BN_to_ASN1_INTEGER(serial_bn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return fail("serial");
  }
  time_t start = absl::ToTimeT(now - absl::Hours(1));
  time_t end = absl::ToTimeT(now + validity);
  if (X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, 0, &start) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), 0, 0, &end) == nullptr) {
    return fail("validity");
  }
  X509_NAME* name = X509_get_subject_name(cert.get());  // borrowed
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("tlsengine"), -1, -1, 0);
  std::string cn(common_name);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert.get(), cert.get(), nullptr, nullptr, 0);
  std::string san = absl::StrCat("DNS:", cn, cn == "localhost" ? "" : ",DNS:localhost",
                                 ",IP:127.0.0.1,IP:::1");
  const std::pair<int, std::string> extensions[] = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_ext_key_usage, "serverAuth,clientAuth"},
      {NID_subject_alt_name, san},
  };
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    if (ext == nullptr) return fail("extension");
    X509_add_ext(cert.get(), ext, -1);  // copies
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return fail("signing");
  OpenSslPtr<BIO> key_bio(BIO_new(BIO_s_mem()));
  OpenSslPtr<BIO> cert_bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1) {
    return fail("PEM encoding");
  }
  return GeneratedIdentity{internal::BioContents(key_bio.get()), internal::BioContents(cert_bio.get())};
}

absl::StatusOr<GeneratedIdentity> GenerateSelfSigned(absl::string_view common_name, absl::Time now,
                                                     uint64_t serial, absl::Duration validity) {
  uint8_t bytes[9] = {0};  // a leading zero keeps the top bit clear
  for (int i = 8; i >= 1; --i, serial >>= 8) bytes[i] = static_cast<uint8_t>(serial & 0xff);
  return GenerateSelfSigned(common_name, now, absl::MakeConstSpan(bytes), validity);
}

}  // namespace tlsengine

#include "core/internal/codes.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/errors.h"

namespace tlsengine {
namespace internal {

std::string VerifyCode(long verify_result) {
#define TLSENGINE_VERIFY_CODE(name) \
  case X509_V_ERR_##name:           \
    return #name;
  switch (verify_result) {
    TLSENGINE_VERIFY_CODE(UNABLE_TO_GET_ISSUER_CERT)
    TLSENGINE_VERIFY_CODE(UNABLE_TO_GET_CRL)
    TLSENGINE_VERIFY_CODE(UNABLE_TO_DECRYPT_CERT_SIGNATURE)
    TLSENGINE_VERIFY_CODE(UNABLE_TO_DECRYPT_CRL_SIGNATURE)
    TLSENGINE_VERIFY_CODE(UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY)
    TLSENGINE_VERIFY_CODE(CERT_SIGNATURE_FAILURE)
    TLSENGINE_VERIFY_CODE(CRL_SIGNATURE_FAILURE)
    TLSENGINE_VERIFY_CODE(CERT_NOT_YET_VALID)
    TLSENGINE_VERIFY_CODE(CERT_HAS_EXPIRED)
    TLSENGINE_VERIFY_CODE(CRL_NOT_YET_VALID)
    TLSENGINE_VERIFY_CODE(CRL_HAS_EXPIRED)
    TLSENGINE_VERIFY_CODE(ERROR_IN_CERT_NOT_BEFORE_FIELD)
    TLSENGINE_VERIFY_CODE(ERROR_IN_CERT_NOT_AFTER_FIELD)
    TLSENGINE_VERIFY_CODE(ERROR_IN_CRL_LAST_UPDATE_FIELD)
    TLSENGINE_VERIFY_CODE(ERROR_IN_CRL_NEXT_UPDATE_FIELD)
    TLSENGINE_VERIFY_CODE(OUT_OF_MEM)
    TLSENGINE_VERIFY_CODE(DEPTH_ZERO_SELF_SIGNED_CERT)
    TLSENGINE_VERIFY_CODE(SELF_SIGNED_CERT_IN_CHAIN)
    TLSENGINE_VERIFY_CODE(UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
    TLSENGINE_VERIFY_CODE(UNABLE_TO_VERIFY_LEAF_SIGNATURE)
    TLSENGINE_VERIFY_CODE(CERT_CHAIN_TOO_LONG)
    TLSENGINE_VERIFY_CODE(CERT_REVOKED)
    TLSENGINE_VERIFY_CODE(INVALID_CA)
    TLSENGINE_VERIFY_CODE(PATH_LENGTH_EXCEEDED)
    TLSENGINE_VERIFY_CODE(INVALID_PURPOSE)
    TLSENGINE_VERIFY_CODE(CERT_UNTRUSTED)
    TLSENGINE_VERIFY_CODE(CERT_REJECTED)
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return std::string(kErrCertAltnameInvalid);
    default:
      return X509_verify_cert_error_string(verify_result);
  }
#undef TLSENGINE_VERIFY_CODE
}

absl::Status VerifyError(long verify_result) {
  return MakeError(absl::StatusCode::kUnauthenticated, VerifyCode(verify_result),
                   X509_verify_cert_error_string(verify_result));
}

std::string OpenSslCode(unsigned long error) {
  const char* reason = ERR_reason_error_string(error);
  std::string upper = absl::AsciiStrToUpper(
      reason != nullptr ? reason : absl::StrCat("REASON_", ERR_GET_REASON(error)));
  for (char& c : upper) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  if (ERR_GET_LIB(error) == ERR_LIB_SSL) return absl::StrCat("ERR_SSL_", upper);
  std::string lib = ERR_lib_error_string(error) != nullptr ? ERR_lib_error_string(error) : "UNKNOWN";
  lib = absl::AsciiStrToUpper(lib.substr(0, lib.find(' ')));
  return absl::StrCat("ERR_OSSL_", lib, "_", upper);
}

}  // namespace internal
}  // namespace tlsengine

// RAII ownership of OpenSSL objects and small helpers shared inside core.
// No owning raw pointer leaves this header: every object OpenSSL gives us
// lands in an OpenSslPtr at once.
#ifndef TLSENGINE_CORE_INTERNAL_OPENSSL_UTIL_H_
#define TLSENGINE_CORE_INTERNAL_OPENSSL_UTIL_H_

#include <openssl/bio.h>
#include <openssl/dh.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tlsengine {
namespace internal {

inline void FreeX509Stack(STACK_OF(X509) * stack) { sk_X509_pop_free(stack, X509_free); }

template <typename T>
struct OpenSslDeleter;

#define TLSENGINE_DEFINE_OPENSSL_DELETER(T, free_fn) \
  template <>                                        \
  struct OpenSslDeleter<T> {                         \
    void operator()(T* p) const { free_fn(p); }      \
  }

TLSENGINE_DEFINE_OPENSSL_DELETER(SSL, SSL_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(SSL_CTX, SSL_CTX_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(SSL_SESSION, SSL_SESSION_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(BIO, BIO_free_all);
TLSENGINE_DEFINE_OPENSSL_DELETER(BIO_METHOD, BIO_meth_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(X509, X509_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(X509_CRL, X509_CRL_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(X509_STORE, X509_STORE_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(X509_NAME, X509_NAME_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(EVP_PKEY, EVP_PKEY_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(EVP_PKEY_CTX, EVP_PKEY_CTX_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(PKCS12, PKCS12_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(GENERAL_NAMES, GENERAL_NAMES_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(AUTHORITY_INFO_ACCESS, AUTHORITY_INFO_ACCESS_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(GENERAL_NAME, GENERAL_NAME_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(ASN1_TYPE, ASN1_TYPE_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(X509_STORE_CTX, X509_STORE_CTX_free);
// ASN1_INTEGER is ASN1_STRING: this frees every ASN1_STRING type.
TLSENGINE_DEFINE_OPENSSL_DELETER(ASN1_INTEGER, ASN1_INTEGER_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(BIGNUM, BN_free);
TLSENGINE_DEFINE_OPENSSL_DELETER(STACK_OF(X509), FreeX509Stack);

#undef TLSENGINE_DEFINE_OPENSSL_DELETER

template <typename T>
using OpenSslPtr = std::unique_ptr<T, OpenSslDeleter<T>>;

// A read-only memory BIO over `data`, which must outlive it.
OpenSslPtr<BIO> MemoryBio(absl::string_view data);

// The contents of a memory BIO.
std::string BioContents(BIO* bio);

// Empties OpenSSL's thread-local error queue into one readable line, most
// specific reason last ("PEM routines: bad decrypt"). "" when it was empty.
std::string DrainErrors();

// Empties OpenSSL's thread-local error queue when it goes out of scope, so
// that no way out of a function (an early error return included) leaves a
// stale error for the next OpenSSL user on the thread. Build any message
// from the queue (DrainErrors) before the scope ends.
//
//   internal::ErrorQueueCleaner clean_errors_on_exit;
class ErrorQueueCleaner {
 public:
  ErrorQueueCleaner() = default;
  ~ErrorQueueCleaner() { ERR_clear_error(); }
  ErrorQueueCleaner(const ErrorQueueCleaner&) = delete;
  ErrorQueueCleaner& operator=(const ErrorQueueCleaner&) = delete;
};

// ERR_clear_error() only when something is queued. Before each SSL call on
// the record path: a full clear walks all 16 slots of the thread's queue
// (about 800 instructions, as much as the rest of a small record's
// bookkeeping), a peek at an empty queue is a fraction of that.
inline void ClearErrorQueue() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// The reason code of the oldest queued error, without removing it (0: none).
int PeekErrorReason();

// OpenSSL's error queue, drained: the error that says what went wrong (the
// last one from the SSL library, which names the protocol failure, else the
// last one) and the whole queue as one line.
struct OpenSslFailure {
  unsigned long primary = 0;  // 0 when the queue was empty
  std::string detail;
};
OpenSslFailure DrainFailure();

// Uppercase hex of `data` with ':' between bytes, as Node prints fingerprints.
std::string ColonHex(const unsigned char* data, size_t len);

// The DER encoding of `object` through OpenSSL's `i2d` function for its
// type (i2d_X509, i2d_PUBKEY, i2d_SSL_SESSION); "" when it is null or
// cannot be encoded.
template <typename T>
std::string ToDer(int (*i2d)(const T*, unsigned char**), const T* object) {
  unsigned char* der = nullptr;
  int len = object != nullptr ? i2d(object, &der) : 0;
  std::string out = len > 0 ? std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len)) : "";
  OPENSSL_free(der);
  return out;
}

// The wire form of an ALPN or NPN protocol list (RFC 7301 §3.1): each name
// prefixed by its length. kInvalidArgument, naming `option`, for a name that
// is empty or longer than 255 bytes.
absl::StatusOr<std::string> ProtocolListWire(absl::string_view option, const std::vector<std::string>& protocols);

}  // namespace internal
}  // namespace tlsengine

#endif  // TLSENGINE_CORE_INTERNAL_OPENSSL_UTIL_H_

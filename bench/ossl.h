// Owning pointers for the OpenSSL objects the plain baseline makes (bench
// cannot see core/internal). Where OpenSSL takes ownership, the call site
// says so.
#ifndef TLSENGINE_BENCH_OSSL_H_
#define TLSENGINE_BENCH_OSSL_H_

#include <openssl/ssl.h>

#include <memory>

namespace tlsengine {
namespace bench {

struct SslFree {
  void operator()(SSL* p) const { SSL_free(p); }
};
struct SslCtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslSessionFree {
  void operator()(SSL_SESSION* p) const { SSL_SESSION_free(p); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, SslSessionFree>;

}  // namespace bench
}  // namespace tlsengine

#endif  // TLSENGINE_BENCH_OSSL_H_

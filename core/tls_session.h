// TlsSession: a client's TLS session, decoded once, to resume with on any
// number of later connections (Node's `session`, without decoding the
// serialized form, and the server's certificate in it, for each one).
//
//   // from a kSession event (Event::session_handle) or GetSessionHandle():
//   std::shared_ptr<const TlsSession> session = ev->session_handle;
//   ConnectionOptions opts;
//   opts.session_handle = session;      // instead of opts.session = ev->session
//   // stored elsewhere as bytes: TlsSession::FromDer(session->Serialize())
#ifndef TLSENGINE_CORE_TLS_SESSION_H_
#define TLSENGINE_CORE_TLS_SESSION_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tlsengine {
namespace internal {
struct SessionAccess;  // tls_session.cc: what core/openssl_interop.h reaches
}  // namespace internal

// Immutable once made; shared read-only by any number of connections on any
// number of threads (each connection resumes from a copy of its own, which
// costs a small allocation, not a decoding).
class TlsSession {
 public:
  // Decodes a serialized (DER) session, as in Event::session.
  // kInvalidArgument (ERR_INVALID_ARG_VALUE) when it is not one.
  static absl::StatusOr<std::shared_ptr<const TlsSession>> FromDer(absl::string_view der);

  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // The serialized (DER) form, what Event::session holds.
  std::string Serialize() const;
  // The OpenSSL session behind it, and making one from an SSL_SESSION:
  // core/openssl_interop.h (NativeHandle, TlsSessionFromCopyOf).

  ~TlsSession();

 private:
  friend struct internal::SessionAccess;
  struct Native;  // the SSL_SESSION, one reference
  TlsSession();
  std::unique_ptr<Native> native_;
};

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_TLS_SESSION_H_

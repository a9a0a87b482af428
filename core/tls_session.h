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

typedef struct ssl_session_st SSL_SESSION;

namespace tlsengine {
// Immutable once made; shared read-only by any number of connections on any
// number of threads (each connection resumes from a copy of its own, which
// costs a small allocation, not a decoding).
class TlsSession {
 public:
  // Decodes a serialized (DER) session, as in Event::session.
  // kInvalidArgument (ERR_INVALID_ARG_VALUE) when it is not one.
  static absl::StatusOr<std::shared_ptr<const TlsSession>> FromDer(absl::string_view der);
  // A copy of `session` (borrowed); nullptr when it cannot be made. For core.
  static std::shared_ptr<const TlsSession> FromCopyOf(SSL_SESSION* session);

  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // The serialized (DER) form, what Event::session holds.
  std::string Serialize() const;
  // The OpenSSL session, borrowed; valid while this object lives. For use
  // by core; changing it, or giving it to an SSL, breaks the sharing
  // promise (an SSL changes its session: give it an SSL_SESSION_dup, which
  // shares the peer certificate by reference and decodes nothing).
  SSL_SESSION* native_handle() const { return session_.get(); }

 private:
  struct SessionDeleter {
    void operator()(SSL_SESSION* session) const;
  };
  explicit TlsSession(SSL_SESSION* owned) : session_(owned) {}
  std::unique_ptr<SSL_SESSION, SessionDeleter> session_;  // one reference
};

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_TLS_SESSION_H_

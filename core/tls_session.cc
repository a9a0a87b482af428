#include "core/tls_session.h"

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/openssl_util.h"

namespace tlsengine {

absl::StatusOr<std::shared_ptr<const TlsSession>> TlsSession::FromDer(absl::string_view der) {
  internal::ErrorQueueCleaner clean_errors_on_exit;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  internal::OpenSslPtr<SSL_SESSION> session(d2i_SSL_SESSION(nullptr, &p, static_cast<long>(der.size())));
  if (!session) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, "session: not a serialized TLS session");
  }
  return std::shared_ptr<const TlsSession>(new TlsSession(session.release()));
}

std::shared_ptr<const TlsSession> TlsSession::FromCopyOf(SSL_SESSION* session) {
  // A copy: OpenSSL changes the session an SSL uses (an SSL freed without
  // close_notify marks its session not resumable), never one it does not.
  internal::OpenSslPtr<SSL_SESSION> copy(session != nullptr ? SSL_SESSION_dup(session) : nullptr);
  if (!copy) return nullptr;
  return std::shared_ptr<const TlsSession>(new TlsSession(copy.release()));
}

void TlsSession::SessionDeleter::operator()(SSL_SESSION* session) const { SSL_SESSION_free(session); }

std::string TlsSession::Serialize() const { return internal::ToDer(i2d_SSL_SESSION, session_.get()); }

}  // namespace tlsengine

#include "core/tls_session.h"

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/openssl_util.h"
#include "core/openssl_interop.h"

namespace tlsengine {

struct TlsSession::Native {
  internal::OpenSslPtr<SSL_SESSION> session;  // one reference
};

// Makes and reaches TlsSessions for openssl_interop.h.
struct internal::SessionAccess {
  // Takes `owned`'s reference.
  static std::shared_ptr<const TlsSession> Adopt(OpenSslPtr<SSL_SESSION> owned) {
    std::shared_ptr<TlsSession> session(new TlsSession());
    session->native_->session = std::move(owned);
    return session;
  }
  static SSL_SESSION* Of(const TlsSession& session) { return session.native_->session.get(); }
};

TlsSession::TlsSession() : native_(std::make_unique<Native>()) {}
TlsSession::~TlsSession() = default;

absl::StatusOr<std::shared_ptr<const TlsSession>> TlsSession::FromDer(absl::string_view der) {
  internal::ErrorQueueCleaner clean_errors_on_exit;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  internal::OpenSslPtr<SSL_SESSION> session(d2i_SSL_SESSION(nullptr, &p, static_cast<long>(der.size())));
  if (!session) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, "session: not a serialized TLS session");
  }
  return internal::SessionAccess::Adopt(std::move(session));
}

std::shared_ptr<const TlsSession> TlsSessionFromCopyOf(SSL_SESSION* session) {
  // A copy: OpenSSL changes the session an SSL uses (an SSL freed without
  // close_notify marks its session not resumable), never one it does not.
  internal::OpenSslPtr<SSL_SESSION> copy(session != nullptr ? SSL_SESSION_dup(session) : nullptr);
  if (!copy) return nullptr;
  return internal::SessionAccess::Adopt(std::move(copy));
}

SSL_SESSION* NativeHandle(const TlsSession& session) { return internal::SessionAccess::Of(session); }

std::string TlsSession::Serialize() const { return internal::ToDer(i2d_SSL_SESSION, native_->session.get()); }

}  // namespace tlsengine

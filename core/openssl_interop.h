// ESCAPE HATCH: OpenSSL types, no stability promise.
//
// The OpenSSL objects behind core's public types, for the fuzzers, tests
// that check what OpenSSL was given, and advanced users who accept that
// these calls may change or go away with any release. Nothing else in
// core's public headers names an OpenSSL type. Reconfiguring what these
// return breaks the thread-safety promises of SecureContext and TlsSession.
#ifndef TLSENGINE_CORE_OPENSSL_INTEROP_H_
#define TLSENGINE_CORE_OPENSSL_INTEROP_H_

#include <openssl/ssl.h>

#include <memory>

#include "absl/status/statusor.h"
#include "core/secure_context.h"
#include "core/tls_session.h"

namespace tlsengine {

// The SSL_CTX connections on `context` are made from, borrowed; valid while
// `context` lives. Thread-safe (never changes).
SSL_CTX* NativeHandle(const SecureContext& context);

// The SSL_CTX for connections with ConnectionOptions::keylog, borrowed,
// valid while `context` lives: the same configuration and ticket keys as
// NativeHandle plus OpenSSL's key-log callback, which costs every handshake
// on its context even when nobody listens; so it is a twin built at the
// first call (thread-safe; never changed after), and NativeHandle's has
// none. kInvalidArgument / kInternal as SecureContext::Create().
absl::StatusOr<SSL_CTX*> KeylogNativeHandle(const SecureContext& context);

// The OpenSSL session inside `session`, borrowed; valid while it lives.
// Changing it, or giving it to an SSL, breaks the sharing promise (an SSL
// changes its session: give it an SSL_SESSION_dup, which shares the peer
// certificate by reference and decodes nothing).
SSL_SESSION* NativeHandle(const TlsSession& session);

// A TlsSession holding a copy of `session` (borrowed); nullptr when it is
// null or cannot be copied. Thread-safe.
std::shared_ptr<const TlsSession> TlsSessionFromCopyOf(SSL_SESSION* session);

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_OPENSSL_INTEROP_H_

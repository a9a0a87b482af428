// What a SecureContext hands the engine: the data its OpenSSL callbacks
// read, the installation of those callbacks, and the BIO method connections
// read and write through. Internal to core; included by secure_context.cc
// (which builds contexts) and by the engine (which runs on them), so neither
// reaches into the other.
#ifndef TLSENGINE_CORE_INTERNAL_CONTEXT_DATA_H_
#define TLSENGINE_CORE_INTERNAL_CONTEXT_DATA_H_

#include <cstdint>
#include <memory>
#include <string>

#include "core/internal/openssl_util.h"
#include "core/secure_context.h"

namespace tlsengine {
namespace internal {

// What a context's callbacks read that belongs to the context (immutable).
struct ContextData {
  std::string npn_wire;                     // NPN list, wire form
  std::shared_ptr<TicketKeys> ticket_keys;  // read at each ticket; never null
  int64_t session_timeout = 300;            // seconds, for the sessions this context issues
  bool no_tickets = false;                  // SSL_OP_NO_TICKET in secure_options
};

// Makes the BIO method engines use over their own buffers (one per
// SecureContext, never per connection: BIO types are a process-wide count).
// In bio.cc.
OpenSslPtr<BIO_METHOD> NewEngineBioMethod();
// The BIO method of `context`, borrowed; valid while it lives.
const BIO_METHOD* EngineBioMethod(const SecureContext& context);
// The data of the context `ctx` was built as (SSL_CTX app data); null for
// an SSL_CTX that no SecureContext made.
inline const ContextData* DataOf(const SSL_CTX* ctx) {
  return static_cast<const ContextData*>(SSL_CTX_get_app_data(ctx));
}

// Installs the context-wide OpenSSL callbacks (SNI and session lookup at
// ClientHello, OCSP, ALPN, NPN when `data` has a list, new sessions, ticket
// keys, session lifetimes; not the key log). Each finds its connection
// through SSL_get_app_data and does nothing for other SSLs. `data` must
// outlive ctx. In context_callbacks.cc.
void InstallEngineCallbacks(SSL_CTX* ctx, const ContextData* data);
// The key-log callback (raising kKeylog), for the twin contexts that
// connections with ConnectionOptions::keylog use (KeylogNativeHandle).
void InstallKeylogCallback(SSL_CTX* ctx);

}  // namespace internal
}  // namespace tlsengine

#endif  // TLSENGINE_CORE_INTERNAL_CONTEXT_DATA_H_

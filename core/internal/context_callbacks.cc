// The context-wide OpenSSL callbacks, installed on every SecureContext;
// each is a static member of TlsConnection::Impl in the file of its topic.
#include "core/internal/connection_impl.h"

namespace tlsengine {
namespace internal {

using Impl = TlsConnection::Impl;

void InstallKeylogCallback(SSL_CTX* ctx) { SSL_CTX_set_keylog_callback(ctx, &Impl::KeylogCallback); }

void InstallEngineCallbacks(SSL_CTX* ctx, const ContextData* data) {
  SSL_CTX_set_app_data(ctx, const_cast<ContextData*>(data));  // borrowed; outlives ctx
  // Like Node: no internal session cache; tickets resume statelessly and
  // the application may keep session ids (newSession/resumeSession).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_BOTH | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_sess_set_new_cb(ctx, &Impl::NewSessionCallback);
  SSL_CTX_sess_set_get_cb(ctx, &Impl::GetSessionCallback);
  SSL_CTX_set_client_hello_cb(ctx, &Impl::ClientHelloCallback, nullptr);
  SSL_CTX_set_cert_cb(ctx, &Impl::CertCallback, nullptr);
  SSL_CTX_set_tlsext_status_cb(ctx, &Impl::StatusCallback);
  SSL_CTX_set_alpn_select_cb(ctx, &Impl::AlpnSelectCallback, nullptr);
  // A server advertises a connection's own list even when its context has
  // none (nothing is sent when neither has one); a client sends the NPN
  // extension whenever a select callback is set, so only from a context
  // with a list.
  SSL_CTX_set_next_protos_advertised_cb(ctx, &Impl::NpnAdvertiseCallback, nullptr);
  if (!data->npn_wire.empty()) SSL_CTX_set_next_proto_select_cb(ctx, &Impl::NpnSelectCallback, nullptr);
  // On every context: OpenSSL calls those of the SSL's first context, which
  // find the serving one.
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &Impl::TicketKeyCallback);
  SSL_CTX_set_session_ticket_cb(ctx, &Impl::GenerateTicketCallback, &Impl::DecryptTicketCallback, nullptr);
}

}  // namespace internal
}  // namespace tlsengine

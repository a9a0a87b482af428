// OCSP: a server suspends for the application's response (Node's
// OCSPRequest) and staples it; a client reports what was stapled.
#include <openssl/ocsp.h>

#include "core/internal/connection_impl.h"

namespace tlsengine {

using Impl = TlsConnection::Impl;
using internal::OpenSslPtr;

namespace {

// The issuer of `cert`: from the chain we send, else from the trust store.
OpenSslPtr<X509> FindIssuer(SSL* ssl, X509* cert) {
  STACK_OF(X509)* chain = nullptr;  // borrowed
  SSL_get0_chain_certs(ssl, &chain);
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    X509* candidate = sk_X509_value(chain, i);
    if (X509_check_issued(candidate, cert) == X509_V_OK) {
      X509_up_ref(candidate);
      return OpenSslPtr<X509>(candidate);
    }
  }
  X509_STORE* store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));  // borrowed
  OpenSslPtr<X509_STORE_CTX> store_ctx(X509_STORE_CTX_new());
  X509* issuer = nullptr;
  if (store_ctx && X509_STORE_CTX_init(store_ctx.get(), store, cert, nullptr) == 1) {
    X509_STORE_CTX_get1_issuer(&issuer, store_ctx.get(), cert);  // hands us a reference
  }
  ERR_clear_error();
  return OpenSslPtr<X509>(issuer);
}

}  // namespace

int Impl::CertCallback(SSL* ssl, void* /*arg*/) {
  Impl* self = From(ssl);
  return self != nullptr ? self->OnCertificateNeeded(ssl) : 1;
}

// Server: suspends the handshake while the application fetches an OCSP
// response (Node's OCSPRequest), before the certificate goes out.
int Impl::OnCertificateNeeded(SSL* ssl) {
  if (!SSL_is_server(ssl) || !options_.ocsp_request) return 1;
  // The application's OCSP fetch failed: OpenSSL sends internal_error.
  if (ocsp_answered_) return pending_failure_.ok() ? 1 : 0;
  if (SSL_get_tlsext_status_type(ssl) != TLSEXT_STATUSTYPE_ocsp) return 1;
  if (waiting_ != Waiting::kOcsp) {
    X509* cert = SSL_get_certificate(ssl);  // borrowed
    Event event = internal::MakeEvent(EventType::kOcspRequest);
    event.certificate = internal::ToDer(i2d_X509, cert);
    if (cert != nullptr) event.issuer = internal::ToDer(i2d_X509, FindIssuer(ssl, cert).get());
    Push(std::move(event));
    waiting_ = Waiting::kOcsp;
  }
  return -1;
}

int Impl::StatusCallback(SSL* ssl, void* /*arg*/) {
  Impl* self = From(ssl);
  if (self == nullptr) return SSL_is_server(ssl) ? SSL_TLSEXT_ERR_NOACK : 1;
  return self->OnStatus(ssl);
}

// Server: staples the prepared response. Client: reports what was stapled.
int Impl::OnStatus(SSL* ssl) {
  if (SSL_is_server(ssl)) {
    if (ocsp_answer_.empty()) return SSL_TLSEXT_ERR_NOACK;
    auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(ocsp_answer_.data(), ocsp_answer_.size()));
    if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
    // The SSL takes ownership of `copy`.
    SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(ocsp_answer_.size()));
    return SSL_TLSEXT_ERR_OK;
  }
  const unsigned char* response = nullptr;
  long len = SSL_get_tlsext_status_ocsp_resp(ssl, &response);  // borrowed
  Event event = internal::MakeEvent(EventType::kOcspResponse);
  if (len > 0 && response != nullptr) event.ocsp_response.assign(reinterpret_cast<const char*>(response), len);
  Push(std::move(event));
  return 1;
}

}  // namespace tlsengine

// Application protocols: ALPN (RFC 7301) and NPN, as Node negotiates them.
#include <cstring>
#include <string>

#include "core/internal/connection_impl.h"

namespace tlsengine {

using internal::ToString;

using Impl = TlsConnection::Impl;

namespace {

// The connection's NPN list (ConnectionOptions::npn_protocols), else the
// context's; empty when neither has one.
const std::string* NpnWire(SSL* ssl) {
  const Impl* self = Impl::From(ssl);
  if (self != nullptr && !self->npn_wire().empty()) return &self->npn_wire();
  const internal::ContextData* data = internal::DataOf(SSL_get_SSL_CTX(ssl));
  if (data == nullptr || data->npn_wire.empty()) return nullptr;
  return &data->npn_wire;
}

}  // namespace

int Impl::AlpnSelectCallback(SSL* ssl, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                             unsigned int in_len, void* /*arg*/) {
  const Impl* self = From(ssl);
  return self != nullptr ? self->SelectAlpn(out, out_len, in, in_len) : SSL_TLSEXT_ERR_NOACK;
}

// Server ALPN (RFC 7301 §3.2): our first protocol the client also offers;
// none in common is the fatal no_application_protocol alert.
int Impl::SelectAlpn(const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                     unsigned int in_len) const {
  if (alpn_wire_.empty()) return SSL_TLSEXT_ERR_NOACK;
  const std::string& ours = alpn_wire_;
  for (size_t i = 0; i < ours.size(); i += 1 + static_cast<unsigned char>(ours[i])) {
    size_t len = static_cast<unsigned char>(ours[i]);
    for (unsigned int j = 0; j < in_len; j += 1 + in[j]) {
      if (in[j] == len && j + 1 + len <= in_len && std::memcmp(in + j + 1, ours.data() + i + 1, len) == 0) {
        *out = in + j + 1;
        *out_len = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int Impl::NpnAdvertiseCallback(SSL* ssl, const unsigned char** out, unsigned int* out_len, void* /*arg*/) {
  const std::string* wire = NpnWire(ssl);
  if (wire == nullptr) return SSL_TLSEXT_ERR_NOACK;
  *out = reinterpret_cast<const unsigned char*>(wire->data());
  *out_len = static_cast<unsigned int>(wire->size());
  return SSL_TLSEXT_ERR_OK;
}

// Client NPN: as in io.js, with no overlap we send our first protocol and
// report none.
int Impl::NpnSelectCallback(SSL* ssl, unsigned char** out, unsigned char* out_len, const unsigned char* in,
                            unsigned int in_len, void* /*arg*/) {
  const std::string* wire = NpnWire(ssl);
  if (wire == nullptr) return SSL_TLSEXT_ERR_NOACK;
  int status = SSL_select_next_proto(out, out_len, in, in_len, reinterpret_cast<const unsigned char*>(wire->data()),
                                     static_cast<unsigned int>(wire->size()));
  if (Impl* self = From(ssl)) {
    self->RecordNpnSelected(status == OPENSSL_NPN_NEGOTIATED ? ToString(*out, *out_len) : "");
  }
  return SSL_TLSEXT_ERR_OK;
}

std::string TlsConnection::alpn_protocol() const {
  if (!impl_->ssl_) return "";
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(impl_->ssl_.get(), &p, &len);
  return ToString(p, len);
}

std::string TlsConnection::npn_protocol() const {
  if (!impl_->options_.is_server) return impl_->npn_selected_;
  if (!impl_->ssl_) return "";
  const unsigned char* p = nullptr;
  unsigned int len = 0;
  SSL_get0_next_proto_negotiated(impl_->ssl_.get(), &p, &len);
  return ToString(p, len);
}

}  // namespace tlsengine

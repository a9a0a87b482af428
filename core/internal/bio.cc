// The BIO engines read and write through: OpenSSL's transport is the
// engine's own buffers (input_ from the application, output_ to it).
#include <algorithm>
#include <cstring>

#include "core/internal/connection_impl.h"

namespace tlsengine {

using Impl = TlsConnection::Impl;

int Impl::BioRead(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  int n = static_cast<Impl*>(BIO_get_data(bio))->ReadInput(out, len);
  if (n < 0) BIO_set_retry_read(bio);
  return n;
}

int Impl::BioWrite(BIO* bio, const char* in, int len) {
  BIO_clear_retry_flags(bio);
  static_cast<Impl*>(BIO_get_data(bio))->WriteOutput(in, len);
  return len;
}

long Impl::BioCtrl(BIO* bio, int cmd, long /*num*/, void* /*ptr*/) {
  return static_cast<const Impl*>(BIO_get_data(bio))->BioControl(cmd);
}

// What OpenSSL may read: what input_ holds while MayRead allows; 0 at the
// transport's end; -1 (retry) otherwise.
int Impl::ReadInput(char* out, int len) {
  if (input_.empty() || !MayRead()) {
    if (input_.empty() && transport_eof_ && !read_stalled_) return 0;
    return -1;
  }
  size_t n = std::min(input_.size(), static_cast<size_t>(len));
  std::memcpy(out, input_.data(), n);
  input_.Consume(n);
  return static_cast<int>(n);
}

// Always accepted: what may enter is bounded by EncryptPending (plaintext)
// and by the handshake itself (a flight).
void Impl::WriteOutput(const char* in, int len) {
  output_.Append(reinterpret_cast<const uint8_t*>(in), static_cast<size_t>(len));
}

long Impl::BioControl(int cmd) const {
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF: return transport_eof_ && input_.empty();
    case BIO_CTRL_PENDING: return static_cast<long>(input_.size());
    case BIO_CTRL_WPENDING: return static_cast<long>(output_.size());
    default: return 0;
  }
}

namespace internal {

OpenSslPtr<BIO_METHOD> NewEngineBioMethod() {
  // A fixed type: BIO_get_new_index() is a process-wide counter that runs out.
  OpenSslPtr<BIO_METHOD> method(BIO_meth_new(0x6e | BIO_TYPE_SOURCE_SINK, "tlsengine"));
  if (method) {
    BIO_meth_set_read(method.get(), &Impl::BioRead);
    BIO_meth_set_write(method.get(), &Impl::BioWrite);
    BIO_meth_set_ctrl(method.get(), &Impl::BioCtrl);
  }
  return method;
}

}  // namespace internal
}  // namespace tlsengine

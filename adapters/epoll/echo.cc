#include "adapters/epoll/echo.h"

namespace tlsengine {
namespace epoll {

void EchoWithBackpressure(TlsSocket& socket) {
  TlsSocket* s = &socket;
  s->handlers().on_data = [s](absl::string_view data) {
    if (!s->Write(data)) s->Pause();
  };
  s->handlers().on_drain = [s] { s->Resume(); };
}

}  // namespace epoll
}  // namespace tlsengine

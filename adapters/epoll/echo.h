// Echo with backpressure over a TlsSocket, as Node's socket.pipe(socket):
// what the socket reads it writes back, and while those writes wait (Write
// returned false: the peer reads slower than it sends) it stops reading,
// until 'drain'. So a peer that does not read holds itself back instead of
// growing our write queue.
//
//   handlers.on_secure_connection = [](std::shared_ptr<epoll::TlsSocket> s) {
//     epoll::EchoWithBackpressure(*s);
//   };
#ifndef TLSENGINE_ADAPTERS_EPOLL_ECHO_H_
#define TLSENGINE_ADAPTERS_EPOLL_ECHO_H_

#include "adapters/epoll/socket.h"

namespace tlsengine {
namespace epoll {

// Sets `socket`'s on_data and on_drain (replacing what they were) to echo.
// Loop thread. The handlers hold a plain pointer to the socket: a socket's
// handlers run only while it lives. socket.paused() says whether it is
// waiting for its peer to catch up.
void EchoWithBackpressure(TlsSocket& socket);

}  // namespace epoll
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_EPOLL_ECHO_H_

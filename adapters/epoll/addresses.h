// Host names and numeric addresses to sockaddrs, shared by TlsSocket's
// connect and Server's listen. Private to adapters/epoll.
#ifndef TLSENGINE_ADAPTERS_EPOLL_ADDRESSES_H_
#define TLSENGINE_ADAPTERS_EPOLL_ADDRESSES_H_

#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tlsengine {
namespace epoll {
namespace internal {

// A numeric IPv4 or IPv6 address (and port) as a sockaddr; false when
// `host` is not one.
bool ParseNumeric(const std::string& host, int port, sockaddr_storage* ss, socklen_t* len);

// getaddrinfo's answer for `host` as numeric strings, in its order, without
// duplicates; `family` 4 or 6 restricts it, 0 takes both. Blocks while the
// resolver works: call it off the loop thread (or where blocking is fine).
// Errors: kUnavailable with Node's codes, ENOTFOUND (no such name, or no
// address) or EAI_AGAIN (the resolver failed for now).
absl::StatusOr<std::vector<std::string>> Resolve(const std::string& host, int family);

}  // namespace internal
}  // namespace epoll
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_EPOLL_ADDRESSES_H_

// The one getaddrinfo wrapper of the adapters: a host name or a numeric
// address to the socket addresses to try, in the resolver's order
// (RFC 6724), with Node's error codes.
//
//   absl::StatusOr<std::vector<fdio::Address>> found = fdio::Resolve("localhost", 443);
//   for (const fdio::Address& a : *found) connect(s, a.addr(), a.len);
#ifndef TLSENGINE_ADAPTERS_FD_RESOLVE_H_
#define TLSENGINE_ADAPTERS_FD_RESOLVE_H_

#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tlsengine {
namespace fdio {

// One address getaddrinfo gave, with its port.
struct Address {
  sockaddr_storage storage = {};
  socklen_t len = 0;
  std::string text;  // the numeric host: "127.0.0.1", "::1"
  const struct sockaddr* addr() const { return reinterpret_cast<const struct sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
};

struct ResolveOptions {
  // 4 or 6 restricts the answer to that family; 0 takes both.
  int family = 0;
  // For listening: "" then means every local address (AI_PASSIVE).
  bool passive = false;
  // Only families this machine has an address of (AI_ADDRCONFIG).
  bool addrconfig = false;
};

// Resolves `host` (a name, an IPv4 or an IPv6 literal) for stream sockets to
// `port`, without duplicates. Blocks while the resolver works (literals
// and /etc/hosts names do not wait): call it where blocking is fine, or off
// an event loop's thread. Thread-safe. Errors: kUnavailable with Node's
// codes, ENOTFOUND (no such name, or no address: "getaddrinfo ENOTFOUND
// host...") or EAI_AGAIN (the resolver failed for now).
absl::StatusOr<std::vector<Address>> Resolve(const std::string& host, int port,
                                             ResolveOptions options = ResolveOptions());

}  // namespace fdio
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_FD_RESOLVE_H_

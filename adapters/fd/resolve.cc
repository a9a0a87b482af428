#include "adapters/fd/resolve.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "core/errors.h"

namespace tlsengine {
namespace fdio {
namespace {

struct AddrInfoDeleter {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};

absl::Status NotFound(absl::string_view code, const std::string& host, absl::string_view detail) {
  // Node: "getaddrinfo ENOTFOUND host" (EAI_AGAIN stays EAI_AGAIN).
  return MakeError(absl::StatusCode::kUnavailable, code,
                   absl::StrCat("getaddrinfo ", code, " ", host, detail.empty() ? "" : ": ", detail));
}

}  // namespace

absl::StatusOr<std::vector<Address>> Resolve(const std::string& host, int port, ResolveOptions options) {
  addrinfo hints = {};
  hints.ai_family = options.family == 4 ? AF_INET : options.family == 6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (options.passive ? AI_PASSIVE : 0) | (options.addrconfig ? AI_ADDRCONFIG : 0);
  const std::string service = std::to_string(port);
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.empty() && options.passive ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) return NotFound(rc == EAI_AGAIN ? "EAI_AGAIN" : "ENOTFOUND", host, gai_strerror(rc));
  std::unique_ptr<addrinfo, AddrInfoDeleter> list(res);
  std::vector<Address> out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    Address a;
    memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
    a.len = ai->ai_addrlen;
    char text[INET6_ADDRSTRLEN] = "";
    const void* in = ai->ai_family == AF_INET6
                         ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr)
                         : static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr);
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        inet_ntop(ai->ai_family, in, text, sizeof(text)) == nullptr) {
      continue;
    }
    a.text = text;
    bool seen = false;
    for (const Address& b : out) seen = seen || (b.text == a.text && b.family() == a.family());
    if (!seen) out.push_back(std::move(a));
  }
  if (out.empty()) return NotFound("ENOTFOUND", host, "");
  return out;
}

}  // namespace fdio
}  // namespace tlsengine

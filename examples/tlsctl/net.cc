#include "examples/tlsctl/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/errors.h"

namespace tlsengine {
namespace tlsctl {
namespace {

struct AddrInfo {
  addrinfo* list = nullptr;
  ~AddrInfo() {
    if (list != nullptr) freeaddrinfo(list);
  }
};

absl::Status Resolve(const std::string& host, int port, bool passive, AddrInfo* out) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  std::string service = absl::StrCat(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &out->list);
  if (rc != 0 || out->list == nullptr) {
    return MakeError(absl::StatusCode::kUnavailable, "ENOTFOUND",
                     absl::StrCat("getaddrinfo ENOTFOUND ", host, ": ", gai_strerror(rc)));
  }
  return absl::OkStatus();
}

PeerAddress FromSockaddr(const sockaddr_storage& ss, socklen_t len) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    return {buf, ntohs(a->sin_port), "IPv4"};
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    return {buf, ntohs(a->sin6_port), "IPv6"};
  }
  if (ss.ss_family == AF_UNIX) {
    auto* a = reinterpret_cast<const sockaddr_un*>(&ss);
    size_t n = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    return {std::string(a->sun_path, strnlen(a->sun_path, n)), 0, "unix"};
  }
  return PeerAddress();
}

std::string Where(const addrinfo* a) {
  sockaddr_storage ss{};
  std::memcpy(&ss, a->ai_addr, std::min<size_t>(a->ai_addrlen, sizeof ss));
  PeerAddress p = FromSockaddr(ss, a->ai_addrlen);
  return absl::StrCat(p.address, ":", p.port);
}

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("--unix: '", path, "' is empty or longer than ",
                                                   sizeof a.sun_path - 1, " bytes"));
  }
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

}  // namespace

std::string ErrnoName(int err) {
  switch (err) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case ECONNRESET: return "ECONNRESET";
    case ECONNABORTED: return "ECONNABORTED";
    case EPIPE: return "EPIPE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOTSOCK: return "ENOTSOCK";
    default: return absl::StrCat("E", err);
  }
}

absl::Status ErrnoError(absl::string_view syscall, int err, absl::string_view where) {
  return MakeError(absl::StatusCode::kUnavailable, ErrnoName(err),
                   absl::StrCat(syscall, " ", ErrnoName(err), " ", where, " (", std::strerror(err), ")"));
}

absl::StatusOr<int> ListenTcp(const std::string& host, int port, bool reuse_port) {
  AddrInfo ai;
  absl::Status s = Resolve(host, port, true, &ai);
  if (!s.ok()) return s;
  const addrinfo* a = ai.list;
  std::string where = Where(a);
  int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno, where);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 511) != 0) {
    int err = errno;
    close(fd);
    return ErrnoError("listen", err, where);
  }
  return fd;
}

absl::StatusOr<int> ListenUnix(const std::string& path) {
  absl::StatusOr<sockaddr_un> a = UnixAddress(path);
  if (!a.ok()) return a.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno, path);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&*a), sizeof *a) != 0 || listen(fd, 511) != 0) {
    int err = errno;
    close(fd);
    return ErrnoError("listen", err, path);
  }
  return fd;
}

PeerAddress LocalAddressOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return PeerAddress();
  return FromSockaddr(ss, len);
}

PeerAddress PeerAddressOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return PeerAddress();
  return FromSockaddr(ss, len);
}

absl::StatusOr<int> StartConnectTcp(const std::string& host, int port, std::string* where) {
  AddrInfo ai;
  absl::Status s = Resolve(host, port, false, &ai);
  if (!s.ok()) return s;
  const addrinfo* a = ai.list;
  *where = Where(a);
  int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno, *where);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    return ErrnoError("connect", err, *where);
  }
  return fd;
}

absl::StatusOr<int> StartConnectUnix(const std::string& path) {
  absl::StatusOr<sockaddr_un> a = UnixAddress(path);
  if (!a.ok()) return a.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket", errno, path);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&*a), sizeof *a) != 0 && errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    return ErrnoError("connect", err, path);
  }
  return fd;
}

absl::Status FinishConnect(int fd, absl::string_view where) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return ErrnoError("connect", err, where);
  return absl::OkStatus();
}

}  // namespace tlsctl
}  // namespace tlsengine

#include "adapters/grpc/daemon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "adapters/epoll/bound_name.h"
#include "adapters/fd/sys_status.h"
#include "adapters/grpc/control.grpc.pb.h"
#include "core/errors.h"

namespace tlsengine {
namespace control {
namespace {

absl::Status Invalid(absl::string_view what) {
  return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, what);
}

// absl codes and gRPC codes share their numbers. The Node-style code goes
// in the message and in the trailing metadata "tlsengine-code".
grpc::Status ToGrpc(grpc::ServerContext* ctx, const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  std::string code = NodeCode(s);
  std::string message(s.message());
  if (!code.empty()) {
    absl::StrAppend(&message, " [", code, "]");
    ctx->AddTrailingMetadata("tlsengine-code", code);
  }
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), message);
}

template <typename T>
grpc::Status Reply(grpc::ServerContext* ctx, absl::StatusOr<T> got, T* out) {
  if (!got.ok()) return ToGrpc(ctx, got.status());
  *out = *std::move(got);
  return grpc::Status::OK;
}

// Whether a and b are equal, in time that does not depend on where they
// differ.
bool SameSecret(absl::string_view a, absl::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

class Service final : public v1::TlsControl::Service {
 public:
  // `token` empty: every caller that reaches the address may call.
  Service(Controller* c, std::string token) : c_(c), token_(std::move(token)) {}

#define TLSCTL_UNARY(Method, Req, Resp, Part)                                                  \
  grpc::Status Method(grpc::ServerContext* ctx, const v1::Req* req, v1::Resp* resp) override { \
    if (grpc::Status a = Authorized(ctx); !a.ok()) return a;                                   \
    return Reply(ctx, c_->Method(*req), resp);                                                 \
  }
  TLSCTL_UNARY_METHODS(TLSCTL_UNARY)
#undef TLSCTL_UNARY

  grpc::Status Read(grpc::ServerContext* ctx, const v1::ReadRequest* req,
                    grpc::ServerWriter<v1::ReadChunk>* writer) override {
    if (grpc::Status a = Authorized(ctx); !a.ok()) return a;
    return ToGrpc(ctx, c_->Read(
                           *req, [&](const v1::ReadChunk& chunk) { return writer->Write(chunk); },
                           [&] { return ctx->IsCancelled(); }));
  }
  grpc::Status WatchEvents(grpc::ServerContext* ctx, const v1::WatchEventsRequest* req,
                           grpc::ServerWriter<v1::ControlEvent>* writer) override {
    if (grpc::Status a = Authorized(ctx); !a.ok()) return a;
    // Headers go out once the watcher is registered, so a client that has
    // seen them (ClientReader::WaitForInitialMetadata) misses no event.
    return ToGrpc(ctx, c_->WatchEvents(
                           *req, [&](const v1::ControlEvent& ev) { return writer->Write(ev); },
                           [&] { return ctx->IsCancelled(); }, [&] { writer->SendInitialMetadata(); }));
  }

 private:
  // The token, when there is one, as "authorization: Bearer TOKEN".
  grpc::Status Authorized(grpc::ServerContext* ctx) const {
    if (token_.empty()) return grpc::Status::OK;
    auto it = ctx->client_metadata().find(kControlTokenMetadata);
    absl::string_view got = it == ctx->client_metadata().end() ? "" : absl::string_view(it->second.data(), it->second.size());
    if (absl::ConsumePrefix(&got, "Bearer ") && SameSecret(got, token_)) return grpc::Status::OK;
    return ToGrpc(ctx, MakeError(absl::StatusCode::kUnauthenticated, "ERR_TLS_CONTROL_TOKEN",
                                 "no or wrong control token (tlsctl call --control-token-file FILE)"));
  }
  Controller* const c_;
  const std::string token_;
};

absl::StatusOr<std::string> ReadPem(absl::string_view option, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Invalid(absl::StrCat(option, ": cannot read ", path, ": ", std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().empty()) return Invalid(absl::StrCat(option, ": ", path, " is empty"));
  return ss.str();
}

// "unix:/p", "unix:p" or "/p" -> the path; "" for anything else.
std::string UnixPath(const std::string& address) {
  if (absl::StartsWith(address, "unix:")) return address.substr(5);
  if (absl::StartsWith(address, "/")) return address;
  return "";
}

// A live socket at `path` answers connect(); a stale one is refused.
bool SocketIsLive(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  bool live = connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  close(fd);
  return live;
}

absl::Status PrepareUnixPath(const std::string& path) {
  if (path.empty()) return Invalid("--control: empty unix socket path");
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Invalid(absl::StrCat("--control: unix socket path longer than ", sizeof(sockaddr_un{}.sun_path) - 1,
                                " bytes"));
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return MakeError(absl::StatusCode::kAlreadyExists, "EADDRINUSE",
                       absl::StrCat("--control: ", path, " exists and is not a socket"));
    }
    if (SocketIsLive(path)) {
      return MakeError(absl::StatusCode::kAlreadyExists, "EADDRINUSE",
                       absl::StrCat("--control: a server already listens on ", path));
    }
    unlink(path.c_str());  // stale: its server is gone
  }
  return absl::OkStatus();
}

absl::Status Refused(absl::string_view what) {
  return MakeError(absl::StatusCode::kPermissionDenied, "EACCES", what);
}

// The default socket's directory: a directory (not a symlink) of our own
// euid that no one else can enter. `ours` (tlsctl-$UID, which we make):
// created 0700 when missing, and then it must be exactly 0700;
// $XDG_RUNTIME_DIR: no group or other bits. Checked with lstat after
// mkdir, as tmux does, so a directory another user made first is refused.
absl::Status CheckPrivateDir(const std::string& dir, bool ours) {
  if (ours) {
    if (mkdir(dir.c_str(), 0700) == 0) {
      chmod(dir.c_str(), 0700);  // the umask may have taken bits away
    } else if (errno != EEXIST) {
      return fdio::SysError(absl::StrCat("--control: mkdir ", dir), errno, absl::StatusCode::kUnavailable);
    }
  }
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) {
    return fdio::SysError(absl::StrCat("--control: lstat ", dir), errno, absl::StatusCode::kUnavailable);
  }
  std::string why;
  if (S_ISLNK(st.st_mode)) {
    why = "is a symlink";
  } else if (!S_ISDIR(st.st_mode)) {
    why = "is not a directory";
  } else if (st.st_uid != geteuid()) {
    why = absl::StrCat("belongs to uid ", st.st_uid, ", not to you (uid ", geteuid(), ")");
  } else if (ours ? (st.st_mode & 07777) != 0700 : (st.st_mode & 077) != 0) {
    why = absl::StrFormat("has mode %04o, %s", st.st_mode & 07777, ours ? "not 0700" : "open to other users");
  }
  if (why.empty()) return absl::OkStatus();
  return Refused(absl::StrCat("--control: ", dir, " ", why,
                              "; another user could take over the control socket there (remove it, or give "
                              "--control unix:PATH)"));
}

// TCP without TLS: 32 random bytes, in hex, written to `path`, a new file
// of mode 0600 (O_EXCL, O_NOFOLLOW) in a directory of our own that no one
// else can write to. A stale token file of ours is replaced.
absl::StatusOr<std::string> WriteToken(const std::string& path, epoll::BoundName* made) {
  if (path.empty() || path.size() > 4096) return Invalid("--control-token-file: give a file name");
  std::string dir = epoll::BoundName::DirOf(path);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Invalid(absl::StrCat("--control-token-file: ", dir, " is not a directory"));
  }
  if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
    return Refused(absl::StrCat("--control-token-file: ", dir,
                                " must be your own directory that no one else can write to"));
  }
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
      return Refused(absl::StrCat("--control-token-file: ", path, " exists and is not a file of yours"));
    }
    unlink(path.c_str());  // a stale token of ours
  }
  unsigned char raw[32];
  if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
    return MakeError(absl::StatusCode::kInternal, "", "--control-token-file: no random bytes");
  }
  std::string token = absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(raw), sizeof raw));
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fdio::SysError(absl::StrCat("--control-token-file: cannot create ", path), errno,
                          absl::StatusCode::kPermissionDenied);
  }
  std::string line = token + "\n";
  bool written = fchmod(fd, 0600) == 0 && write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  close(fd);
  if (!written) {
    unlink(path.c_str());
    return MakeError(absl::StatusCode::kInternal, "", absl::StrCat("--control-token-file: cannot write ", path));
  }
  *made = epoll::BoundName::Record(path, S_IFREG);
  return token;
}

std::string DefaultDir() {
  const char* tmp = getenv("TMPDIR");
  return absl::StrCat(tmp != nullptr && tmp[0] == '/' ? tmp : "/tmp", "/tlsctl-", geteuid());
}

}  // namespace

std::string DefaultControlAddress() {
  const char* runtime = getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && runtime[0] == '/') return absl::StrCat("unix:", runtime, "/tlsctl.sock");
  return absl::StrCat("unix:", DefaultDir(), "/control.sock");
}

absl::StatusOr<bool> IsLoopbackTcp(const std::string& address) {
  std::string host, port;
  if (absl::StartsWith(address, "[")) {
    size_t end = address.find(']');
    if (end == std::string::npos || end + 1 >= address.size() || address[end + 1] != ':') {
      return Invalid(absl::StrCat("--control: bad address \"", address, "\" (want [v6]:port)"));
    }
    host = address.substr(1, end - 1);
    port = address.substr(end + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
      return Invalid(absl::StrCat("--control: bad address \"", address, "\" (want unix:/path or host:port)"));
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  int p = 0;
  if (!absl::SimpleAtoi(port, &p) || p < 0 || p > 65535) {
    return Invalid(absl::StrCat("--control: bad port in \"", address, "\""));
  }
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6) != 0;
  if (host.empty()) return false;  // ":port" means every address
  return Invalid(absl::StrCat("--control: host \"", host, "\" is not a numeric address or localhost"));
}

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(const std::string& requested,
                                                                    DaemonOptions options) {
  std::string address = requested.empty() ? DefaultControlAddress() : requested;
  bool tls = !options.control_cert.empty() || !options.control_key.empty() || !options.control_ca.empty();
  if (tls && (options.control_cert.empty() || options.control_key.empty() || options.control_ca.empty())) {
    return Invalid("--control-cert, --control-key and --control-ca go together (TLS with client certificates)");
  }
  std::string path = UnixPath(address);
  if (absl::StartsWith(address, "unix-abstract:")) {
    return Invalid("--control: abstract unix sockets have no file mode; give a path");
  }
  if (path.empty()) {
    absl::StatusOr<bool> loopback = IsLoopbackTcp(address);
    if (!loopback.ok()) return loopback.status();
    if (!*loopback && !tls) {
      return Invalid(absl::StrCat("--control: ", address,
                                  " is not a loopback address; the control service sees plaintext and holds keys, so "
                                  "it listens beyond loopback only with TLS and client certificates "
                                  "(--control-cert, --control-key, --control-ca)"));
    }
    if (!tls && absl::StartsWith(address, "localhost:")) {
      // A name may resolve, for the client, to an address not bound here
      // (::1 as well as 127.0.0.1), where another user could listen and
      // collect the token: the client sends it only to a numeric address.
      return Invalid(absl::StrCat("--control: ", address,
                                  ": without TLS give a numeric loopback address (127.0.0.1:PORT or [::1]:PORT), "
                                  "which no other user can also listen on"));
    }
    if (!tls && options.control_token_file.empty()) {
      return Invalid(absl::StrCat("--control: ", address,
                                  " is TCP, which every local user can reach (loopback too), and the service acts with "
                                  "your rights: give --control-token-file FILE (a token only you can read) or TLS "
                                  "with client certificates (--control-cert, --control-key, --control-ca)"));
    }
  } else {
    if (requested.empty()) {
      // The default directory is ours alone.
      std::string dir = path.substr(0, path.rfind('/'));
      const char* runtime = getenv("XDG_RUNTIME_DIR");
      bool ours = runtime == nullptr || dir != runtime;  // tlsctl-$EUID, not $XDG_RUNTIME_DIR
      if (absl::Status s = CheckPrivateDir(dir, ours); !s.ok()) return s;
    }
    if (absl::Status s = PrepareUnixPath(path); !s.ok()) return s;
  }

  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (tls) {
    absl::StatusOr<std::string> cert = ReadPem("--control-cert", options.control_cert);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem("--control-key", options.control_key);
    if (!key.ok()) return key.status();
    absl::StatusOr<std::string> ca = ReadPem("--control-ca", options.control_ca);
    if (!ca.ok()) return ca.status();
    grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    ssl.pem_root_certs = *ca;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    creds = grpc::SslServerCredentials(ssl);
  }

  absl::StatusOr<std::unique_ptr<Controller>> controller = Controller::Create(options.controller);
  if (!controller.ok()) return controller.status();
  std::unique_ptr<ControlServer> server(new ControlServer());
  server->controller_ = *std::move(controller);
  std::string token;
  if (!options.control_token_file.empty()) {
    absl::StatusOr<std::string> made = WriteToken(options.control_token_file, &server->token_file_);
    if (!made.ok()) {
      server->controller_->Shutdown();
      return made.status();
    }
    token = *std::move(made);
  }
  server->service_ = std::make_unique<Service>(server->controller_.get(), std::move(token));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(path.empty() ? address : absl::StrCat("unix:", path), creds, path.empty() ? &port : nullptr);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(options.max_request_bytes);
  // The socket file is created by bind() inside BuildAndStart: with this
  // umask it is born 0600, and chmod below makes sure of it.
  mode_t old_mask = path.empty() ? 0 : umask(0177);
  server->server_ = builder.BuildAndStart();
  if (!path.empty()) umask(old_mask);
  if (server->server_ == nullptr) {
    server->controller_->Shutdown();
    if (path.empty() && absl::StrContains(address, ":")) {
      return MakeError(absl::StatusCode::kAlreadyExists, "EADDRINUSE",
                       absl::StrCat("--control: cannot listen on ", address, " (in use?)"));
    }
    return MakeError(absl::StatusCode::kUnavailable, "", absl::StrCat("--control: cannot listen on ", address));
  }
  if (!path.empty()) {
    struct stat st {};
    if (chmod(path.c_str(), 0600) != 0 || stat(path.c_str(), &st) != 0 || (st.st_mode & 0777) != 0600) {
      server->Shutdown();
      return MakeError(absl::StatusCode::kInternal, "", absl::StrCat("--control: cannot make ", path, " mode 0600"));
    }
    server->unix_path_ = epoll::BoundName::Record(path);
    server->address_ = absl::StrCat("unix:", path);
  } else {
    std::string host = address.substr(0, address.rfind(':'));
    server->address_ = absl::StrCat(host, ":", port);
  }
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  return server;
}

ControlServer::~ControlServer() { Shutdown(); }

void ControlServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (controller_) controller_->Shutdown();
  if (server_) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
  }
  unix_path_.Remove();
  token_file_.Remove();
}

absl::Status RunControlService(const std::string& address, DaemonOptions options,
                               std::function<absl::Status(Controller&)> setup) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // threads started from here on inherit it
  const std::string options_token = options.control_token_file;
  absl::StatusOr<std::unique_ptr<ControlServer>> server = ControlServer::Start(address, std::move(options));
  if (!server.ok()) return server.status();
  if (setup) {
    if (absl::Status s = setup((*server)->controller()); !s.ok()) return s;
  }
  std::cerr << "control: listening on " << (*server)->address()
            << (options_token.empty() ? "" : absl::StrCat(" (token in ", options_token, ")")) << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  std::cerr << "control: signal " << sig << ", shutting down" << std::endl;
  (*server)->Shutdown();
  return absl::OkStatus();
}

}  // namespace control
}  // namespace tlsengine

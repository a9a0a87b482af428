// ocsp_server: staples an OCSP response, on the epoll adapter (Node's
// 'OCSPRequest' event). The response comes from a file that some other job
// (a cron running `openssl ocsp`, say) keeps fresh; the server reads it
// again whenever it changes, so clients get the newest without a restart.
// An empty file staples nothing.
//
//   server.on('OCSPRequest', (cert, issuer, cb) => cb(null, fs.readFileSync(file)));
//
//   ocsp_server PORT KEY CERT OCSP_RESPONSE_FILE [CONNECTIONS]
// Prints "listening on PORT" once ready (port 0 lets the kernel pick); with
// CONNECTIONS, exits after serving that many.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "adapters/epoll/loop.h"
#include "adapters/epoll/server.h"
#include "core/errors.h"

using namespace tlsengine;  // NOLINT: a short example

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The response file, read again only when its size or time changed.
class ReloadingFile {
 public:
  explicit ReloadingFile(std::string path) : path_(std::move(path)) {}
  const std::string& Get() {
    struct stat st {};
    if (stat(path_.c_str(), &st) != 0) return contents_;  // gone for a moment: keep the last one
    if (st.st_size != size_ || st.st_mtim.tv_sec != mtime_.tv_sec || st.st_mtim.tv_nsec != mtime_.tv_nsec) {
      contents_ = ReadFile(path_);
      size_ = st.st_size;
      mtime_ = st.st_mtim;
      std::fprintf(stderr, "ocsp_server: loaded %zu bytes from %s\n", contents_.size(), path_.c_str());
    }
    return contents_;
  }

 private:
  std::string path_, contents_;
  off_t size_ = -1;
  timespec mtime_{};
};

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "ocsp_server: %s [%s]\n", std::string(s.message()).c_str(), NodeCode(s).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) return std::fprintf(stderr, "usage: ocsp_server PORT KEY CERT OCSP_RESPONSE_FILE [CONNECTIONS]\n"), 2;
  epoll::ServerOptions options;
  options.context.key = {ReadFile(argv[2])};
  options.context.cert = {ReadFile(argv[3])};
  ReloadingFile response(argv[4]);
  const int limit = argc > 5 ? std::atoi(argv[5]) : -1;
  int accepted = 0;
  absl::StatusOr<std::unique_ptr<epoll::Loop>> loop = epoll::Loop::Create();
  if (!loop.ok()) return Fail(loop.status());
  std::unique_ptr<epoll::Server> server;  // declared after the loop: destroyed before it

  epoll::ServerHandlers handlers;
  // A client's status_request suspends the handshake until `done` answers
  // with the DER response ("" for none). `done` may also be called later,
  // from any thread: after asking the OCSP responder itself, say.
  handlers.on_ocsp_request = [&](epoll::TlsSocket& socket, const std::string& cert, const std::string& issuer,
                                 std::function<void(absl::StatusOr<std::string>)> done) {
    const std::string& der = response.Get();
    std::fprintf(stderr, "ocsp_server: stapling %zu bytes for %s:%d\n", der.size(), socket.remote_address().c_str(),
                 socket.remote_port());
    done(der);
  };
  handlers.on_secure_connection = [](std::shared_ptr<epoll::TlsSocket> socket) { socket->End("hello\n"); };
  handlers.on_client_error = [](const absl::Status& e, epoll::TlsSocket&) { Fail(e); };
  handlers.on_connection = [&](epoll::TlsSocket&) {
    if (++accepted != limit) return;
    absl::Status closing = server->Close([&] { (*loop)->Stop(); });  // exit once the last one closed
    if (!closing.ok()) Fail(closing);
  };
  absl::StatusOr<std::unique_ptr<epoll::Server>> created = epoll::Server::Create({loop->get()}, options, handlers);
  if (!created.ok()) return Fail(created.status());
  server = *std::move(created);
  if (absl::Status s = server->Listen(std::atoi(argv[1]), "127.0.0.1"); !s.ok()) return Fail(s);
  std::printf("listening on %d\n", server->address()->port);
  std::fflush(stdout);
  if (absl::Status s = (*loop)->Run(); !s.ok()) return Fail(s);
  return 0;
}

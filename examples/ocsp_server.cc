// ocsp_server: staples an OCSP response (Node's 'OCSPRequest' event). The
// response comes from a file that some other job (a cron calling `openssl
// ocsp`, say) keeps fresh; the server reloads it whenever it changes, so
// clients always get the newest without a restart. An empty file staples
// nothing. One connection at a time; each client is told what was stapled.
//
//   ocsp_server PORT KEY CERT OCSP_RESPONSE_FILE [CONNECTIONS]
// Prints "listening on PORT" once ready (port 0 lets the kernel pick).
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/blocking/tls_stream.h"
#include "core/errors.h"

using namespace tlsengine;  // NOLINT: a short example

namespace {

std::string Slurp(const std::string& path) {
  std::stringstream s;
  s << std::ifstream(path, std::ios::binary).rdbuf();
  return s.str();
}

// The response file, read again only when its size or time changed.
class ReloadingFile {
 public:
  explicit ReloadingFile(std::string path) : path_(std::move(path)) {}
  const std::string& Get() {
    struct stat st {};
    if (stat(path_.c_str(), &st) != 0) return contents_;  // keep the last good one
    if (st.st_size != size_ || st.st_mtim.tv_sec != mtime_.tv_sec || st.st_mtim.tv_nsec != mtime_.tv_nsec) {
      contents_ = Slurp(path_);
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) return std::fprintf(stderr, "usage: ocsp_server PORT KEY CERT OCSP_RESPONSE_FILE\n"), 2;
  SecureContextOptions ctx_opts;
  ctx_opts.key = {Slurp(argv[2])};
  ctx_opts.cert = {Slurp(argv[3])};
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(ctx_opts);
  if (!ctx.ok()) return std::fprintf(stderr, "%s\n", ctx.status().ToString().c_str()), 1;

  ReloadingFile response(argv[4]);
  blocking::StreamOptions opts;
  opts.secure_context = *ctx;
  opts.ocsp_request = true;  // a client's status_request suspends the handshake...
  opts.on_ocsp_request = [&](const std::string& cert, const std::string& issuer) -> absl::StatusOr<std::string> {
    return response.Get();  // ...until this answers (the DER response, "" for none)
  };
  auto listener = blocking::TlsListener::Listen("127.0.0.1", std::atoi(argv[1]), opts);
  if (!listener.ok()) return std::fprintf(stderr, "%s\n", listener.status().ToString().c_str()), 1;
  std::printf("listening on %d\n", (*listener)->port());
  std::fflush(stdout);

  const int limit = argc > 5 ? std::atoi(argv[5]) : -1;
  for (int served = 0; limit < 0 || served < limit; ++served) {
    auto stream = (*listener)->Accept(absl::InfiniteFuture());
    if (!stream.ok()) return std::fprintf(stderr, "%s\n", stream.status().ToString().c_str()), 1;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    absl::Status s = (*stream)->Handshake(deadline);
    if (s.ok()) s = (*stream)->Write(absl::StrCat("stapled ", response.Get().size(), " bytes\n"), deadline);
    if (s.ok()) s = (*stream)->Shutdown(deadline);
    if (!s.ok()) std::fprintf(stderr, "connection: %s [%s]\n", s.ToString().c_str(), NodeCode(s).c_str());
  }
  return 0;
}

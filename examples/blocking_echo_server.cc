// blocking_echo_server: a thread-per-connection TLS line echo server on the
// blocking adapter, for programs that would rather write straight-line code
// than callbacks. Every call has a deadline, so a silent client costs one
// thread for at most the handshake or idle timeout, never forever.
//
//   blocking_echo_server PORT KEY CERT [CONNECTIONS]
// Prints "listening on PORT" once ready (port 0 lets the kernel pick); with
// CONNECTIONS, exits once that many connections have been served.
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "adapters/blocking/tls_stream.h"
#include "core/errors.h"

using namespace tlsengine;  // NOLINT: a short example

namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "blocking_echo_server: %s [%s]\n", std::string(s.message()).c_str(), NodeCode(s).c_str());
  return 1;
}

// One connection, on its own thread: echo each line until the client's
// close_notify, then answer with ours. Close() (in the destructor) is the
// careful close, so a client we failed still reads the alert.
void Serve(std::unique_ptr<blocking::TlsStream> stream) {
  absl::Status status = stream->Handshake(absl::Now() + absl::Seconds(10));
  while (status.ok()) {
    absl::StatusOr<std::string> line = stream->ReadUntil("\n", 64 * 1024, absl::Now() + absl::Seconds(60));
    if (!line.ok()) {
      status = line.status();  // ETIMEDOUT (idle), ECONNRESET, a TLS error, a line too long
    } else if (line->empty()) {
      status = stream->Shutdown(absl::Now() + absl::Seconds(5));  // the client's close_notify: answer it
      if (status.ok()) return;
    } else {
      status = stream->Write(*line, absl::Now() + absl::Seconds(10));
    }
  }
  Fail(status);
}

// The connection threads: at most `max` at a time (a client accepted past it
// waits for a place, the next ones wait in the listen backlog), each joined
// once its connection has ended, so a server that runs for months keeps
// nothing of the connections it has served.
class ConnectionThreads {
 public:
  explicit ConnectionThreads(size_t max) : max_(max) {}
  ~ConnectionThreads() { JoinAll(); }

  // Waits for a free place, then runs `fn` on a thread of its own.
  template <typename Fn>
  void Start(Fn fn) {
    JoinFinished();
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [this] { return running_.size() < max_; });
    const uint64_t id = next_id_++;
    running_.emplace(id, std::thread([this, id, fn = std::move(fn)]() mutable {
      fn();
      std::lock_guard<std::mutex> done(mu_);  // hand our own handle over to be joined
      finished_.push_back(std::move(running_[id]));
      running_.erase(id);
      changed_.notify_all();
    }));
  }

  // Waits until every connection has ended and its thread has exited.
  void JoinAll() {
    {
      std::unique_lock<std::mutex> lock(mu_);
      changed_.wait(lock, [this] { return running_.empty(); });
    }
    JoinFinished();
  }

 private:
  void JoinFinished() {
    std::vector<std::thread> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done.swap(finished_);
    }
    for (std::thread& t : done) t.join();  // they have ended or are about to
  }

  const size_t max_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<uint64_t, std::thread> running_;  // guarded by mu_
  std::vector<std::thread> finished_;        // guarded by mu_
  uint64_t next_id_ = 0;                     // guarded by mu_
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return std::fprintf(stderr, "usage: blocking_echo_server PORT KEY CERT [CONNECTIONS]\n"), 2;
  std::stringstream key, cert;
  key << std::ifstream(argv[2]).rdbuf();
  cert << std::ifstream(argv[3]).rdbuf();
  SecureContextOptions ctx_opts;  // tls.createSecureContext()
  ctx_opts.key = {key.str()};
  ctx_opts.cert = {cert.str()};
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(ctx_opts);
  if (!ctx.ok()) return Fail(ctx.status());

  blocking::StreamOptions opts;
  opts.secure_context = *ctx;
  auto listener = blocking::TlsListener::Listen("127.0.0.1", std::atoi(argv[1]), opts);
  if (!listener.ok()) return Fail(listener.status());
  std::printf("listening on %d\n", (*listener)->port());
  std::fflush(stdout);

  ConnectionThreads threads(/*max=*/256);
  const int limit = argc > 4 ? std::atoi(argv[4]) : -1;
  for (int served = 0; limit < 0 || served < limit; ++served) {
    // Accept returns before the handshake: that runs on the connection's thread.
    auto stream = (*listener)->Accept(absl::InfiniteFuture());
    if (!stream.ok()) return Fail(stream.status());
    threads.Start([stream = *std::move(stream)]() mutable { Serve(std::move(stream)); });
  }
  threads.JoinAll();
  return 0;
}

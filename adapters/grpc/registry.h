// The controller's resources and the one epoll loop they live on: contexts,
// listeners (epoll Servers) and connections (TlsSockets), each a record
// below, in maps that only the loop thread touches. Every part of the
// controller (contexts.h, listeners.h, live.h, connections.h, stats.h)
// reaches them through Run(), which runs a function there and waits.
// Blocking waits (a handshake, a Read, a listener's close) happen on the
// caller's thread on small Mailboxes the loop fills; the loop never waits
// for a caller, so there is no lock-order cycle.
//
//   absl::StatusOr<int> n = registry.RunFor<int>([&]() -> absl::StatusOr<int> {
//     return static_cast<int>(registry.contexts.size());
//   });
#ifndef TLSENGINE_ADAPTERS_GRPC_REGISTRY_H_
#define TLSENGINE_ADAPTERS_GRPC_REGISTRY_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "adapters/epoll/server.h"
#include "adapters/epoll/session_store.h"
#include "adapters/epoll/socket.h"
#include "adapters/grpc/controller.h"
#include "core/secure_context.h"

namespace tlsengine {
namespace control {

// What the loop tells a waiting caller: set once, waited for by any thread.
template <typename T>
struct Mailbox {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // guarded by mu
  T value;            // guarded by mu
  void Set(T v) {
    std::lock_guard<std::mutex> l(mu);
    if (done) return;
    done = true;
    value = std::move(v);
    cv.notify_all();
  }
  // False on timeout.
  bool Wait(absl::Duration d) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, absl::ToChronoMilliseconds(d), [&] { return done; });
  }
};

// Plaintext a hold connection keeps for Read (connections.h); every field
// guarded by mu, shared by the loop (which fills it) and one reader.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> chunks;
  size_t bytes = 0;
  bool ended = false;   // peer ended
  bool closed = false;  // socket closed
  std::string error;    // Node code it closed with
  bool reader = false;  // a Read is running
};

// A stapled response and what ListCertificates says of it.
struct OcspInfo {
  std::string der;
  std::string next_update;  // "" when absent
};

struct TicketKey {
  std::string key;
  absl::Time retire = absl::InfiniteFuture();  // the first (encrypting) never retires
};

// What GetStats reports of one listener beyond what its Server counts.
struct ListenerStats {
  std::map<std::string, uint64_t> handshakes, protocols, ciphers;
  uint64_t resumed = 0;
  uint64_t bytes_in = 0, bytes_out = 0;  // of closed connections
};

struct Listener {
  std::string id;
  std::string context_id;
  std::string mode;  // "echo" or "hold", for its connections
  std::unique_ptr<epoll::Server> server;
  std::map<std::string, std::string> sni;  // lower-case name or pattern -> context id
  std::map<std::string, OcspInfo> ocsp;    // "" (default) or sni key -> response
  std::vector<TicketKey> keys;
  absl::Duration session_timeout = absl::Seconds(300);
  std::shared_ptr<epoll::MemorySessionStore> store;  // null: no session cache
  ListenerStats stats;
  bool closing = false;
  std::shared_ptr<Mailbox<bool>> closed = std::make_shared<Mailbox<bool>>();
};

struct Conn {
  std::string id;
  uint64_t number = 0;
  std::string listener_id;  // "" for clients
  std::string mode;         // "echo" or "hold"
  std::shared_ptr<epoll::TlsSocket> socket;
  std::shared_ptr<Inbox> inbox = std::make_shared<Inbox>();
  absl::Time created;
  bool closed = false;
  std::string session;  // client: the latest
  absl::Status close_status;
};

class Registry {
 public:
  explicit Registry(ControllerOptions options);
  ~Registry();

  // Starts the loop thread. kResourceExhausted/kInternal from the loop.
  absl::Status Start();
  // Runs `fn` on the loop and waits. kUnavailable once stopped, or the
  // loop's own error if it failed. Any thread but the loop's.
  absl::Status Run(const std::function<void()>& fn);
  template <typename T>
  absl::StatusOr<T> RunFor(const std::function<absl::StatusOr<T>()>& fn) {
    absl::StatusOr<T> out = absl::InternalError("not run");
    absl::Status ran = Run([&] { out = fn(); });
    if (!ran.ok()) return ran;
    return out;
  }
  // Whether Start() succeeded and Stop() has not run.
  bool running();
  // Refuses every later Run() and joins the loop. Idempotent.
  void Stop();

  const ControllerOptions& options() const { return options_; }
  const ControllerLimits& limits() const { return options_.limits; }
  absl::Time Now() const { return options_.clock(); }  // the injectable clock, for reports
  epoll::Loop* loop() const { return loop_; }

  // ---- Loop thread only, from here on.
  absl::StatusOr<std::shared_ptr<const SecureContext>> FindContext(absl::string_view field, const std::string& id);
  // A context a listener can serve: it has a certificate (cert or pfx).
  absl::StatusOr<std::shared_ptr<const SecureContext>> FindServingContext(const std::string& id);
  // An open (not closing) listener. kNotFound.
  absl::StatusOr<Listener*> FindListener(const std::string& id);
  absl::StatusOr<Conn*> FindConn(const std::string& id);
  // nullptr when gone.
  Conn* ConnOrNull(const std::string& id);
  int OpenConnections() const;
  // The SNI table entry of `l` for `servername` (exact, then "*.rest"); ""
  // when none matches.
  static std::string SniKey(const Listener& l, const std::string& servername);

 private:
  ControllerOptions options_;
  std::unique_ptr<epoll::LoopGroup> group_;
  epoll::Loop* loop_ = nullptr;
  std::mutex run_mu_;
  bool stopped_ = false;  // guarded by run_mu_

 public:
  // Loop thread only; declared after the loop, so destroyed before it.
  std::map<std::string, std::shared_ptr<const SecureContext>> contexts;
  std::map<std::string, std::unique_ptr<Listener>> listeners;
  std::map<std::string, std::unique_ptr<Conn>> conns;
  std::deque<std::string> closed_order;  // closed connections, oldest first
  uint64_t next_context = 0, next_listener = 0, next_conn = 0;
};

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_REGISTRY_H_

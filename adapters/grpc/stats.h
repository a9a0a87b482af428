// Stats: what each listener's handshakes and connections came to
// (GetStats), counted on the loop as they happen. The Count* calls run on
// the loop thread; GetStats is thread-safe.
//
//   Stats::CountHandshake(listener, "ok");
//   absl::StatusOr<v1::GetStatsResponse> s = stats.GetStats(req);
#ifndef TLSENGINE_ADAPTERS_GRPC_STATS_H_
#define TLSENGINE_ADAPTERS_GRPC_STATS_H_

#include <string>

#include "absl/status/statusor.h"
#include "adapters/epoll/socket.h"
#include "adapters/grpc/control.pb.h"
#include "adapters/grpc/read_inbox.h"
#include "adapters/grpc/registry.h"

namespace tlsengine {
namespace control {

class Stats {
 public:
  // Both must outlive this.
  Stats(Registry& registry, const ReadInbox& inbox) : r_(registry), inbox_(inbox) {}

  // A handshake on `l` that ended with `code` ("ok", or a Node-style code).
  static void CountHandshake(Listener& l, const std::string& code);
  // A secure connection on `l`: "ok", its protocol, cipher and resumption.
  static void CountSecure(Listener& l, epoll::TlsSocket& s);
  // A closed connection's bytes.
  static void CountClosed(Listener& l, const epoll::TlsSocket& s);

  // kInvalidArgument, kNotFound for an unknown listenerId.
  absl::StatusOr<v1::GetStatsResponse> GetStats(const v1::GetStatsRequest& req);

 private:
  Registry& r_;
  const ReadInbox& inbox_;
};

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_STATS_H_

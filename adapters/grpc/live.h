// Live changes to a running listener, each published as a "change" event:
// AddContext / RemoveContext (SNI names), ReplaceContext (the default
// context), RotateTicketKeys and SetOcspResponse. Contexts are built off
// the data plane, on the caller's thread, with the listener's ticket key
// set (so rotations reach them); the loop only swaps the pointer in.
// Rotating ticket keys changes the key set in place and builds nothing;
// a timer retires the previous keys after keepPrevious.
//
//   LiveChanges live(registry, events);
//   absl::StatusOr<v1::ChangeResponse> c = live.ReplaceContext(req);
//
// Thread-safe; errors as Controller's (controller.h).
#ifndef TLSENGINE_ADAPTERS_GRPC_LIVE_H_
#define TLSENGINE_ADAPTERS_GRPC_LIVE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/grpc/control.pb.h"
#include "adapters/grpc/event_bus.h"
#include "adapters/grpc/registry.h"

namespace tlsengine {
namespace control {

class LiveChanges {
 public:
  // Both must outlive this.
  LiveChanges(Registry& registry, EventBus& events) : r_(registry), events_(events) {}

  absl::StatusOr<v1::ChangeResponse> AddContext(const v1::AddContextRequest& req);
  absl::StatusOr<v1::ChangeResponse> RemoveContext(const v1::RemoveContextRequest& req);
  absl::StatusOr<v1::ChangeResponse> ReplaceContext(const v1::ReplaceContextRequest& req);
  absl::StatusOr<v1::ChangeResponse> RotateTicketKeys(const v1::RotateTicketKeysRequest& req);
  absl::StatusOr<v1::ChangeResponse> SetOcspResponse(const v1::SetOcspResponseRequest& req);

 private:
  // One change on a listener: `apply` runs on the loop and fills in what
  // it did; it changes nothing when it returns an error. The change is
  // then stamped with the listener and `kind` and published.
  absl::StatusOr<v1::ChangeResponse> ChangeListener(
      const std::string& listener_id, absl::string_view kind,
      const std::function<absl::Status(Listener&, v1::ChangeResponse&)>& apply);
  // Context `context_id` as listener `listener_id` serves it, with the
  // listener's ticket key set: looked up on the loop, built here.
  absl::StatusOr<std::shared_ptr<const SecureContext>> BuildServed(const std::string& listener_id,
                                                                  const std::string& context_id);
  // A change to serve context `context_id` on the listener: built by
  // BuildServed, then `apply` runs on the loop with the registered context
  // (found again: it may have been deleted meanwhile) and the served one.
  using ServingChange = std::function<absl::Status(Listener&, const std::shared_ptr<const SecureContext>& ctx,
                                                   const std::shared_ptr<const SecureContext>& served,
                                                   v1::ChangeResponse&)>;
  absl::StatusOr<v1::ChangeResponse> ChangeServing(const std::string& listener_id, const std::string& context_id,
                                                   absl::string_view kind, const ServingChange& apply);
  // Loop thread: the change's context and the fingerprints it serves.
  void ServedBy(const std::string& context_id, v1::ChangeResponse& change);
  // Loop thread: drops retired keys from listener `lid` (from a timer).
  void RetireKeys(const std::string& lid);

  Registry& r_;
  EventBus& events_;
};

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_LIVE_H_

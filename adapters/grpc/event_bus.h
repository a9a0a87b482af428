// The controller's events (control.proto's ControlEvent): every part
// publishes what happened, and each WatchEvents stream gets the events it
// asked for through a bounded queue of its own (past watcher_queue, events
// are dropped and the next one delivered says how many).
//
//   bus.Publish(ev);                                   // any thread
//   bus.Watch(req, emit, cancelled, ready);            // blocks the caller
//
// Thread-safe: one mutex guards the watchers; Publish never waits for a
// watcher, so the loop thread may publish while a watcher is slow.
#ifndef TLSENGINE_ADAPTERS_GRPC_EVENT_BUS_H_
#define TLSENGINE_ADAPTERS_GRPC_EVENT_BUS_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "adapters/grpc/control.pb.h"
#include "adapters/grpc/controller.h"

namespace tlsengine {
namespace control {

class EventBus {
 public:
  // `clock` stamps each event; it must outlive the bus.
  EventBus(const ControllerLimits& limits, std::function<absl::Time()> clock);

  // Stamps `ev` with the time and queues it for every watcher whose filter
  // (listener id, types) it passes.
  void Publish(v1::ControlEvent ev);
  // A "change" event carrying `change`.
  void PublishChange(const v1::ChangeResponse& change);

  // Controller::WatchEvents: streams events to `emit` until it returns
  // false, `cancelled()` or Stop(). kInvalidArgument for a bad filter,
  // kResourceExhausted past max_watchers, kUnavailable after Stop().
  absl::Status Watch(const v1::WatchEventsRequest& req, const std::function<bool(const v1::ControlEvent&)>& emit,
                     const std::function<bool()>& cancelled, const std::function<void()>& ready);

  // Ends every watch and refuses new ones. Idempotent.
  void Stop();

 private:
  struct Watcher {
    std::string listener_id;
    std::vector<std::string> types;
    std::deque<v1::ControlEvent> queue;
    uint64_t dropped = 0;
    bool stopped = false;
  };

  const ControllerLimits limits_;
  const std::function<absl::Time()> clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Watcher>> watchers_;  // guarded by mu_
  bool stopped_ = false;                            // guarded by mu_
};

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_EVENT_BUS_H_

// The facade: each method checks nothing itself and forwards to the part
// that owns its concern (controller.h lists them). Shutdown is the one
// thing that spans them all.
#include "adapters/grpc/controller.h"

#include <utility>

#include "absl/time/clock.h"
#include "adapters/grpc/connections.h"
#include "adapters/grpc/contexts.h"
#include "adapters/grpc/event_bus.h"
#include "adapters/grpc/listeners.h"
#include "adapters/grpc/live.h"
#include "adapters/grpc/read_inbox.h"
#include "adapters/grpc/registry.h"
#include "adapters/grpc/stats.h"

namespace tlsengine {
namespace control {

// Declared in dependency order: each part refers only to those above it,
// and is destroyed before them.
struct Controller::Parts {
  explicit Parts(ControllerOptions options)
      : registry(std::move(options)),
        events(registry.limits(), registry.options().clock),
        inbox(registry),
        stats(registry, inbox),
        conns(registry, events, inbox),
        contexts(registry),
        listeners(registry, events, conns),
        live(registry, events) {}

  Registry registry;
  EventBus events;
  ReadInbox inbox;
  Stats stats;
  Connections conns;
  Contexts contexts;
  Listeners listeners;
  LiveChanges live;
};

absl::StatusOr<std::unique_ptr<Controller>> Controller::Create(ControllerOptions options) {
  auto parts = std::make_unique<Parts>(std::move(options));
  if (absl::Status s = parts->registry.Start(); !s.ok()) return s;
  return std::unique_ptr<Controller>(new Controller(std::move(parts)));
}

Controller::Controller(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}
Controller::~Controller() { Shutdown(); }

void Controller::Shutdown() {
  Registry& r = parts_->registry;
  if (!r.running()) return;
  // Close everything, then wait (bounded) for the sockets to report close.
  r.Run([&] {
     for (auto& [id, l] : r.listeners) {
       if (!l->closing) {
         l->closing = true;
         auto closed = l->closed;
         if (!l->server->Close([closed] { closed->Set(true); }).ok()) closed->Set(true);
       }
     }
     for (auto& [id, c] : r.conns) {
       if (!c->closed) c->socket->Destroy();
     }
   }).IgnoreError();
  absl::Time until = absl::Now() + absl::Seconds(5);
  for (;;) {
    bool all = true;
    r.Run([&] {
       for (auto& [id, c] : r.conns) all = all && c->closed;
       for (auto& [id, l] : r.listeners) all = all && l->closed->done;
     }).IgnoreError();
    if (all || absl::Now() > until) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  r.Run([&] {
     r.conns.clear();
     r.listeners.clear();
     r.closed_order.clear();
   }).IgnoreError();
  parts_->events.Stop();
  r.Stop();
}

#define TLSCTL_FORWARD(Method, Req, Resp, Part) \
  absl::StatusOr<v1::Resp> Controller::Method(const v1::Req& r) { return parts_->Part.Method(r); }
TLSCTL_UNARY_METHODS(TLSCTL_FORWARD)
#undef TLSCTL_FORWARD

absl::Status Controller::Read(const v1::ReadRequest& r, const std::function<bool(const v1::ReadChunk&)>& emit,
                              const std::function<bool()>& cancelled) {
  return parts_->inbox.Read(r, emit, cancelled);
}

absl::Status Controller::WatchEvents(const v1::WatchEventsRequest& r,
                                     const std::function<bool(const v1::ControlEvent&)>& emit,
                                     const std::function<bool()>& cancelled, const std::function<void()>& ready) {
  return parts_->events.Watch(r, emit, cancelled, ready);
}

}  // namespace control
}  // namespace tlsengine

#include "adapters/grpc/event_bus.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "adapters/grpc/validate.h"
#include "core/errors.h"

namespace tlsengine {
namespace control {

EventBus::EventBus(const ControllerLimits& limits, std::function<absl::Time()> clock)
    : limits_(limits), clock_(std::move(clock)) {}

void EventBus::Publish(v1::ControlEvent ev) {
  ev.set_time(absl::ToUnixMillis(clock_()));
  std::lock_guard<std::mutex> l(mu_);
  for (auto& w : watchers_) {
    if (!w->listener_id.empty() && w->listener_id != ev.listener_id()) continue;
    if (!w->types.empty() && std::find(w->types.begin(), w->types.end(), ev.type()) == w->types.end()) continue;
    if (w->queue.size() >= limits_.watcher_queue) {
      ++w->dropped;
      continue;
    }
    w->queue.push_back(ev);
  }
  cv_.notify_all();
}

void EventBus::PublishChange(const v1::ChangeResponse& change) {
  v1::ControlEvent ev;
  ev.set_type("change");
  ev.set_listener_id(change.listener_id());
  ev.set_servername(change.servername());
  ev.set_message(change.description());
  *ev.mutable_change() = change;
  Publish(std::move(ev));
}

absl::Status EventBus::Watch(const v1::WatchEventsRequest& req,
                             const std::function<bool(const v1::ControlEvent&)>& emit,
                             const std::function<bool()>& cancelled, const std::function<void()>& ready) {
  if (!req.listener_id().empty()) {
    if (absl::Status s = CheckId("listenerId", req.listener_id()); !s.ok()) return s;
  }
  static const char* kTypes[] = {"secureConnection", "secureConnect", "clientError", "newSession", "session",
                                 "OCSPRequest", "OCSPResponse", "close", "change"};
  if (req.types_size() > 16) return Invalid("types", "more than 16 entries");
  for (int i = 0; i < req.types_size(); ++i) {
    if (std::find(std::begin(kTypes), std::end(kTypes), req.types(i)) == std::end(kTypes)) {
      return Invalid(absl::StrCat("types[", i, "]"), absl::StrCat("unknown event \"", absl::CHexEscape(req.types(i)),
                                                                  "\"; one of ", absl::StrJoin(kTypes, ", ")));
    }
  }
  auto w = std::make_shared<Watcher>();
  w->listener_id = req.listener_id();
  w->types.assign(req.types().begin(), req.types().end());
  {
    std::lock_guard<std::mutex> l(mu_);
    if (static_cast<int>(watchers_.size()) >= limits_.max_watchers) {
      return Limit("too many WatchEvents streams", limits_.max_watchers);
    }
    if (stopped_) return MakeError(absl::StatusCode::kUnavailable, "", "shut down");
    watchers_.push_back(w);
  }
  if (ready) ready();
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait_for(l, std::chrono::milliseconds(50), [&] { return !w->queue.empty() || w->stopped; });
    if (w->stopped) break;
    if (cancelled && cancelled()) break;
    if (w->queue.empty()) continue;
    v1::ControlEvent ev = std::move(w->queue.front());
    w->queue.pop_front();
    ev.set_dropped(w->dropped);
    w->dropped = 0;
    l.unlock();
    bool more = emit(ev);
    l.lock();
    if (!more) break;
  }
  watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), w), watchers_.end());
  return absl::OkStatus();
}

void EventBus::Stop() {
  std::lock_guard<std::mutex> l(mu_);
  stopped_ = true;
  for (auto& w : watchers_) w->stopped = true;
  cv_.notify_all();
}

}  // namespace control
}  // namespace tlsengine

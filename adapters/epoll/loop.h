// Loop: one epoll instance with fd watches, one timer heap and a queue of
// work posted from other threads. It knows nothing of TLS; the connection
// driver arms it from the engine's interest and NextDeadline().
//
//   auto loop = tlsengine::epoll::Loop::Create().value();
//   loop->Watch(fd, Interest{/*read=*/true, /*write=*/false},
//               [&](Ready r) { if (r.read) ReadSome(fd); });
//   loop->AddTimer(loop->Now() + absl::Seconds(5), [&] { loop->Stop(); });
//   absl::Status s = loop->Run();   // until Stop()
//
// Threads: a Loop and everything on it belong to the thread that runs it.
// Only Post() and Stop() may be called from other threads. Every callback
// runs on the loop thread and may add, modify or remove any watch, timer or
// closable, its own included.
#ifndef TLSENGINE_ADAPTERS_EPOLL_LOOP_H_
#define TLSENGINE_ADAPTERS_EPOLL_LOOP_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

struct epoll_event;

namespace tlsengine {
namespace epoll {

// What a watch wants to hear about.
struct Interest {
  bool read = false;
  bool write = false;
};

// What the kernel reported for a watched fd. `read`/`write` only appear when
// the current interest asks for them. `hangup` (EPOLLHUP: both directions
// closed) and `error` (EPOLLERR) come whenever the interest is not empty; the
// callback finds out what happened by reading or writing the fd. A peer's
// half-close shows as `read` with read() returning 0.
struct Ready {
  bool read = false;
  bool write = false;
  bool hangup = false;
  bool error = false;
};

using WatchCallback = std::function<void(Ready)>;
using TimerCallback = std::function<void()>;
using Clock = std::function<absl::Time()>;

// Names one timer. Once it has fired or been cancelled its id stays invalid
// (an id could only come back after 2^32 reuses of its slot); kNoTimer is
// never issued.
using TimerId = uint64_t;
inline constexpr TimerId kNoTimer = 0;

// Something the loop can close at shutdown: a connection, a listener. The
// loop does not own it; it is registered with AddClosable and must call
// RemoveClosable once it is fully closed (or before it is destroyed).
class Closable {
 public:
  virtual ~Closable() = default;
  // Begin closing gracefully (send close_notify, drain, ...), finishing by
  // `deadline` if it can. Call Loop::RemoveClosable when done, now or later.
  virtual void CloseGracefully(absl::Time deadline) = 0;
  // Close now, synchronously. The loop has already removed it when this runs.
  virtual void ForceClose() = 0;
};

struct LoopOptions {
  // The loop's notion of now, for timers and Now(); empty means absl::Now.
  // Tests inject a fake one; with a clock that does not advance, Run()
  // sleeps in real time and re-reads it, so drive such a loop with
  // RunOnce(absl::ZeroDuration()).
  Clock clock;
};

class Loop {
 public:
  // Creates the epoll instance and the eventfd behind Post().
  // Errors: kResourceExhausted (EMFILE, ENFILE, ENOMEM) or kInternal, with
  // the errno name (e.g. "EMFILE") as the Node-style code and its text.
  static absl::StatusOr<std::unique_ptr<Loop>> Create(LoopOptions options = LoopOptions());

  // Closes the epoll fd and eventfd. Watched fds are not closed (the loop
  // never owns them); posted work that has not run is dropped.
  ~Loop();

  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // ---- fd watches (loop thread only). Level-triggered: a callback fires on
  // every iteration while the fd stays ready for what the interest asks, so
  // the owner re-arms read/write from the engine's wants with Modify and
  // never has to drain a socket to EAGAIN to avoid losing an edge. An empty
  // interest takes the fd out of the epoll set, so nothing is reported for
  // it (not even hangup) until Modify asks for read or write again.
  //
  // Watch starts watching `fd` (not owned; call Unwatch before closing it).
  // Errors: kInvalidArgument for fd < 0, an empty callback or an fd epoll
  // refuses (EBADF; EPERM for regular files), kAlreadyExists when `fd` is
  // already watched, kResourceExhausted (ENOMEM, ENOSPC), kInternal
  // otherwise. epoll_ctl failures carry the errno name as the Node code.
  absl::Status Watch(int fd, Interest interest, WatchCallback callback);
  // Replaces the interest of a watched fd. Errors: kNotFound when `fd` is
  // not watched; epoll_ctl failures as for Watch.
  absl::Status Modify(int fd, Interest interest);
  // Stops watching `fd`; its callback is destroyed (after it returns, if it
  // is running) and a readiness already collected for it is not delivered.
  // Errors: kNotFound when `fd` is not watched; another epoll_ctl failure as
  // for Watch (the watch is removed all the same). An fd closed before its
  // Unwatch is not an error: the kernel dropped it already.
  absl::Status Unwatch(int fd);

  // ---- timers (loop thread only): one min-heap, O(log n) per operation.
  // A timer fires once, on the first iteration whose clock reading is at or
  // after `when`; timers due together fire in order of `when`, then of the
  // AddTimer/Reschedule call that set it.
  //
  // Adds a one-shot timer (an empty callback fires as a no-op). Returns its
  // id (never kNoTimer).
  TimerId AddTimer(absl::Time when, TimerCallback callback);
  // Moves a pending timer to `when`. Returns false (and does nothing) when
  // `id` has fired, was cancelled or was never issued.
  bool Reschedule(TimerId id, absl::Time when);
  // Cancels a pending timer, destroying its callback. Returns false when `id`
  // has fired, was cancelled or was never issued.
  bool Cancel(TimerId id);
  // How many timers are pending.
  size_t pending_timers() const { return heap_.size(); }

  // ---- work from other threads.
  // Queues `task` to run on the loop thread, after the I/O and timers of the
  // iteration that picks it up. Tasks from one thread run in the order that
  // thread posted them; a task posted by a task runs on the next iteration.
  // An empty task is dropped. Thread-safe; never blocks on the loop.
  void Post(std::function<void()> task);

  // ---- running (loop thread).
  // Runs iterations until Stop(). A Stop() that comes before Run() makes the
  // next Run() return at once. Errors: kFailedPrecondition
  // (ERR_TLS_INVALID_STATE) when called from a callback of this loop;
  // kInternal when epoll_wait fails.
  absl::Status Run();
  // Runs one iteration: waits at most `max_wait` (less when a timer is due
  // sooner; ZeroDuration() polls, InfiniteDuration() waits for an event),
  // then dispatches I/O, due timers and posted work. Errors as for Run().
  absl::Status RunOnce(absl::Duration max_wait);
  // Makes Run() return after the iteration in progress. Thread-safe.
  void Stop();

  // The loop's clock (LoopOptions::clock).
  absl::Time Now() const { return clock_(); }
  // How many iterations (RunOnce calls, Run's included) have begun; for
  // bounding the work one owner does per iteration. Loop thread.
  uint64_t iterations() const { return iterations_; }

  // ---- graceful shutdown (loop thread).
  // Registers `closable` (not owned) for Shutdown. Errors: kFailedPrecondition
  // once Shutdown has been called (stop accepting instead); kAlreadyExists
  // when it is already registered.
  absl::Status AddClosable(Closable* closable);
  // Unregisters `closable`; a no-op when it is not registered. During a
  // Shutdown, removing the last one completes it.
  void RemoveClosable(Closable* closable);
  // Asks every registered closable, in registration order, to close
  // gracefully by Now() + bound; at the bound (by the loop clock) it
  // unregisters and force-closes whatever is left. `done` then runs once, on
  // the loop thread from a later step of the loop, never from inside
  // Shutdown or RemoveClosable; with nothing registered it runs on the next
  // iteration. The loop keeps running; `done` may call Stop() and may be
  // empty.
  // Errors: kFailedPrecondition when Shutdown was already called.
  absl::Status Shutdown(absl::Duration bound, std::function<void()> done);

 private:
  struct WatchEntry {
    int fd;
    uint64_t token;  // what epoll hands back; never reused, so stale events drop
    Interest interest;
    bool in_epoll_set;
    WatchCallback callback;
  };
  struct HeapEntry {
    absl::Time when;
    uint64_t seq;  // tie-break: earlier AddTimer/Reschedule first
    uint32_t slot;
  };
  // Timers live in recycled slots, so the heap finds its entries' owners by
  // index, not by hashing; TimerId is (generation << 32) | slot.
  struct TimerSlot {
    uint32_t generation = 1;  // bumped when the slot is freed; never 0
    bool pending = false;
    size_t heap_index = 0;
    TimerCallback callback;
  };
  enum class ShutdownPhase { kNone, kDraining, kDone };

  Loop(int epoll_fd, int wake_fd, Clock clock);

  absl::Status ApplyInterest(WatchEntry& entry, Interest interest);
  void DispatchIo(const struct epoll_event* events, int n);
  void FireDueTimers();
  void RunPosted();
  void Wake();
  void DrainWakeFd();

  TimerSlot* FindTimer(TimerId id);
  TimerCallback TakeTimer(uint32_t slot);
  // Heap helpers: keep heap_[i] and slots_[slot].heap_index in step.
  static bool Earlier(const HeapEntry& a, const HeapEntry& b);
  void HeapPlace(size_t index);
  void SiftUp(size_t index);
  void SiftDown(size_t index);
  void HeapRemove(size_t index);

  void ForceRemainingClosed();
  void MaybeFinishShutdown();

  const int epoll_fd_;
  const int wake_fd_;
  const Clock clock_;
  bool running_ = false;  // inside RunOnce: Run/RunOnce from a callback is refused
  uint64_t iterations_ = 0;

  // fd -> watch. shared_ptr so a callback survives its own Unwatch.
  absl::flat_hash_map<int, std::shared_ptr<WatchEntry>> watches_;
  absl::flat_hash_map<uint64_t, std::shared_ptr<WatchEntry>> by_token_;
  uint64_t next_token_ = 1;

  std::vector<HeapEntry> heap_;
  std::vector<TimerSlot> slots_;
  std::vector<uint32_t> free_slots_;
  uint64_t next_seq_ = 0;

  std::mutex posted_mu_;
  std::deque<std::function<void()>> posted_;  // guarded by posted_mu_
  std::atomic<bool> stop_requested_{false};

  // Registration order -> closable, and the way back.
  std::map<uint64_t, Closable*> closables_;
  absl::flat_hash_map<Closable*, uint64_t> closable_order_;
  uint64_t next_closable_ = 0;
  ShutdownPhase shutdown_phase_ = ShutdownPhase::kNone;
  TimerId shutdown_timer_ = kNoTimer;
  std::function<void()> shutdown_done_;
};

}  // namespace epoll
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_EPOLL_LOOP_H_

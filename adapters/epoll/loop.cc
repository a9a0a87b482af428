#include "adapters/epoll/loop.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/fd/sys_status.h"
#include "core/errors.h"

namespace tlsengine {
namespace epoll {
namespace {

// epoll_data of the eventfd; watch tokens start at 1.
constexpr uint64_t kWakeToken = 0;
constexpr int kMaxEventsPerWait = 256;

// A failed system call as a status (adapters/fd's one mapping), except
// that epoll_ctl's EPERM, a file epoll cannot watch, is the caller's
// mistake.
absl::Status ErrnoError(absl::string_view what, int err) {
  return fdio::SysError(what, err, err == EPERM ? absl::StatusCode::kInvalidArgument : fdio::SysCode(err));
}

// No EPOLLRDHUP: level-triggered, it would fire on every iteration after the
// peer's half-close while the owner only wants to write its answer. A read
// returning 0 tells the owner about the half-close instead.
uint32_t EpollEvents(Interest interest) {
  uint32_t events = 0;
  if (interest.read) events |= EPOLLIN;
  if (interest.write) events |= EPOLLOUT;
  return events;
}

bool Empty(Interest interest) { return !interest.read && !interest.write; }

// epoll_wait's timeout in ms for `wait`, rounded up so a timer 0.3 ms away
// does not turn into a busy poll.
int TimeoutMs(absl::Duration wait) {
  if (wait == absl::InfiniteDuration()) return -1;
  if (wait <= absl::ZeroDuration()) return 0;
  const absl::Duration capped = std::min(wait, absl::Milliseconds(INT_MAX));
  return static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(capped, absl::Milliseconds(1))));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Loop>> Loop::Create(LoopOptions options) {
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) return ErrnoError("epoll_create1", errno);
  const int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    const int err = errno;
    close(epoll_fd);
    return ErrnoError("eventfd", err);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeToken;
  if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev) != 0) {
    const int err = errno;
    close(wake_fd);
    close(epoll_fd);
    return ErrnoError("epoll_ctl(ADD eventfd)", err);
  }
  Clock clock = options.clock ? std::move(options.clock) : [] { return absl::Now(); };
  return std::unique_ptr<Loop>(new Loop(epoll_fd, wake_fd, std::move(clock)));
}

Loop::Loop(int epoll_fd, int wake_fd, Clock clock)
    : epoll_fd_(epoll_fd), wake_fd_(wake_fd), clock_(std::move(clock)) {}

Loop::~Loop() {
  close(wake_fd_);
  close(epoll_fd_);
}

// ---- fd watches

absl::Status Loop::Watch(int fd, Interest interest, WatchCallback callback) {
  if (fd < 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     absl::StrCat("Watch: fd ", fd, " is negative"));
  }
  if (!callback) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     "Watch: empty callback");
  }
  if (watches_.contains(fd)) {
    return absl::AlreadyExistsError(absl::StrCat("Watch: fd ", fd, " is already watched"));
  }
  auto entry = std::make_shared<WatchEntry>();
  entry->fd = fd;
  entry->token = next_token_++;
  entry->interest = Interest{};
  entry->in_epoll_set = false;
  entry->callback = std::move(callback);
  absl::Status status = ApplyInterest(*entry, interest);
  if (!status.ok()) return status;
  by_token_[entry->token] = entry;
  watches_[fd] = std::move(entry);
  return absl::OkStatus();
}

absl::Status Loop::Modify(int fd, Interest interest) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) {
    return absl::NotFoundError(absl::StrCat("Modify: fd ", fd, " is not watched"));
  }
  return ApplyInterest(*it->second, interest);
}

absl::Status Loop::Unwatch(int fd) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) {
    return absl::NotFoundError(absl::StrCat("Unwatch: fd ", fd, " is not watched"));
  }
  std::shared_ptr<WatchEntry> entry = std::move(it->second);
  watches_.erase(it);
  by_token_.erase(entry->token);
  if (entry->in_epoll_set && epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr) != 0) {
    // EBADF/ENOENT: the fd was closed first and the kernel already dropped
    // it. The watch is gone either way; nothing is left to undo.
    const int err = errno;
    if (err != EBADF && err != ENOENT) return ErrnoError("epoll_ctl(DEL)", err);
  }
  return absl::OkStatus();
}

absl::Status Loop::ApplyInterest(WatchEntry& entry, Interest interest) {
  int op;
  if (Empty(interest)) {
    if (!entry.in_epoll_set) {
      entry.interest = interest;
      return absl::OkStatus();
    }
    op = EPOLL_CTL_DEL;
  } else {
    op = entry.in_epoll_set ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  }
  epoll_event ev{};
  ev.events = EpollEvents(interest);
  ev.data.u64 = entry.token;
  if (epoll_ctl(epoll_fd_, op, entry.fd, &ev) != 0) {
    return ErrnoError(absl::StrCat("epoll_ctl(fd ", entry.fd, ")"), errno);
  }
  entry.interest = interest;
  entry.in_epoll_set = op != EPOLL_CTL_DEL;
  return absl::OkStatus();
}

void Loop::DispatchIo(const epoll_event* events, int n) {
  for (int i = 0; i < n; ++i) {
    const uint64_t token = events[i].data.u64;
    if (token == kWakeToken) {
      DrainWakeFd();
      continue;
    }
    // Looked up again for every event: an earlier callback of this batch may
    // have removed, replaced or re-armed this watch.
    auto it = by_token_.find(token);
    if (it == by_token_.end()) continue;
    std::shared_ptr<WatchEntry> entry = it->second;  // survives its own Unwatch
    const uint32_t got = events[i].events;
    Ready ready;
    ready.read = entry->interest.read && (got & EPOLLIN) != 0;
    ready.write = entry->interest.write && (got & EPOLLOUT) != 0;
    ready.hangup = (got & EPOLLHUP) != 0;
    ready.error = (got & EPOLLERR) != 0;
    if (Empty(entry->interest)) continue;
    if (!ready.read && !ready.write && !ready.hangup && !ready.error) continue;
    entry->callback(ready);
  }
}

// ---- timers

bool Loop::Earlier(const HeapEntry& a, const HeapEntry& b) {
  if (a.when != b.when) return a.when < b.when;
  return a.seq < b.seq;
}

void Loop::HeapPlace(size_t index) { slots_[heap_[index].slot].heap_index = index; }

void Loop::SiftUp(size_t index) {
  while (index > 0) {
    const size_t parent = (index - 1) / 2;
    if (!Earlier(heap_[index], heap_[parent])) break;
    std::swap(heap_[index], heap_[parent]);
    HeapPlace(index);
    index = parent;
  }
  HeapPlace(index);
}

void Loop::SiftDown(size_t index) {
  const size_t n = heap_.size();
  for (;;) {
    size_t smallest = index;
    const size_t left = 2 * index + 1;
    const size_t right = left + 1;
    if (left < n && Earlier(heap_[left], heap_[smallest])) smallest = left;
    if (right < n && Earlier(heap_[right], heap_[smallest])) smallest = right;
    if (smallest == index) break;
    std::swap(heap_[index], heap_[smallest]);
    HeapPlace(index);
    index = smallest;
  }
  HeapPlace(index);
}

// Removes heap_[index] from the heap (its slot is the caller's business).
void Loop::HeapRemove(size_t index) {
  const size_t last = heap_.size() - 1;
  if (index != last) {
    const uint32_t moved = heap_[last].slot;
    heap_[index] = heap_[last];
    heap_.pop_back();
    // The moved entry may belong above or below its new place.
    SiftUp(index);
    SiftDown(slots_[moved].heap_index);
  } else {
    heap_.pop_back();
  }
}

Loop::TimerSlot* Loop::FindTimer(TimerId id) {
  const uint64_t slot = id & 0xffffffffu;
  if (slot >= slots_.size()) return nullptr;
  TimerSlot& timer = slots_[slot];
  if (!timer.pending || timer.generation != (id >> 32)) return nullptr;
  return &timer;
}

// Takes a pending timer out of the heap, frees its slot and hands back its
// callback, so the loop is consistent before the callback runs or dies.
TimerCallback Loop::TakeTimer(uint32_t slot) {
  TimerSlot& timer = slots_[slot];
  TimerCallback callback = std::move(timer.callback);
  timer.callback = nullptr;
  timer.pending = false;
  if (++timer.generation == 0) timer.generation = 1;
  const size_t index = timer.heap_index;
  free_slots_.push_back(slot);
  HeapRemove(index);
  return callback;
}

TimerId Loop::AddTimer(absl::Time when, TimerCallback callback) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  TimerSlot& timer = slots_[slot];
  timer.pending = true;
  timer.callback = std::move(callback);
  const TimerId id = (static_cast<uint64_t>(timer.generation) << 32) | slot;
  heap_.push_back(HeapEntry{when, next_seq_++, slot});
  SiftUp(heap_.size() - 1);
  return id;
}

bool Loop::Reschedule(TimerId id, absl::Time when) {
  TimerSlot* timer = FindTimer(id);
  if (timer == nullptr) return false;
  const size_t index = timer->heap_index;
  heap_[index].when = when;
  heap_[index].seq = next_seq_++;
  SiftUp(index);
  SiftDown(timer->heap_index);
  return true;
}

bool Loop::Cancel(TimerId id) {
  if (FindTimer(id) == nullptr) return false;
  // Destroyed here, after the heap is consistent: a captured object's
  // destructor may call back into the loop.
  TimerCallback doomed = TakeTimer(static_cast<uint32_t>(id & 0xffffffffu));
  return true;
}

void Loop::FireDueTimers() {
  const absl::Time now = clock_();
  // Only timers set before this pass fire in it: a callback that adds or
  // reschedules a timer for `now` gets it on the next iteration, so a
  // self-re-arming timer cannot keep the loop here forever.
  const uint64_t seq_limit = next_seq_;
  while (!heap_.empty() && heap_[0].when <= now && heap_[0].seq < seq_limit) {
    TimerCallback callback = TakeTimer(heap_[0].slot);
    if (callback) callback();
  }
}

// ---- posted work

void Loop::Post(std::function<void()> task) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    was_empty = posted_.empty();
    posted_.push_back(std::move(task));
  }
  // Only the first task into an empty queue needs to wake the loop: the loop
  // reads the eventfd before it takes the queue, so later tasks are either
  // taken with this one or find the queue empty and wake it again.
  if (was_empty) Wake();
}

void Loop::Wake() {
  const uint64_t one = 1;
  // EAGAIN means the counter is saturated, i.e. a wake-up is already pending.
  while (write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

void Loop::DrainWakeFd() {
  uint64_t count;
  while (read(wake_fd_, &count, sizeof(count)) < 0 && errno == EINTR) {
  }
}

void Loop::RunPosted() {
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    batch.swap(posted_);
  }
  for (auto& task : batch) {
    if (task) task();
  }
}

// ---- running

void Loop::Stop() {
  stop_requested_.store(true, std::memory_order_release);
  Wake();
}

absl::Status Loop::Run() {
  if (running_) {
    return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState,
                     "Run: called from a callback of the same loop");
  }
  while (!stop_requested_.exchange(false, std::memory_order_acq_rel)) {
    absl::Status status = RunOnce(absl::InfiniteDuration());
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status Loop::RunOnce(absl::Duration max_wait) {
  if (running_) {
    return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState,
                     "RunOnce: called from a callback of the same loop");
  }
  absl::Duration wait = max_wait;
  if (!heap_.empty()) wait = std::min(wait, heap_[0].when - clock_());
  if (stop_requested_.load(std::memory_order_acquire)) wait = absl::ZeroDuration();

  epoll_event events[kMaxEventsPerWait];
  const int n = epoll_wait(epoll_fd_, events, kMaxEventsPerWait, TimeoutMs(wait));
  if (n < 0 && errno != EINTR) return ErrnoError("epoll_wait", errno);

  running_ = true;
  ++iterations_;
  DispatchIo(events, n < 0 ? 0 : n);
  FireDueTimers();
  RunPosted();
  running_ = false;
  return absl::OkStatus();
}

// ---- graceful shutdown

absl::Status Loop::AddClosable(Closable* closable) {
  if (shutdown_phase_ != ShutdownPhase::kNone) {
    return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState,
                     "AddClosable: the loop is shutting down");
  }
  if (!closable_order_.emplace(closable, next_closable_).second) {
    return absl::AlreadyExistsError("AddClosable: already registered");
  }
  closables_[next_closable_++] = closable;
  return absl::OkStatus();
}

void Loop::RemoveClosable(Closable* closable) {
  auto it = closable_order_.find(closable);
  if (it == closable_order_.end()) return;
  closables_.erase(it->second);
  closable_order_.erase(it);
  MaybeFinishShutdown();
}

absl::Status Loop::Shutdown(absl::Duration bound, std::function<void()> done) {
  if (shutdown_phase_ != ShutdownPhase::kNone) {
    return MakeError(absl::StatusCode::kFailedPrecondition, kErrInvalidState,
                     "Shutdown: already called");
  }
  shutdown_phase_ = ShutdownPhase::kDraining;
  shutdown_done_ = std::move(done);
  const absl::Time deadline = clock_() + bound;
  // Armed first, so a closable that closes at once can find and cancel it.
  shutdown_timer_ = AddTimer(deadline, [this] { ForceRemainingClosed(); });
  // Keys, not iterators: a CloseGracefully may remove itself or any other.
  std::vector<uint64_t> order;
  order.reserve(closables_.size());
  for (const auto& [key, closable] : closables_) order.push_back(key);
  for (uint64_t key : order) {
    auto it = closables_.find(key);
    if (it != closables_.end()) it->second->CloseGracefully(deadline);
  }
  MaybeFinishShutdown();
  return absl::OkStatus();
}

void Loop::ForceRemainingClosed() {
  shutdown_timer_ = kNoTimer;
  while (!closables_.empty()) {
    Closable* closable = closables_.begin()->second;
    closable_order_.erase(closable);
    closables_.erase(closables_.begin());
    closable->ForceClose();  // may remove others: the loop re-reads the map
  }
  MaybeFinishShutdown();
}

void Loop::MaybeFinishShutdown() {
  if (shutdown_phase_ != ShutdownPhase::kDraining || !closables_.empty()) return;
  shutdown_phase_ = ShutdownPhase::kDone;
  if (shutdown_timer_ != kNoTimer) Cancel(shutdown_timer_);
  shutdown_timer_ = kNoTimer;
  if (shutdown_done_) Post(std::move(shutdown_done_));
}

}  // namespace epoll
}  // namespace tlsengine

#include "adapters/epoll/loop.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tlsengine {
namespace epoll {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr Interest kRead{/*read=*/true, /*write=*/false};
constexpr Interest kWrite{/*read=*/false, /*write=*/true};
constexpr Interest kNone{};

// A clock that moves only when told to; read on the loop thread only.
struct FakeClock {
  absl::Time now = absl::FromUnixSeconds(1700000000);
  Clock AsClock() {
    return [this] { return now; };
  }
};

// A connected AF_UNIX stream pair, closed on destruction unless released.
struct SocketPair {
  int fd[2] = {-1, -1};
  SocketPair() {
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0);
  }
  ~SocketPair() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
  void Close(int i) {
    close(fd[i]);
    fd[i] = -1;
  }
};

void WriteByte(int fd) { ASSERT_EQ(write(fd, "x", 1), 1); }

class LoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LoopOptions options;
    options.clock = clock_.AsClock();
    auto loop = Loop::Create(options);
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(loop).value();
  }
  // One iteration that never sleeps: the fake clock decides what is due.
  void Poll() { ASSERT_TRUE(loop_->RunOnce(absl::ZeroDuration()).ok()); }

  FakeClock clock_;
  std::unique_ptr<Loop> loop_;
};

// A loop on the real clock, for waits and threads.
class RealClockLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = Loop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(loop).value();
  }
  std::unique_ptr<Loop> loop_;
};

// ---- timers

TEST_F(LoopTest, TimersFireInDeadlineOrderThenInAddOrder) {
  std::vector<int> fired;
  const absl::Time t0 = clock_.now;
  loop_->AddTimer(t0 + absl::Seconds(3), [&] { fired.push_back(3); });
  loop_->AddTimer(t0 + absl::Seconds(1), [&] { fired.push_back(1); });
  loop_->AddTimer(t0 + absl::Seconds(2), [&] { fired.push_back(20); });
  loop_->AddTimer(t0 + absl::Seconds(2), [&] { fired.push_back(21); });
  EXPECT_EQ(loop_->pending_timers(), 4u);
  clock_.now = t0 + absl::Seconds(10);
  Poll();
  EXPECT_THAT(fired, ElementsAre(1, 20, 21, 3));
  EXPECT_EQ(loop_->pending_timers(), 0u);
}

TEST_F(LoopTest, TimerFiresAtItsTimeAndNotBefore) {
  int fired = 0;
  const absl::Time when = clock_.now + absl::Milliseconds(5);
  loop_->AddTimer(when, [&] { ++fired; });
  clock_.now = when - absl::Nanoseconds(1);
  Poll();
  EXPECT_EQ(fired, 0);
  clock_.now = when;
  Poll();
  EXPECT_EQ(fired, 1);
  Poll();
  EXPECT_EQ(fired, 1) << "a timer fires once";
}

TEST_F(LoopTest, RescheduleMovesATimerEarlierAndLater) {
  std::vector<std::string> fired;
  const absl::Time t0 = clock_.now;
  TimerId a = loop_->AddTimer(t0 + absl::Seconds(1), [&] { fired.push_back("a"); });
  TimerId b = loop_->AddTimer(t0 + absl::Seconds(5), [&] { fired.push_back("b"); });
  EXPECT_TRUE(loop_->Reschedule(a, t0 + absl::Seconds(8)));
  EXPECT_TRUE(loop_->Reschedule(b, t0 + absl::Seconds(2)));
  clock_.now = t0 + absl::Seconds(3);
  Poll();
  EXPECT_THAT(fired, ElementsAre("b"));
  clock_.now = t0 + absl::Seconds(8);
  Poll();
  EXPECT_THAT(fired, ElementsAre("b", "a"));
  EXPECT_FALSE(loop_->Reschedule(a, t0 + absl::Seconds(9))) << "a has fired";
  EXPECT_FALSE(loop_->Reschedule(kNoTimer, t0));
}

TEST_F(LoopTest, CancelledTimerNeverFires) {
  int fired = 0;
  const absl::Time t0 = clock_.now;
  TimerId a = loop_->AddTimer(t0 + absl::Seconds(1), [&] { fired += 1; });
  loop_->AddTimer(t0 + absl::Seconds(1), [&] { fired += 10; });
  EXPECT_TRUE(loop_->Cancel(a));
  EXPECT_FALSE(loop_->Cancel(a)) << "already cancelled";
  EXPECT_FALSE(loop_->Reschedule(a, t0));
  clock_.now = t0 + absl::Seconds(1);
  Poll();
  EXPECT_EQ(fired, 10);
  // The next timer reuses a's slot; a's id must not reach it.
  TimerId b = loop_->AddTimer(t0 + absl::Seconds(2), [&] { fired += 100; });
  EXPECT_NE(a, b);
  EXPECT_FALSE(loop_->Cancel(a));
  EXPECT_FALSE(loop_->Reschedule(a, t0));
  EXPECT_EQ(loop_->pending_timers(), 1u);
  clock_.now = t0 + absl::Seconds(2);
  Poll();
  EXPECT_EQ(fired, 110);
}

TEST_F(LoopTest, HundredThousandTimersFireInOrderWithCancelsAndReschedules) {
  constexpr int kTimers = 100000;
  const absl::Time t0 = clock_.now;
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> ms(0, 60000);
  std::vector<TimerId> ids;
  ids.reserve(kTimers);
  std::vector<absl::Time> expected_when(kTimers);
  std::vector<absl::Time> fired_when;
  fired_when.reserve(kTimers);
  for (int i = 0; i < kTimers; ++i) {
    expected_when[i] = t0 + absl::Milliseconds(ms(rng));
    ids.push_back(loop_->AddTimer(expected_when[i], [&, i] {
      EXPECT_GE(clock_.now, expected_when[i]);
      fired_when.push_back(expected_when[i]);
    }));
  }
  int cancelled = 0;
  for (int i = 0; i < kTimers; i += 10) {
    ASSERT_TRUE(loop_->Cancel(ids[i]));
    ++cancelled;
  }
  for (int i = 5; i < kTimers; i += 10) {
    expected_when[i] = t0 + absl::Milliseconds(ms(rng));
    ASSERT_TRUE(loop_->Reschedule(ids[i], expected_when[i]));
  }
  ASSERT_EQ(loop_->pending_timers(), static_cast<size_t>(kTimers - cancelled));
  // Walk the clock forward in 1 s steps; each step fires what has come due.
  for (int s = 0; s <= 61; ++s) {
    clock_.now = t0 + absl::Seconds(s);
    Poll();
  }
  EXPECT_EQ(fired_when.size(), static_cast<size_t>(kTimers - cancelled));
  EXPECT_TRUE(std::is_sorted(fired_when.begin(), fired_when.end()));
  EXPECT_EQ(loop_->pending_timers(), 0u);
}

TEST_F(LoopTest, TimerCallbackMayCancelOthersAndItself) {
  std::vector<int> fired;
  const absl::Time t0 = clock_.now;
  TimerId second = kNoTimer;
  TimerId first = kNoTimer;
  first = loop_->AddTimer(t0, [&] {
    fired.push_back(1);
    EXPECT_FALSE(loop_->Cancel(first)) << "a firing timer is no longer pending";
    EXPECT_TRUE(loop_->Cancel(second));
  });
  second = loop_->AddTimer(t0, [&] { fired.push_back(2); });
  loop_->AddTimer(t0, [&] { fired.push_back(3); });
  Poll();
  EXPECT_THAT(fired, ElementsAre(1, 3));
}

TEST_F(LoopTest, TimerAddedForNowByATimerFiresOnTheNextIteration) {
  int rearmed = 0;
  std::function<void()> rearm = [&] {
    ++rearmed;
    loop_->AddTimer(clock_.now, rearm);
  };
  loop_->AddTimer(clock_.now, rearm);
  Poll();
  EXPECT_EQ(rearmed, 1) << "a timer armed for now must not run in the same pass";
  Poll();
  EXPECT_EQ(rearmed, 2);
}

// Real clock: epoll_wait's timeout comes from the heap top, so Run() wakes
// for the timer with no other event.
TEST_F(RealClockLoopTest, RunWakesForTheEarliestTimer) {
  Loop& loop = *loop_;
  const absl::Time start = absl::Now();
  bool fired = false;
  loop.AddTimer(start + absl::Hours(1), [] {});
  loop.AddTimer(start + absl::Milliseconds(30), [&] {
    fired = true;
    loop.Stop();
  });
  ASSERT_TRUE(loop.Run().ok());
  EXPECT_TRUE(fired);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_EQ(loop.pending_timers(), 1u);
}

TEST_F(RealClockLoopTest, RunOnceWaitsAtMostMaxWait) {
  const absl::Time start = absl::Now();
  ASSERT_TRUE(loop_->RunOnce(absl::Milliseconds(20)).ok());
  const absl::Duration waited = absl::Now() - start;
  // absl::Now is the wall clock, epoll's timeout the monotonic one: allow a
  // little skew, while a RunOnce that ignored max_wait would return at once.
  EXPECT_GE(waited, absl::Milliseconds(15));
  EXPECT_LT(waited, absl::Seconds(10));
}

// ---- fd watches

TEST_F(LoopTest, WatchFiresOnReadReadiness) {
  SocketPair sp;
  std::vector<Ready> seen;
  ASSERT_TRUE(loop_->Watch(sp.fd[0], kRead, [&](Ready r) { seen.push_back(r); }).ok());
  Poll();
  EXPECT_THAT(seen, IsEmpty()) << "nothing to read yet";
  WriteByte(sp.fd[1]);
  Poll();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].read);
  EXPECT_FALSE(seen[0].write) << "write was not asked for";
  ASSERT_TRUE(loop_->Unwatch(sp.fd[0]).ok());
}

TEST_F(LoopTest, WatchFiresOnWriteReadiness) {
  SocketPair sp;
  std::vector<Ready> seen;
  ASSERT_TRUE(loop_->Watch(sp.fd[0], kWrite, [&](Ready r) { seen.push_back(r); }).ok());
  Poll();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].write);
  EXPECT_FALSE(seen[0].read);
  ASSERT_TRUE(loop_->Unwatch(sp.fd[0]).ok());
}

TEST_F(LoopTest, WatchOnPipeReportsReadThenHangupWhenWriterCloses) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
  std::vector<Ready> seen;
  ASSERT_TRUE(loop_->Watch(p[0], kRead, [&](Ready r) { seen.push_back(r); }).ok());
  WriteByte(p[1]);
  Poll();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].read);
  char c;
  ASSERT_EQ(read(p[0], &c, 1), 1);
  close(p[1]);
  Poll();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[1].hangup);
  ASSERT_TRUE(loop_->Unwatch(p[0]).ok());
  close(p[0]);
}

TEST_F(LoopTest, LevelTriggeredFiresUntilDrained) {
  SocketPair sp;
  int reads = 0;
  ASSERT_TRUE(loop_->Watch(sp.fd[0], kRead, [&](Ready) { ++reads; }).ok());
  WriteByte(sp.fd[1]);
  Poll();
  Poll();
  EXPECT_EQ(reads, 2) << "still readable: level-triggered fires again";
  char c;
  ASSERT_EQ(read(sp.fd[0], &c, 1), 1);
  Poll();
  EXPECT_EQ(reads, 2);
  ASSERT_TRUE(loop_->Unwatch(sp.fd[0]).ok());
}

TEST_F(LoopTest, ModifyChangesInterestAndEmptyInterestSilencesTheFd) {
  SocketPair sp;
  std::vector<Ready> seen;
  ASSERT_TRUE(loop_->Watch(sp.fd[0], kWrite, [&](Ready r) { seen.push_back(r); }).ok());
  Poll();
  ASSERT_EQ(seen.size(), 1u);
  ASSERT_TRUE(loop_->Modify(sp.fd[0], kRead).ok());
  Poll();
  EXPECT_EQ(seen.size(), 1u) << "writable, but write is no longer asked for";
  WriteByte(sp.fd[1]);
  ASSERT_TRUE(loop_->Modify(sp.fd[0], kNone).ok());
  Poll();
  EXPECT_EQ(seen.size(), 1u) << "empty interest: readable, yet silent";
  sp.Close(1);  // even a hangup stays silent
  Poll();
  EXPECT_EQ(seen.size(), 1u);
  ASSERT_TRUE(loop_->Modify(sp.fd[0], kRead).ok());
  Poll();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[1].read);
  ASSERT_TRUE(loop_->Unwatch(sp.fd[0]).ok());
}

TEST_F(LoopTest, WatchStartedWithEmptyInterestCanBeArmedLater) {
  SocketPair sp;
  int calls = 0;
  ASSERT_TRUE(loop_->Watch(sp.fd[0], kNone, [&](Ready) { ++calls; }).ok());
  WriteByte(sp.fd[1]);
  Poll();
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(loop_->Modify(sp.fd[0], kRead).ok());
  Poll();
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(loop_->Unwatch(sp.fd[0]).ok());
}

TEST_F(LoopTest, WatchErrorsCarryCodesAndErrnoText) {
  SocketPair sp;
  auto noop = [](Ready) {};
  absl::Status negative = loop_->Watch(-1, kRead, noop);
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(negative), "ERR_INVALID_ARG_VALUE");

  absl::Status empty_cb = loop_->Watch(sp.fd[0], kRead, WatchCallback());
  EXPECT_EQ(empty_cb.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty_cb.message(), HasSubstr("empty callback"));

  ASSERT_TRUE(loop_->Watch(sp.fd[0], kRead, noop).ok());
  absl::Status twice = loop_->Watch(sp.fd[0], kWrite, noop);
  EXPECT_EQ(twice.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(twice.message(), HasSubstr("already watched"));
  ASSERT_TRUE(loop_->Unwatch(sp.fd[0]).ok());

  absl::Status unwatch = loop_->Unwatch(sp.fd[0]);
  EXPECT_EQ(unwatch.code(), absl::StatusCode::kNotFound);
  absl::Status modify = loop_->Modify(sp.fd[0], kRead);
  EXPECT_EQ(modify.code(), absl::StatusCode::kNotFound);

  // epoll refuses regular files with EPERM.
  char path[] = "/tmp/loop_test_XXXXXX";
  const int file = mkstemp(path);
  ASSERT_GE(file, 0);
  unlink(path);
  absl::Status regular = loop_->Watch(file, kRead, noop);
  EXPECT_EQ(regular.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(regular), "EPERM");
  EXPECT_THAT(regular.message(), HasSubstr("epoll_ctl"));
  EXPECT_THAT(regular.message(), HasSubstr("Operation not permitted"));
  close(file);
  // A refused Watch leaves no watch behind.
  EXPECT_EQ(loop_->Unwatch(file).code(), absl::StatusCode::kNotFound);
}

// ---- removal during dispatch

TEST_F(LoopTest, CallbackMayUnwatchAndCloseItsOwnFd) {
  SocketPair sp;
  int calls = 0;
  // The callback owns a large capture, so ASan sees a use after its Unwatch.
  auto payload = std::make_shared<std::vector<int>>(1000, 7);
  ASSERT_TRUE(loop_->Watch(sp.fd[0], kRead, [&, payload](Ready) {
                      ++calls;
                      EXPECT_TRUE(loop_->Unwatch(sp.fd[0]).ok());
                      sp.Close(0);
                      EXPECT_EQ(payload->at(999), 7) << "the callback outlives its Unwatch";
                    })
                  .ok());
  payload.reset();
  WriteByte(sp.fd[1]);
  Poll();
  Poll();
  EXPECT_EQ(calls, 1);
}

TEST_F(LoopTest, CallbackMayUnwatchAnotherReadyFd) {
  SocketPair a, b;
  int calls_a = 0, calls_b = 0;
  // Both become ready in the same iteration; whichever runs first removes
  // and closes the other, whose collected readiness must then be dropped.
  ASSERT_TRUE(loop_->Watch(a.fd[0], kRead, [&](Ready) {
                      ++calls_a;
                      if (b.fd[0] >= 0) {
                        EXPECT_TRUE(loop_->Unwatch(b.fd[0]).ok());
                        b.Close(0);
                      }
                    })
                  .ok());
  ASSERT_TRUE(loop_->Watch(b.fd[0], kRead, [&](Ready) {
                      ++calls_b;
                      if (a.fd[0] >= 0) {
                        EXPECT_TRUE(loop_->Unwatch(a.fd[0]).ok());
                        a.Close(0);
                      }
                    })
                  .ok());
  WriteByte(a.fd[1]);
  WriteByte(b.fd[1]);
  Poll();
  EXPECT_EQ(calls_a + calls_b, 1);
  const int survivor = a.fd[0] >= 0 ? a.fd[0] : b.fd[0];
  ASSERT_TRUE(loop_->Unwatch(survivor).ok());
}

TEST_F(LoopTest, StaleReadinessIsNotDeliveredToAWatchOnAReusedFd) {
  SocketPair a, b;
  std::unique_ptr<SocketPair> fresh;
  int calls_fresh = 0, calls_total = 0;
  auto replace = [&](SocketPair& other) {
    EXPECT_TRUE(loop_->Unwatch(other.fd[0]).ok());
    other.Close(0);
    // Likely reuses other's fd number; the new socket is not readable.
    fresh = std::make_unique<SocketPair>();
    EXPECT_TRUE(loop_->Watch(fresh->fd[0], kRead, [&](Ready) { ++calls_fresh; }).ok());
  };
  ASSERT_TRUE(loop_->Watch(a.fd[0], kRead, [&](Ready) {
                      if (++calls_total == 1) replace(b);
                    })
                  .ok());
  ASSERT_TRUE(loop_->Watch(b.fd[0], kRead, [&](Ready) {
                      if (++calls_total == 1) replace(a);
                    })
                  .ok());
  WriteByte(a.fd[1]);
  WriteByte(b.fd[1]);
  Poll();
  EXPECT_EQ(calls_total, 1);
  EXPECT_EQ(calls_fresh, 0) << "readiness of the closed fd reached its successor";
  ASSERT_TRUE(loop_->Unwatch(fresh->fd[0]).ok());
  ASSERT_TRUE(loop_->Unwatch(a.fd[0] >= 0 ? a.fd[0] : b.fd[0]).ok());
}

TEST_F(LoopTest, CallbackMayModifyAnotherWatchInTheSameBatch) {
  SocketPair a, b;
  int calls_a = 0, calls_b = 0;
  ASSERT_TRUE(loop_->Watch(a.fd[0], kWrite, [&](Ready) {
                      ++calls_a;
                      EXPECT_TRUE(loop_->Modify(b.fd[0], kRead).ok());
                    })
                  .ok());
  ASSERT_TRUE(loop_->Watch(b.fd[0], kWrite, [&](Ready r) {
                      ++calls_b;
                      EXPECT_TRUE(loop_->Modify(a.fd[0], kRead).ok());
                    })
                  .ok());
  Poll();
  // Both were writable; the first to run turned the other to read, so the
  // other's collected write readiness is filtered out.
  ASSERT_EQ(calls_a + calls_b, 1);
  const bool a_ran = calls_a == 1;
  Poll();
  // The one that ran still wants write and fires again; the other waits
  // for a read that never comes.
  EXPECT_EQ(a_ran ? calls_a : calls_b, 2);
  EXPECT_EQ(a_ran ? calls_b : calls_a, 0);
  ASSERT_TRUE(loop_->Unwatch(a.fd[0]).ok());
  ASSERT_TRUE(loop_->Unwatch(b.fd[0]).ok());
}

TEST_F(LoopTest, WatchAndTimerCallbacksMayRemoveEachOther) {
  SocketPair sp;
  int timer_calls = 0, watch_calls = 0;
  TimerId timer = loop_->AddTimer(clock_.now, [&] { ++timer_calls; });
  ASSERT_TRUE(loop_->Watch(sp.fd[0], kWrite, [&](Ready) {
                      // I/O runs before timers, so the due timer is still pending.
                      if (++watch_calls == 1) {
                        EXPECT_TRUE(loop_->Cancel(timer));
                      }
                    })
                  .ok());
  Poll();
  EXPECT_EQ(watch_calls, 1);
  EXPECT_EQ(timer_calls, 0);
  loop_->AddTimer(clock_.now, [&] {
    ++timer_calls;
    EXPECT_TRUE(loop_->Unwatch(sp.fd[0]).ok());
  });
  Poll();  // the watch fires once more (still writable), then the timer removes it
  EXPECT_EQ(watch_calls, 2);
  EXPECT_EQ(timer_calls, 1);
  Poll();
  EXPECT_EQ(watch_calls, 2);
}

// ---- posted work and threads

TEST_F(RealClockLoopTest, PostFromFourThreadsDeliversEachItemOnceInPerThreadOrder) {
  Loop& loop = *loop_;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::vector<int>> got(kThreads);  // touched on the loop thread only
  int total = 0;
  const std::thread::id loop_thread = std::this_thread::get_id();
  bool all_on_loop_thread = true;
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        loop.Post([&, t, i] {
          all_on_loop_thread &= std::this_thread::get_id() == loop_thread;
          got[t].push_back(i);
          if (++total == kThreads * kPerThread) loop.Stop();
        });
      }
    });
  }
  absl::Status run = loop.Run();
  for (auto& poster : posters) poster.join();
  ASSERT_TRUE(run.ok()) << run;
  EXPECT_TRUE(all_on_loop_thread);
  EXPECT_EQ(total, kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(got[t].size(), static_cast<size_t>(kPerThread)) << "thread " << t;
    for (int i = 0; i < kPerThread; ++i) {
      ASSERT_EQ(got[t][i], i) << "thread " << t << " out of order";
    }
  }
}

TEST_F(RealClockLoopTest, TaskPostedByATaskRunsOnTheNextIteration) {
  Loop& loop = *loop_;
  std::vector<int> ran;
  loop.Post([&] {
    ran.push_back(1);
    loop.Post([&] { ran.push_back(2); });
  });
  ASSERT_TRUE(loop.RunOnce(absl::ZeroDuration()).ok());
  EXPECT_THAT(ran, ElementsAre(1));
  // The nested Post woke the eventfd, so even an unbounded wait returns.
  ASSERT_TRUE(loop.RunOnce(absl::InfiniteDuration()).ok());
  EXPECT_THAT(ran, ElementsAre(1, 2));
}

TEST_F(RealClockLoopTest, StopFromAnotherThreadEndsRun) {
  Loop& loop = *loop_;
  std::atomic<bool> running{false};
  loop.Post([&] { running = true; });
  std::thread stopper([&] {
    while (!running) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // Run is blocked in epoll_wait
    loop.Stop();
  });
  absl::Status run = loop.Run();  // no timers, no fds: only Stop ends it
  stopper.join();
  ASSERT_TRUE(run.ok()) << run;
  EXPECT_TRUE(running);
}

TEST_F(RealClockLoopTest, StopBeforeRunMakesRunReturnAtOnceAndOnlyOnce) {
  Loop& loop = *loop_;
  loop.Stop();
  ASSERT_TRUE(loop.Run().ok());
  // The stop was consumed: the next Run needs its own Stop.
  bool ran = false;
  loop.Post([&] {
    ran = true;
    loop.Stop();
  });
  ASSERT_TRUE(loop.Run().ok());
  EXPECT_TRUE(ran);
}

TEST_F(LoopTest, RunFromACallbackIsRefused) {
  absl::Status nested_run, nested_once;
  loop_->Post([&] {
    nested_run = loop_->Run();
    nested_once = loop_->RunOnce(absl::ZeroDuration());
  });
  Poll();
  EXPECT_EQ(nested_run.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(nested_once.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(NodeCode(nested_run), "ERR_TLS_INVALID_STATE");
}

// ---- shutdown

// A closable that records what it was asked and closes when told to.
class FakeClosable : public Closable {
 public:
  FakeClosable(Loop& loop, std::string name, std::vector<std::string>& log, bool graceful)
      : loop_(loop), name_(std::move(name)), log_(log), graceful_(graceful) {}
  void CloseGracefully(absl::Time deadline) override {
    log_.push_back(name_ + ":graceful");
    deadline_ = deadline;
    if (graceful_) {
      closed_ = true;
      loop_.RemoveClosable(this);
    }
  }
  void ForceClose() override {
    log_.push_back(name_ + ":force");
    closed_ = true;
    if (on_force) on_force();
  }
  bool closed() const { return closed_; }
  absl::Time deadline() const { return deadline_; }
  std::function<void()> on_force;

 private:
  Loop& loop_;
  std::string name_;
  std::vector<std::string>& log_;
  bool graceful_;
  bool closed_ = false;
  absl::Time deadline_ = absl::InfinitePast();
};

TEST_F(LoopTest, ShutdownClosesGracefullyThenForcesTheRestAtTheBound) {
  std::vector<std::string> log;
  FakeClosable quick(*loop_, "quick", log, /*graceful=*/true);
  FakeClosable stuck(*loop_, "stuck", log, /*graceful=*/false);
  ASSERT_TRUE(loop_->AddClosable(&quick).ok());
  ASSERT_TRUE(loop_->AddClosable(&stuck).ok());
  int done = 0;
  const absl::Time t0 = clock_.now;
  ASSERT_TRUE(loop_->Shutdown(absl::Seconds(5), [&] { ++done; }).ok());
  EXPECT_THAT(log, ElementsAre("quick:graceful", "stuck:graceful"));
  EXPECT_EQ(stuck.deadline(), t0 + absl::Seconds(5));
  EXPECT_TRUE(quick.closed());
  EXPECT_FALSE(stuck.closed());

  clock_.now = t0 + absl::Seconds(5) - absl::Nanoseconds(1);
  Poll();
  EXPECT_EQ(done, 0) << "the bound has not passed";
  EXPECT_FALSE(stuck.closed());

  clock_.now = t0 + absl::Seconds(5);
  Poll();
  EXPECT_TRUE(stuck.closed());
  EXPECT_THAT(log, ElementsAre("quick:graceful", "stuck:graceful", "stuck:force"));
  EXPECT_EQ(done, 1);
  Poll();
  EXPECT_EQ(done, 1) << "done runs once";
  loop_->RemoveClosable(&stuck);  // already gone: a no-op
}

TEST_F(LoopTest, ShutdownCompletesBeforeTheBoundWhenAllCloseInTime) {
  std::vector<std::string> log;
  FakeClosable a(*loop_, "a", log, /*graceful=*/false);
  FakeClosable b(*loop_, "b", log, /*graceful=*/false);
  ASSERT_TRUE(loop_->AddClosable(&a).ok());
  ASSERT_TRUE(loop_->AddClosable(&b).ok());
  int done = 0;
  ASSERT_TRUE(loop_->Shutdown(absl::Seconds(5), [&] { ++done; }).ok());
  loop_->RemoveClosable(&a);  // a finished its close_notify exchange
  Poll();
  EXPECT_EQ(done, 0);
  loop_->Post([&] { loop_->RemoveClosable(&b); });
  Poll();
  Poll();
  EXPECT_EQ(done, 1);
  clock_.now += absl::Seconds(10);
  Poll();
  EXPECT_THAT(log, ElementsAre("a:graceful", "b:graceful")) << "nothing forced";
  EXPECT_EQ(loop_->pending_timers(), 0u) << "the bound's timer was cancelled";
}

TEST_F(LoopTest, ShutdownWithNothingRegisteredRunsDoneOnTheNextIteration) {
  int done = 0;
  ASSERT_TRUE(loop_->Shutdown(absl::Seconds(1), [&] { ++done; }).ok());
  EXPECT_EQ(done, 0) << "never from inside Shutdown";
  Poll();
  EXPECT_EQ(done, 1);
}

TEST_F(LoopTest, ForceCloseMayRemoveOtherClosables) {
  std::vector<std::string> log;
  FakeClosable a(*loop_, "a", log, /*graceful=*/false);
  FakeClosable b(*loop_, "b", log, /*graceful=*/false);
  FakeClosable c(*loop_, "c", log, /*graceful=*/false);
  a.on_force = [&] { loop_->RemoveClosable(&b); };  // a listener closing its child
  for (Closable* x : {static_cast<Closable*>(&a), static_cast<Closable*>(&b),
                      static_cast<Closable*>(&c)}) {
    ASSERT_TRUE(loop_->AddClosable(x).ok());
  }
  int done = 0;
  ASSERT_TRUE(loop_->Shutdown(absl::Milliseconds(1), [&] { ++done; }).ok());
  clock_.now += absl::Milliseconds(1);
  Poll();
  EXPECT_THAT(log, ElementsAre("a:graceful", "b:graceful", "c:graceful", "a:force", "c:force"));
  Poll();
  EXPECT_EQ(done, 1);
}

TEST_F(LoopTest, ShutdownIsOneShotAndRefusesNewClosables) {
  std::vector<std::string> log;
  FakeClosable a(*loop_, "a", log, /*graceful=*/true);
  ASSERT_TRUE(loop_->AddClosable(&a).ok());
  absl::Status again = loop_->AddClosable(&a);
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  loop_->RemoveClosable(&a);
  ASSERT_TRUE(loop_->Shutdown(absl::Seconds(1), nullptr).ok());
  absl::Status late = loop_->AddClosable(&a);
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(NodeCode(late), "ERR_TLS_INVALID_STATE");
  absl::Status second = loop_->Shutdown(absl::Seconds(1), [] {});
  EXPECT_EQ(second.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.message(), HasSubstr("already"));
  Poll();
  EXPECT_THAT(log, IsEmpty());
}

}  // namespace
}  // namespace epoll
}  // namespace tlsengine

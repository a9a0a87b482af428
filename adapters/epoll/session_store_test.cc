#include "adapters/epoll/session_store.h"

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "core/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tlsengine {
namespace epoll {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);
const absl::Time kLater = kNow + absl::Hours(1);

TEST(MemorySessionStoreTest, PutThenGetReturnsTheSession) {
  MemorySessionStore store(10, 1000);
  ASSERT_TRUE(store.Put("id-1", "der-1", kLater).ok());
  EXPECT_THAT(store.Get("id-1", kNow), Optional(std::string("der-1")));
  EXPECT_EQ(store.Get("id-2", kNow), std::nullopt);
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.bytes(), 4u + 5u);
}

TEST(MemorySessionStoreTest, PutReplacesAnExistingEntry) {
  MemorySessionStore store(10, 1000);
  ASSERT_TRUE(store.Put("id", "first", kLater).ok());
  ASSERT_TRUE(store.Put("id", "second!", kLater).ok());
  EXPECT_THAT(store.Get("id", kNow), Optional(std::string("second!")));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.bytes(), 2u + 7u);
}

TEST(MemorySessionStoreTest, EvictsTheLeastRecentlyUsedWhenFullByCount) {
  MemorySessionStore store(3, 1000);
  ASSERT_TRUE(store.Put("a", "1", kLater).ok());
  ASSERT_TRUE(store.Put("b", "2", kLater).ok());
  ASSERT_TRUE(store.Put("c", "3", kLater).ok());
  ASSERT_TRUE(store.Get("a", kNow).has_value());  // a is now the most recent
  ASSERT_TRUE(store.Put("d", "4", kLater).ok());  // evicts b
  EXPECT_EQ(store.size(), 3u);
  EXPECT_EQ(store.Get("b", kNow), std::nullopt);
  EXPECT_TRUE(store.Get("a", kNow).has_value());
  EXPECT_TRUE(store.Get("c", kNow).has_value());
  EXPECT_TRUE(store.Get("d", kNow).has_value());
}

TEST(MemorySessionStoreTest, EvictsTheLeastRecentlyUsedWhenFullByBytes) {
  MemorySessionStore store(100, 30);
  ASSERT_TRUE(store.Put("a", std::string(9, 'x'), kLater).ok());  // 10 bytes
  ASSERT_TRUE(store.Put("b", std::string(9, 'y'), kLater).ok());  // 20
  ASSERT_TRUE(store.Put("c", std::string(9, 'z'), kLater).ok());  // 30: full
  ASSERT_TRUE(store.Get("a", kNow).has_value());
  // 19 bytes need two entries to go: b, then c (a was used more recently).
  ASSERT_TRUE(store.Put("d", std::string(18, 'w'), kLater).ok());
  EXPECT_EQ(store.bytes(), 10u + 19u);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.Get("b", kNow), std::nullopt);
  EXPECT_EQ(store.Get("c", kNow), std::nullopt);
  EXPECT_TRUE(store.Get("a", kNow).has_value());
  EXPECT_TRUE(store.Get("d", kNow).has_value());
}

TEST(MemorySessionStoreTest, AHostileStreamOfSessionsStaysWithinBothBounds) {
  MemorySessionStore store(50, 4096);
  for (int i = 0; i < 10000; ++i) {
    const std::string id = absl::StrCat("client-", i);
    ASSERT_TRUE(store.Put(id, std::string(100 + i % 300, 's'), kLater).ok());
    ASSERT_LE(store.size(), 50u);
    ASSERT_LE(store.bytes(), 4096u);
  }
  EXPECT_TRUE(store.Get("client-9999", kNow).has_value()) << "the newest survives";
  EXPECT_EQ(store.Get("client-0", kNow), std::nullopt);
}

TEST(MemorySessionStoreTest, EntryExpiresAtItsTime) {
  MemorySessionStore store(10, 1000);
  const absl::Time expires = kNow + absl::Seconds(300);
  ASSERT_TRUE(store.Put("id", "der", expires).ok());
  EXPECT_TRUE(store.Get("id", expires - absl::Nanoseconds(1)).has_value());
  EXPECT_EQ(store.Get("id", expires), std::nullopt);
  EXPECT_EQ(store.size(), 0u) << "an expired entry found by Get is removed";
  EXPECT_EQ(store.bytes(), 0u);
  EXPECT_EQ(store.Get("id", kNow), std::nullopt) << "gone, even for an earlier now";
}

TEST(MemorySessionStoreTest, DeleteForgetsAnEntry) {
  MemorySessionStore store(10, 1000);
  ASSERT_TRUE(store.Put("id", "der", kLater).ok());
  store.Delete("id");
  EXPECT_EQ(store.Get("id", kNow), std::nullopt);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.bytes(), 0u);
  store.Delete("never-stored");  // a no-op
  EXPECT_EQ(store.size(), 0u);
}

TEST(MemorySessionStoreTest, RefusesIdsOverThirtyTwoBytesAndEmptyOnes) {
  MemorySessionStore store(10, 1000);
  ASSERT_TRUE(store.Put(std::string(32, 'i'), "der", kLater).ok());
  absl::Status big = store.Put(std::string(33, 'i'), "der", kLater);
  EXPECT_EQ(big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(big), "ERR_INVALID_ARG_VALUE");
  EXPECT_THAT(big.message(), HasSubstr("session id is 33 bytes; TLS allows at most 32"));
  absl::Status empty = store.Put("", "der", kLater);
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.message(), HasSubstr("session id is empty"));
  EXPECT_EQ(store.size(), 1u);
}

TEST(MemorySessionStoreTest, RefusesSessionsThatAreEmptyOversizedOrNeverFit) {
  MemorySessionStore store(10, 100);
  absl::Status empty = store.Put("id", "", kLater);
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.message(), HasSubstr("session is empty"));

  absl::Status huge = store.Put("id", std::string(kMaxSessionBytes + 1, 'x'), kLater);
  EXPECT_EQ(huge.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeCode(huge), "ERR_INVALID_ARG_VALUE");
  EXPECT_THAT(huge.message(), HasSubstr("at most 65536"));

  ASSERT_TRUE(store.Put("keep", "der", kLater).ok());
  absl::Status too_big = store.Put("id", std::string(99, 'x'), kLater);  // 101 > 100
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_big.message(), HasSubstr("never fits"));
  EXPECT_TRUE(store.Get("keep", kNow).has_value()) << "a refused Put evicts nothing";

  MemorySessionStore no_room(0, 1000);
  absl::Status zero = no_room.Put("id", "der", kLater);
  EXPECT_EQ(zero.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(no_room.size(), 0u);
}

// Four threads share one store, as four loops of a server would.
TEST(MemorySessionStoreTest, ThreadSafeFromFourThreads) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  // Room for everything: each thread must find each of its own sessions.
  MemorySessionStore roomy(kThreads * kPerThread, kThreads * kPerThread * 64);
  // Too small: eviction races with Get and Delete from every thread.
  MemorySessionStore tight(64, 2048);
  std::vector<int> misses(kThreads, 0);
  std::vector<int> put_failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = absl::StrCat("t", t, "-", i);
        const std::string der = absl::StrCat("session-", t, "-", i);
        if (!roomy.Put(id, der, kLater).ok()) ++put_failures[t];
        std::optional<std::string> got = roomy.Get(id, kNow);
        if (!got.has_value() || *got != der) ++misses[t];
        if (!tight.Put(id, der, kLater).ok()) ++put_failures[t];
        tight.Get(absl::StrCat("t", (t + 1) % kThreads, "-", i), kNow);
        if (i % 3 == 0) tight.Delete(absl::StrCat("t", (t + 2) % kThreads, "-", i - 1));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(put_failures[t], 0) << "thread " << t;
    EXPECT_EQ(misses[t], 0) << "thread " << t;
  }
  EXPECT_EQ(roomy.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_LE(tight.size(), 64u);
  EXPECT_LE(tight.bytes(), 2048u);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      ASSERT_THAT(roomy.Get(absl::StrCat("t", t, "-", i), kNow),
                  Optional(absl::StrCat("session-", t, "-", i)));
    }
  }
}

}  // namespace
}  // namespace epoll
}  // namespace tlsengine

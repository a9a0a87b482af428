// The Controller's threading, for TSan: caller threads drive one Controller
// at once while its loop thread serves the connections (echo and hold
// mode, the held-bytes limit and its resume, live changes, WatchEvents).
// No gRPC here: Debian's gRPC and Abseil are not built for TSan, which
// cannot see their locking (see scripts/test), so the service's threads are
// tested where they are ours: the loop and the mailboxes of controller.cc.
#include <openssl/crypto.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/grpc/controller.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace control {
namespace {

// A call that must succeed: its value (a default one after the failure).
template <typename T>
T Ok(absl::StatusOr<T> r) {
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : T();
}

// The thread of every SSL_CTX made in this process from the first
// CountContextBuilds() on: an ex_data callback OpenSSL runs in SSL_CTX_new
// (the test's own; the library registers none).
struct ContextBuilds {
  std::mutex mu;
  std::vector<std::thread::id> threads;  // guarded by mu
};
ContextBuilds& Builds() {
  static ContextBuilds* builds = new ContextBuilds();
  return *builds;
}
void OnNewContext(void*, void*, CRYPTO_EX_DATA*, int, long, void*) {
  std::lock_guard<std::mutex> l(Builds().mu);
  Builds().threads.push_back(std::this_thread::get_id());
}
void CountContextBuilds() {
  static const int index = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, nullptr, &OnNewContext, nullptr, nullptr);
  ASSERT_GE(index, 0);
}
// The threads of the builds since the last call.
std::vector<std::thread::id> TakeBuilds() {
  std::lock_guard<std::mutex> l(Builds().mu);
  std::vector<std::thread::id> out;
  out.swap(Builds().threads);
  return out;
}

class ControllerThreadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ControllerOptions o;
    o.limits.max_connection_buffer = 16 << 10;  // small, so hold mode pauses and resumes
    absl::StatusOr<std::unique_ptr<Controller>> c = Controller::Create(o);
    ASSERT_TRUE(c.ok()) << c.status();
    c_ = *std::move(c);
    v1::CreateContextRequest server;
    server.add_cert(tlsengine::testing::Chain("server-rsa"));
    server.add_key(tlsengine::testing::Key("server-rsa"));
    server_ctx_ = Ok(c_->CreateContext(server)).context_id();
    v1::CreateContextRequest client;
    client.add_ca(tlsengine::testing::Cert("ca1"));
    client_ctx_ = Ok(c_->CreateContext(client)).context_id();
  }
  v1::ListenResponse Listen(const std::string& mode) {
    v1::ListenRequest req;
    req.set_context_id(server_ctx_);
    req.set_host("127.0.0.1");
    req.set_mode(mode);
    return Ok(c_->Listen(req));
  }
  std::string Connect(int port) {
    v1::ConnectRequest req;
    req.set_port(port);
    req.set_servername("localhost");
    req.set_context_id(client_ctx_);
    return Ok(c_->Connect(req)).connection_id();
  }
  // Reads `n` bytes from `id` (bounded in time).
  std::string Read(const std::string& id, size_t n) {
    v1::ReadRequest req;
    req.set_connection_id(id);
    req.set_max_bytes(n);
    req.set_timeout(20000);
    std::string got;
    absl::Status s = c_->Read(
        req, [&](const v1::ReadChunk& chunk) { got += chunk.data(); return true; }, nullptr);
    EXPECT_TRUE(s.ok()) << s;
    return got;
  }
  // Writes `data`, waiting while the controller refuses it for a peer that
  // has not read enough yet (RESOURCE_EXHAUSTED).
  void WriteAll(const std::string& id, const std::string& data) {
    v1::WriteRequest req;
    req.set_connection_id(id);
    req.set_data(data);
    for (int i = 0; i < 2000; ++i) {
      absl::StatusOr<v1::WriteResponse> w = c_->Write(req);
      if (w.ok()) return;
      ASSERT_EQ(w.status().code(), absl::StatusCode::kResourceExhausted) << w.status();
      absl::SleepFor(absl::Milliseconds(5));
    }
    ADD_FAILURE() << "Write to " << id << " never accepted";
  }

  std::unique_ptr<Controller> c_;
  std::string server_ctx_, client_ctx_;
};

// Issue 17: live changes must not build contexts on the loop that carries
// the connections. AddContext and ReplaceContext build on the caller's
// thread; RotateTicketKeys, and the timer that retires the previous keys,
// build nothing at all, however many SNI contexts the listener has.
TEST_F(ControllerThreadsTest, LiveChangesBuildOnTheCallersThreadAndRotationsBuildNothing) {
  ASSERT_NO_FATAL_FAILURE(CountContextBuilds());
  v1::ListenResponse echo = Listen("echo");
  std::atomic<bool> stop{false};
  std::atomic<int> retired{0};
  std::atomic<bool> watching{false};
  std::thread watcher([&] {
    v1::WatchEventsRequest req;
    req.set_listener_id(echo.listener_id());
    absl::Status s = c_->WatchEvents(
        req,
        [&](const v1::ControlEvent& ev) {
          if (ev.type() == "change" && ev.change().change() == "retireTicketKeys") ++retired;
          return true;
        },
        [&] { return stop.load(); }, [&] { watching = true; });
    EXPECT_TRUE(s.ok()) << s;
  });
  for (int i = 0; i < 500 && !watching; ++i) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_TRUE(watching);

  TakeBuilds();
  constexpr int kNames = 20;
  for (int i = 0; i < kNames; ++i) {
    v1::AddContextRequest add;
    add.set_listener_id(echo.listener_id());
    add.set_servername(absl::StrCat("n", i, ".example.com"));
    add.set_context_id(server_ctx_);
    ASSERT_TRUE(c_->AddContext(add).ok());
  }
  v1::ReplaceContextRequest replace;
  replace.set_listener_id(echo.listener_id());
  replace.set_context_id(server_ctx_);
  ASSERT_TRUE(c_->ReplaceContext(replace).ok());
  std::vector<std::thread::id> built = TakeBuilds();
  EXPECT_EQ(built.size(), kNames + 1u) << "one build per change";
  size_t elsewhere = 0;
  for (const std::thread::id& t : built) elsewhere += t == std::this_thread::get_id() ? 0 : 1;
  EXPECT_EQ(elsewhere, 0u) << "builds on another thread (the loop's)";

  // An open connection, echoing across the rotations.
  std::string client = Connect(echo.address().port());
  ASSERT_FALSE(client.empty());
  WriteAll(client, "before");
  EXPECT_EQ(Read(client, 6), "before");
  TakeBuilds();  // from here on, only what the rotations and the retire timer build
  for (int i = 0; i < 2; ++i) {
    v1::RotateTicketKeysRequest rot;
    rot.set_listener_id(echo.listener_id());
    rot.set_keep_previous(1);  // the previous key retires at once, through the timer
    absl::StatusOr<v1::ChangeResponse> rotated = c_->RotateTicketKeys(rot);
    ASSERT_TRUE(rotated.ok()) << rotated.status();
    for (int w = 0; w < 1000 && retired.load() <= i; ++w) absl::SleepFor(absl::Milliseconds(2));
    ASSERT_GT(retired.load(), i) << "the retire timer ran";
  }
  EXPECT_EQ(TakeBuilds().size(), 0u) << "a rotation or a retirement rebuilt contexts";
  WriteAll(client, "after");
  EXPECT_EQ(Read(client, 5), "after");
  stop = true;
  watcher.join();
}

TEST_F(ControllerThreadsTest, CallersOnManyThreadsShareOneController) {
  v1::ListenResponse echo = Listen("echo");
  v1::ListenResponse hold = Listen("hold");

  // A watcher on its own thread, until told to stop.
  std::atomic<bool> stop{false};
  std::atomic<int> secure_connects{0};
  std::atomic<bool> watching{false};
  std::thread watcher([&] {
    absl::Status s = c_->WatchEvents(
        v1::WatchEventsRequest(),
        [&](const v1::ControlEvent& ev) {
          if (ev.type() == "secureConnect") ++secure_connects;
          return true;
        },
        [&] { return stop.load(); }, [&] { watching = true; });
    EXPECT_TRUE(s.ok()) << s;
  });
  for (int i = 0; i < 500 && !watching; ++i) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_TRUE(watching);

  // Echo clients, each on its thread, with queries in between.
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      std::string id = Connect(echo.address().port());
      if (id.empty()) return;
      for (int round = 0; round < 5; ++round) {
        std::string data = absl::StrCat("thread ", t, " round ", round);
        WriteAll(id, data);
        EXPECT_EQ(Read(id, data.size()), data);
        v1::ConnectionRequest get;
        get.set_connection_id(id);
        EXPECT_TRUE(c_->GetConnection(get).ok());
        EXPECT_TRUE(c_->ListConnections(v1::ListConnectionsRequest()).ok());
        EXPECT_TRUE(c_->GetStats(v1::GetStatsRequest()).ok());
      }
      v1::ConnectionRequest end;
      end.set_connection_id(id);
      EXPECT_TRUE(c_->End(end).ok());
    });
  }
  // Live changes meanwhile.
  std::thread changer([&] {
    for (int i = 0; i < 5; ++i) {
      v1::RotateTicketKeysRequest rot;
      rot.set_listener_id(echo.listener_id());
      rot.set_keep_previous(1 + i);
      EXPECT_TRUE(c_->RotateTicketKeys(rot).ok());
      v1::AddContextRequest add;
      add.set_listener_id(echo.listener_id());
      add.set_servername(absl::StrCat("n", i, ".example.com"));
      add.set_context_id(server_ctx_);
      EXPECT_TRUE(c_->AddContext(add).ok());
      EXPECT_TRUE(c_->ListCertificates(v1::ListCertificatesRequest()).ok());
    }
  });

  // Hold mode: one thread writes 256 KiB through a 16 KiB limit while
  // another reads it from the listener's side (pauses and resumes).
  std::string writer_id = Connect(hold.address().port());
  ASSERT_FALSE(writer_id.empty());
  std::string held_id;
  for (int i = 0; i < 500 && held_id.empty(); ++i) {
    v1::ListConnectionsRequest req;
    req.set_listener_id(hold.listener_id());
    absl::StatusOr<v1::ListConnectionsResponse> page = c_->ListConnections(req);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->connections_size() > 0) held_id = page->connections(0).connection_id();
    if (held_id.empty()) absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_FALSE(held_id.empty());
  std::string payload;
  for (int i = 0; payload.size() < (256u << 10); ++i) payload += absl::StrCat(i, ",");
  std::thread writer([&] {
    for (size_t at = 0; at < payload.size(); at += 8192) WriteAll(writer_id, payload.substr(at, 8192));
  });
  std::string received = Read(held_id, payload.size());
  writer.join();
  EXPECT_EQ(received.size(), payload.size());
  EXPECT_TRUE(received == payload);

  for (std::thread& t : clients) t.join();
  changer.join();
  stop = true;
  watcher.join();
  EXPECT_GE(secure_connects.load(), 4);
  c_->Shutdown();
}

}  // namespace
}  // namespace control
}  // namespace tlsengine

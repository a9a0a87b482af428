// A thread-per-connection echo server on TlsListener and 200 client threads
// at once, sharing one client context and one server context. Run under
// TSan too (scripts/test).
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/blocking/tls_stream.h"
#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace blocking {
namespace {

constexpr int kClients = 200;
constexpr absl::Duration kGenerous = absl::Seconds(120);  // for TSan on two busy cores; not a speed

// One connection: echo every line until the client's close_notify, then
// answer with ours.
absl::Status Echo(TlsStream& stream, absl::Time deadline) {
  for (;;) {
    absl::StatusOr<std::string> line = stream.ReadUntil("\n", 4096, deadline);
    if (!line.ok()) return line.status();
    if (line->empty()) return stream.Shutdown(deadline);  // the client ended
    absl::Status s = stream.Write(*line, deadline);
    if (!s.ok()) return s;
  }
}

TEST(EchoThreadsTest, TwoHundredClientsAtOnce) {
  const absl::Time deadline = absl::Now() + kGenerous;
  auto listener = TlsListener::Listen("127.0.0.1", 0, StreamOptions(testing::ServerOptions("server-ecdsa")),
                                      /*backlog=*/kClients * 2);
  ASSERT_TRUE(listener.ok()) << listener.status();

  std::mutex mu;
  std::vector<absl::Status> server_errors;  // guarded by mu
  std::vector<std::thread> handlers;        // only the acceptor touches it
  std::thread acceptor([&] {
    for (;;) {
      absl::StatusOr<std::unique_ptr<TlsStream>> s = (*listener)->Accept(deadline);
      if (!s.ok()) {
        if (NodeCode(s.status()) != "ECONNABORTED") {
          std::lock_guard<std::mutex> lock(mu);
          server_errors.push_back(s.status());
        }
        break;
      }
      handlers.emplace_back([&, stream = std::shared_ptr<TlsStream>(std::move(*s))] {
        absl::Status status = Echo(*stream, deadline);
        if (!status.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          server_errors.push_back(status);
        }
      });
    }
  });

  const StreamOptions client_options = StreamOptions(testing::ClientOptions());
  std::atomic<int> echoed{0};
  std::vector<absl::Status> client_errors(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      auto c = TlsStream::Connect("127.0.0.1", (*listener)->port(), client_options, deadline);
      if (!c.ok()) {
        client_errors[i] = c.status();
        return;
      }
      for (int round = 0; round < 3; ++round) {
        std::string line = absl::StrCat("client ", i, " round ", round, "\n");
        absl::Status s = (*c)->Write(line, deadline);
        absl::StatusOr<std::string> back = s.ok() ? (*c)->ReadUntil("\n", 4096, deadline) : s;
        if (!back.ok()) {
          client_errors[i] = back.status();
          return;
        }
        if (*back != line) {
          client_errors[i] = absl::InternalError(absl::StrCat("echo mismatch: ", *back));
          return;
        }
      }
      client_errors[i] = (*c)->Shutdown(deadline, /*wait_for_peer=*/true);
      if (client_errors[i].ok()) ++echoed;
    });
  }
  for (std::thread& t : clients) t.join();
  (*listener)->Shutdown();
  acceptor.join();
  for (std::thread& t : handlers) t.join();

  for (int i = 0; i < kClients; ++i) EXPECT_TRUE(client_errors[i].ok()) << "client " << i << ": " << client_errors[i];
  EXPECT_EQ(echoed.load(), kClients);
  EXPECT_EQ(handlers.size(), static_cast<size_t>(kClients));
  for (const absl::Status& s : server_errors) ADD_FAILURE() << "server: " << s;
}

}  // namespace
}  // namespace blocking
}  // namespace tlsengine

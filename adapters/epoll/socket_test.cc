// TlsSocket's controls (pause/resume, timeouts, socket options, the write
// bound, STARTTLS wrapping, half-close) and Server's configuration calls
// (setSecureContext, ticket keys, SNICallback, newSession/resumeSession,
// key log) against each other over loopback.
#include "adapters/epoll/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "adapters/epoll/epoll_testlib.h"
#include "adapters/epoll/server.h"
#include "core/errors.h"
#include "core/openssl_interop.h"
#include "gtest/gtest.h"
#include "tests/testlib/keylog.h"
#include "tests/testlib/peers.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace epoll {
namespace {

using testing::ClientTo;
using testing::EchoOn;
using testing::RunFor;
using testing::RunUntil;
using testing::ServerFor;

// OpenSSL's SSL_OP_NO_TICKET, for SecureContextOptions::secure_options
// (Node's secureOptions); the adapter's tests see core's headers only.
constexpr uint64_t kSslOpNoTicket = uint64_t{1} << 14;

class SocketTest : public testing::EchoServerTest {
 protected:
  // Ends `c` and runs until it has closed.
  void EndAndWait(const std::shared_ptr<TlsSocket>& c) {
    bool closed = false;
    c->handlers().on_close = [&](bool) { closed = true; };
    c->End();
    EXPECT_TRUE(RunUntil(*loop_, [&] { return closed; }));
  }
  // Both ends of a loopback TCP connection, for Wrap.
  static void LoopbackPair(int* client_fd, int* server_fd) {
    tlsengine::testing::Listener listener;
    *client_fd = tlsengine::testing::ConnectLoopback(listener.port());
    ASSERT_GE(*client_fd, 0);
    *server_fd = listener.Accept(absl::Seconds(5));
    ASSERT_GE(*server_fd, 0);
  }
  std::string Fingerprint(const std::string& identity) {
    return CertificateInfo::FromPem(tlsengine::testing::Cert(identity))->fingerprint256;
  }
  // Connects to `port` as `servername` offering `session` ("" none), takes
  // the first session the server issues, ends. Returns that session (""
  // if none came); *reused says whether `session` resumed, *ticket (when
  // given) is the ticket.
  std::string TicketSession(int port, const std::string& servername, const std::string& session, bool* reused,
                            std::string* ticket = nullptr) {
    TlsSocketOptions co = ClientTo(port);
    co.tls.servername = servername;
    co.tls.session = session;
    std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), co);
    std::string got;
    bool closed = false;
    *reused = false;
    c->handlers().on_secure_connect = [&] { *reused = c->is_session_reused(); };
    c->handlers().on_error = [](const absl::Status& e) { ADD_FAILURE() << e; };
    c->handlers().on_session = [&](const std::string& s) {
      if (got.empty()) {
        got = s;
        if (ticket != nullptr) *ticket = c->GetTlsTicket();
        c->End();
      }
    };
    c->handlers().on_close = [&](bool) { closed = true; };
    EXPECT_TRUE(RunUntil(*loop_, [&] { return closed; }));
    return got;
  }
};

TEST_F(SocketTest, PausedSocketRaisesNoDataAndBackpressureReachesThePeer) {
  std::shared_ptr<TlsSocket> server_side;
  size_t server_got = 0;
  handlers_.on_secure_connection = [&](std::shared_ptr<TlsSocket> s) {
    server_side = s;
    s->handlers().on_data = [&](absl::string_view d) { server_got += d.size(); };
    s->Pause();
  };
  server_ = *Server::Create({loop_.get()}, ServerFor(), handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  std::shared_ptr<TlsSocket> c = ConnectSecure(ClientTo(server_->address()->port));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_side != nullptr; }));
  EXPECT_TRUE(server_side->paused());
  int drains = 0;
  c->handlers().on_drain = [&] { ++drains; };
  // Write until the client's own queue holds data: the server's socket,
  // its kernel buffers and ours are full.
  const std::string chunk(64 * 1024, 'p');
  size_t sent = 0;
  for (int i = 0; i < 4096 && c->buffered_writes() == 0; ++i) {
    c->Write(chunk);
    sent += chunk.size();
    RunFor(*loop_, absl::Milliseconds(2));
  }
  RunFor(*loop_, absl::Milliseconds(200));
  EXPECT_GT(c->buffered_writes(), 0u) << "backpressure reached the writer";
  EXPECT_EQ(drains, 0);
  EXPECT_EQ(server_got, 0u) << "no 'data' while paused";
  EXPECT_LT(server_side->bytes_read(), sent) << "a paused socket stops reading";
  server_side->Resume();
  EXPECT_FALSE(server_side->paused());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_got == sent; }, absl::Seconds(20)))
      << server_got << " of " << sent;
  EXPECT_GE(drains, 1) << "'drain' once the peer read again";
  EXPECT_EQ(c->buffered_writes(), 0u);
  EndAndWait(c);
}

TEST_F(SocketTest, SetTimeoutFiresOnceIsKeptAliveByTrafficAndDoesNotClose) {
  StartEcho();
  std::shared_ptr<TlsSocket> c = ConnectSecure(ClientTo(port_));
  int timeouts = 0;
  c->handlers().on_timeout = [&] { ++timeouts; };
  c->SetTimeout(absl::Milliseconds(250));
  // Traffic every 50 ms for 600 ms keeps it from firing.
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(Echoes(c, "k"));
    RunFor(*loop_, absl::Milliseconds(50));
  }
  EXPECT_EQ(timeouts, 0) << "traffic keeps the socket from being idle";
  // Idle for four periods: it fires once, and the socket stays open.
  RunFor(*loop_, absl::Milliseconds(1000));
  EXPECT_EQ(timeouts, 1);
  EXPECT_EQ(c->ready_state(), ReadyState::kOpen);
  ASSERT_TRUE(Echoes(c, "still open"));
  // Activity re-arms it: one more idle period, one more 'timeout'.
  RunFor(*loop_, absl::Milliseconds(600));
  EXPECT_EQ(timeouts, 2);
  c->SetTimeout(absl::ZeroDuration());
  RunFor(*loop_, absl::Milliseconds(400));
  EXPECT_EQ(timeouts, 2) << "SetTimeout(0) turns it off";
  EndAndWait(c);
}

TEST_F(SocketTest, SetNoDelayAndSetKeepAliveShowInGetsockopt) {
  StartEcho();
  int fd = tlsengine::testing::ConnectLoopback(port_);
  ASSERT_GE(fd, 0);
  int probe = dup(fd);  // the same socket: its options are visible through both
  TlsSocketOptions o = ClientTo(port_);
  o.no_delay = false;
  std::shared_ptr<TlsSocket> c = *TlsSocket::Wrap(loop_.get(), fd, o);
  bool secure = false;
  c->handlers().on_secure_connect = [&] { secure = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return secure; }));
  auto opt = [probe](int level, int name) {
    int v = -1;
    socklen_t len = sizeof(v);
    EXPECT_EQ(getsockopt(probe, level, name, &v, &len), 0);
    return v;
  };
  EXPECT_EQ(opt(IPPROTO_TCP, TCP_NODELAY), 0);
  ASSERT_TRUE(c->SetNoDelay(true).ok());
  EXPECT_NE(opt(IPPROTO_TCP, TCP_NODELAY), 0);
  ASSERT_TRUE(c->SetNoDelay(false).ok());
  EXPECT_EQ(opt(IPPROTO_TCP, TCP_NODELAY), 0);
  EXPECT_EQ(opt(SOL_SOCKET, SO_KEEPALIVE), 0);
  ASSERT_TRUE(c->SetKeepAlive(true, absl::Seconds(42)).ok());
  EXPECT_NE(opt(SOL_SOCKET, SO_KEEPALIVE), 0);
  EXPECT_EQ(opt(IPPROTO_TCP, TCP_KEEPIDLE), 42);
  ASSERT_TRUE(c->SetKeepAlive(false).ok());
  EXPECT_EQ(opt(SOL_SOCKET, SO_KEEPALIVE), 0);
  EndAndWait(c);
  close(probe);
  absl::Status after = c->SetNoDelay(true);
  EXPECT_EQ(after.code(), absl::StatusCode::kFailedPrecondition) << after;
  EXPECT_EQ(NodeCode(after), kErrInvalidState);
  EXPECT_EQ(c->SetKeepAlive(true).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SocketTest, SetSecureContextServesNewConnectionsTheNewCertificateAndOpenOnesCarryOn) {
  StartEcho(ServerFor("server-rsa"));
  std::shared_ptr<TlsSocket> first = ConnectSecure(ClientTo(port_));
  EXPECT_EQ(first->GetPeerCertificate()->fingerprint256, Fingerprint("server-rsa"));
  std::string keys = server_->GetTicketKeys();
  ASSERT_TRUE(server_->SetSecureContext(tlsengine::testing::IdentityOptions("server-ecdsa")).ok());
  EXPECT_EQ(server_->GetTicketKeys(), keys) << "the server's ticket keys are kept";
  std::shared_ptr<TlsSocket> second = ConnectSecure(ClientTo(port_));
  EXPECT_EQ(second->GetPeerCertificate()->fingerprint256, Fingerprint("server-ecdsa"));
  EXPECT_TRUE(Echoes(first, "the open one keeps echoing"));
  EXPECT_TRUE(Echoes(second, "and so does the new one"));
  SecureContextOptions bad = tlsengine::testing::IdentityOptions("server-ecdsa");
  bad.key = {"not a key"};
  absl::Status refused = server_->SetSecureContext(bad);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  std::shared_ptr<TlsSocket> third = ConnectSecure(ClientTo(port_));
  EXPECT_EQ(third->GetPeerCertificate()->fingerprint256, Fingerprint("server-ecdsa")) << "a refused context changes nothing";
  EndAndWait(first);
  EndAndWait(second);
  EndAndWait(third);
}

TEST_F(SocketTest, TicketKeysRoundTripAndRotationDecidesWhichTicketsResume) {
  ServerOptions o = ServerFor("server-ecdsa", "TLSv1.3");
  o.session_cache = false;  // tickets only: resumption depends on the keys alone
  StartEcho(o);
  const std::string old_key(48, 'a'), new_key(48, 'b');
  ASSERT_TRUE(server_->SetTicketKeys(old_key).ok());
  EXPECT_EQ(server_->GetTicketKeys(), old_key);
  // A ticket issued under the old key.
  auto ticket_session = [&](const std::string& session, bool* reused, std::string* ticket) {
    return TicketSession(port_, "localhost", session, reused, ticket);
  };
  bool reused = true;
  std::string ticket;
  std::string old_session = ticket_session("", &reused, &ticket);
  ASSERT_FALSE(old_session.empty());
  EXPECT_FALSE(reused);
  EXPECT_FALSE(ticket.empty()) << "GetTlsTicket() returns the ticket";
  // Rotated, old key kept for decryption: the old ticket still resumes.
  ASSERT_TRUE(server_->SetTicketKeys(new_key + old_key).ok());
  EXPECT_EQ(server_->GetTicketKeys(), new_key + old_key);
  ticket_session(old_session, &reused, nullptr);
  EXPECT_TRUE(reused) << "a ticket from a key still kept resumes";
  // Rotated away: the old ticket is refused (a full handshake instead).
  ASSERT_TRUE(server_->SetTicketKeys(new_key).ok());
  std::string new_session = ticket_session(old_session, &reused, nullptr);
  EXPECT_FALSE(reused) << "a ticket from a dropped key does not resume";
  ticket_session(new_session, &reused, nullptr);
  EXPECT_TRUE(reused) << "tickets under the current key resume";
  absl::Status bad = server_->SetTicketKeys(std::string(47, 'x'));
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument) << bad;
  EXPECT_EQ(NodeCode(bad), kErrInvalidArgValue);
  EXPECT_EQ(server_->GetTicketKeys(), new_key);
}

TEST_F(SocketTest, SetTicketKeysReachesSniContextsAndDecidesWhichOfTheirTicketsResume) {
  ServerOptions o = ServerFor("server-rsa", "TLSv1.3");
  o.session_cache = false;  // tickets only: resumption depends on the keys alone
  const std::string k1(48, '1'), k2(48, '2');
  o.context.ticket_keys = {k1};
  StartEcho(o);
  const std::string name = "other.example.com";
  SecureContextOptions other = tlsengine::testing::IdentityOptions("other-name", "TLSv1.3");
  ASSERT_TRUE(server_->AddContext(name, other).ok());
  bool reused = true;
  std::string before = TicketSession(port_, name, "", &reused);
  ASSERT_FALSE(before.empty());
  EXPECT_FALSE(reused);

  // Rotation keeping k1 for decryption: the SNI name's old ticket resumes.
  ASSERT_TRUE(server_->SetTicketKeys(k2 + k1).ok());
  EXPECT_EQ(server_->GetTicketKeys(), k2 + k1);
  for (const ServedContext& c : server_->Contexts()) {
    EXPECT_EQ(*c.context->ticket_key_set()->Get(), (std::vector<std::string>{k2, k1})) << "'" << c.servername << "'";
  }
  TicketSession(port_, name, before, &reused);
  EXPECT_TRUE(reused) << "a ticket from a key still kept resumes on its SNI name";
  std::string after = TicketSession(port_, name, "", &reused);
  ASSERT_FALSE(after.empty());

  // k1 dropped: the ticket from before the rotation no longer resumes (a
  // full handshake instead); the one issued after it, under k2, does.
  ASSERT_TRUE(server_->SetTicketKeys(k2).ok());
  TicketSession(port_, name, before, &reused);
  EXPECT_FALSE(reused) << "the SNI context still decrypts with the dropped key";
  TicketSession(port_, name, after, &reused);
  EXPECT_TRUE(reused) << "a ticket issued for the SNI name after the rotation resumes";

  // Another server of the fleet holding only k2 resumes it too: the SNI
  // context issued it under the server's new key, not a key of its own.
  ServerOptions fleet_options = o;
  fleet_options.context.ticket_keys = {k2};
  std::unique_ptr<Server> fleet = *Server::Create({loop_.get()}, fleet_options, handlers_);
  ASSERT_TRUE(fleet->AddContext(name, other).ok());
  ASSERT_TRUE(fleet->Listen(0, "127.0.0.1").ok());
  TicketSession(fleet->address()->port, name, after, &reused);
  EXPECT_TRUE(reused) << "the ticket was encrypted under k2";
  bool fleet_closed = false;
  ASSERT_TRUE(fleet->Close([&] { fleet_closed = true; }).ok());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return fleet_closed; }));
}

// One `openssl s_client` (TLS 1.2, so the ticket is a session ticket in
// the handshake) to port_ as `servername` with `sess_flag` ("-sess_out" /
// "-sess_in") `sess_file`: it says "ping", and once the echo server has
// seen it (*pinged grew), its stdin closes and it exits. Returns its stdout.
std::string SClientRound(Loop& loop, Server& server, int port, const int* pinged, const std::string& servername,
                         const std::string& sess_flag, const std::string& sess_file) {
  tlsengine::testing::Subprocess client;
  absl::Status started = client.Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port),
                                       "-servername", servername, "-tls1_2", sess_flag, sess_file});
  EXPECT_TRUE(started.ok()) << started;
  if (!started.ok()) return "";
  EXPECT_TRUE(client.WriteStdin("ping\n").ok());
  const int before = *pinged;
  EXPECT_TRUE(RunUntil(loop, [&] { return *pinged > before; }, absl::Seconds(10)));
  client.CloseStdin();
  EXPECT_TRUE(RunUntil(loop, [&] { return server.connections() == 0; }, absl::Seconds(10)));
  EXPECT_EQ(client.Wait(absl::Seconds(10)), 0) << client.err();
  return client.out();
}

TEST_F(SocketTest, SetTicketKeysRekeysEveryContextInPlaceAndOpenSslResumesByTheKeysKept) {
  ServerOptions o = ServerFor("server-rsa", "TLSv1.2");
  o.session_cache = false;  // tickets only: resumption depends on the keys alone
  const std::string k1(48, '1'), k2(48, '2');
  o.context.ticket_keys = {k1};
  int pinged = 0;
  handlers_.on_secure_connection = [&pinged](std::shared_ptr<TlsSocket> s) {
    EchoOn(s);
    auto echo = s->handlers().on_data;
    s->handlers().on_data = [&pinged, echo](absl::string_view d) {
      echo(d);
      ++pinged;
    };
  };
  server_ = *Server::Create({loop_.get()}, o, handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  const std::string name = "other.example.com";
  ASSERT_TRUE(server_->AddContext(name, tlsengine::testing::IdentityOptions("other-name", "TLSv1.2")).ok());
  for (const char* more : {"a.example.net", "b.example.net"}) {
    ASSERT_TRUE(server_->AddContext(more, tlsengine::testing::IdentityOptions("other-name", "TLSv1.2")).ok());
  }
  auto handles = [&] {
    std::vector<std::pair<const SecureContext*, SSL_CTX*>> out;
    for (const ServedContext& c : server_->Contexts()) out.emplace_back(c.context.get(), NativeHandle(*c.context));
    return out;
  };
  const auto served = handles();
  ASSERT_EQ(served.size(), 4u);
  const int port = server_->address()->port;
  char dir_template[] = "/tmp/tlsengine-tickets-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string old_sess = absl::StrCat(dir_template, "/old"), new_sess = absl::StrCat(dir_template, "/new");
  auto round = [&](const std::string& flag, const std::string& file) {
    return SClientRound(*loop_, *server_, port, &pinged, name, flag, file);
  };
  EXPECT_TRUE(absl::StrContains(round("-sess_out", old_sess), "New, TLSv1.2"));

  // Rotation, k1 kept: no context is rebuilt, and k1's ticket resumes.
  ASSERT_TRUE(server_->SetTicketKeys(k2 + k1).ok());
  EXPECT_EQ(handles(), served) << "the same contexts and SSL_CTXs serve after a rotation";
  std::string resumed = round("-sess_in", old_sess);
  EXPECT_TRUE(absl::StrContains(resumed, "Reused, TLSv1.2")) << resumed;
  EXPECT_TRUE(absl::StrContains(round("-sess_out", new_sess), "New, TLSv1.2"));

  // k1 retired: its ticket gets a full handshake; the one issued after the
  // rotation (so under k2) resumes.
  ASSERT_TRUE(server_->SetTicketKeys(k2).ok());
  EXPECT_EQ(handles(), served);
  std::string refused = round("-sess_in", old_sess);
  EXPECT_TRUE(absl::StrContains(refused, "New, TLSv1.2")) << refused;
  std::string by_k2 = round("-sess_in", new_sess);
  EXPECT_TRUE(absl::StrContains(by_k2, "Reused, TLSv1.2")) << by_k2;
  ::unlink(old_sess.c_str());
  ::unlink(new_sess.c_str());
  ::rmdir(dir_template);
}

// What a live change builds off the loops (WithTicketKeySet, on the
// server's key set) is served as it is: AddContext / SetSecureContext only
// swap it in. A context on another set is served as a copy on the server's.
TEST_F(SocketTest, ContextsOnTheServersKeySetAreServedAsTheyAre) {
  std::shared_ptr<const SecureContext> given = *SecureContext::Create(tlsengine::testing::IdentityOptions("server-rsa"));
  ServerOptions o = ServerFor("server-rsa");
  o.secure_context = given;
  StartEcho(o);
  EXPECT_EQ(server_->secure_context(), given) << "a given context is served as it is";
  EXPECT_EQ(server_->ticket_key_set(), given->ticket_key_set()) << "and its keys are the server's";
  std::shared_ptr<const SecureContext> other =
      *SecureContext::Create(tlsengine::testing::IdentityOptions("other-name"));
  absl::StatusOr<std::shared_ptr<const SecureContext>> on_set = WithTicketKeySet(other, server_->ticket_key_set());
  ASSERT_TRUE(on_set.ok()) << on_set.status();
  EXPECT_NE(*on_set, other) << "a copy on the server's set";
  EXPECT_EQ((*on_set)->ticket_key_set(), server_->ticket_key_set());
  EXPECT_EQ(*WithTicketKeySet(*on_set, server_->ticket_key_set()), *on_set) << "already on it: itself";
  ASSERT_TRUE(server_->AddContext("other.example.com", *on_set).ok());
  EXPECT_EQ(server_->Contexts()[1].context, *on_set);
  ASSERT_TRUE(server_->AddContext("second.example.com", other).ok());
  EXPECT_NE(server_->Contexts()[2].context, other) << "another set: served as a copy";
  EXPECT_EQ(server_->Contexts()[2].context->ticket_key_set(), server_->ticket_key_set());
  ASSERT_TRUE(server_->SetSecureContext(*on_set).ok());
  EXPECT_EQ(server_->secure_context(), *on_set);
  absl::Status null_context = server_->SetSecureContext(std::shared_ptr<const SecureContext>());
  EXPECT_EQ(null_context.code(), absl::StatusCode::kInvalidArgument) << null_context;
  EXPECT_EQ(NodeCode(null_context), kErrInvalidArgValue);
  TlsSocketOptions co = ClientTo(port_);
  co.tls.servername = "other.example.com";
  std::shared_ptr<TlsSocket> c = ConnectSecure(co);
  EXPECT_EQ(c->GetPeerCertificate()->fingerprint256, Fingerprint("other-name"));
  EndAndWait(c);
}

TEST_F(SocketTest, AddContextAndRemoveContextChangeWhatNewConnectionsGetAndContextsListsIt) {
  StartEcho(ServerFor("server-rsa"));
  const std::string name = "other.example.com";
  ASSERT_EQ(server_->Contexts().size(), 1u);
  EXPECT_EQ(server_->Contexts()[0].servername, "");
  EXPECT_EQ(server_->Contexts()[0].context, server_->secure_context());
  ASSERT_TRUE(server_->AddContext("Other.Example.COM", tlsengine::testing::IdentityOptions("other-name")).ok());
  ASSERT_TRUE(server_->AddContext("*.example.com", tlsengine::testing::IdentityOptions("wildcard")).ok());
  std::vector<ServedContext> served = server_->Contexts();
  ASSERT_EQ(served.size(), 3u);
  EXPECT_EQ(served[1].servername, name);
  EXPECT_EQ(served[2].servername, "*.example.com");
  EXPECT_EQ(served[1].context->options().ticket_keys, served[0].context->options().ticket_keys)
      << "served with the server's ticket keys";

  TlsSocketOptions o = ClientTo(port_);
  o.tls.servername = name;
  std::shared_ptr<TlsSocket> open = ConnectSecure(o);
  EXPECT_EQ(open->GetPeerCertificate()->fingerprint256, Fingerprint("other-name"));

  ASSERT_TRUE(server_->RemoveContext("OTHER.example.com.").ok());
  served = server_->Contexts();
  ASSERT_EQ(served.size(), 2u);
  EXPECT_EQ(served[1].servername, "*.example.com");
  std::shared_ptr<TlsSocket> next = ConnectSecure(o);
  EXPECT_EQ(next->GetPeerCertificate()->fingerprint256, Fingerprint("wildcard")) << "the pattern matches it now";
  EXPECT_TRUE(Echoes(open, "the connection made before the removal carries on"));

  absl::Status missing = server_->RemoveContext(name);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_EQ(NodeCode(missing), kErrInvalidArgValue);
  EXPECT_TRUE(absl::StrContains(missing.message(), name)) << missing;
  absl::Status bad = server_->AddContext("a.*.example.com", server_->secure_context());
  EXPECT_EQ(NodeCode(bad), kErrInvalidArgValue) << bad;
  EXPECT_EQ(NodeCode(server_->AddContext("", server_->secure_context())), "ERR_TLS_REQUIRED_SERVER_NAME");
  EXPECT_EQ(server_->Contexts().size(), 2u) << "refused names change nothing";
  EndAndWait(open);
  EndAndWait(next);
}

TEST_F(SocketTest, SetSecureContextWithItsOwnTicketKeysMakesThemTheKeysOfEveryContext) {
  StartEcho(ServerFor("server-rsa"));
  ASSERT_TRUE(server_->AddContext("other.example.com", tlsengine::testing::IdentityOptions("other-name")).ok());
  const std::string k3(48, '3');
  SecureContextOptions ecdsa = tlsengine::testing::IdentityOptions("server-ecdsa");
  ecdsa.ticket_keys = {k3};
  ASSERT_TRUE(server_->SetSecureContext(ecdsa).ok());
  EXPECT_EQ(server_->GetTicketKeys(), k3);
  std::vector<ServedContext> served = server_->Contexts();
  ASSERT_EQ(served.size(), 2u);
  for (const ServedContext& c : served) {
    EXPECT_EQ(*c.context->ticket_key_set()->Get(), std::vector<std::string>{k3}) << "'" << c.servername << "'";
  }
  std::shared_ptr<TlsSocket> c = ConnectSecure(ClientTo(port_));
  EXPECT_EQ(c->GetPeerCertificate()->fingerprint256, Fingerprint("server-ecdsa"));
  EndAndWait(c);
}

TEST_F(SocketTest, SniContextsGivenAtCreateAreServedWithTheServersTicketKeys) {
  ServerOptions o = ServerFor("server-rsa");
  o.connection.sni_contexts = std::make_shared<SniContexts>();
  std::shared_ptr<const SecureContext> other =
      *SecureContext::Create(tlsengine::testing::IdentityOptions("other-name"));
  ASSERT_TRUE(o.connection.sni_contexts->Add("other.example.com", other).ok());
  StartEcho(o);
  std::vector<ServedContext> served = server_->Contexts();
  ASSERT_EQ(served.size(), 2u);
  EXPECT_EQ(served[1].servername, "other.example.com");
  EXPECT_EQ(served[1].context->ticket_key_set()->Get()->size(), 1u);
  EXPECT_EQ(served[1].context->ticket_key_set(), served[0].context->ticket_key_set()) << "one key set for both";
  TlsSocketOptions co = ClientTo(port_);
  co.tls.servername = "other.example.com";
  std::shared_ptr<TlsSocket> c = ConnectSecure(co);
  EXPECT_EQ(c->GetPeerCertificate()->fingerprint256, Fingerprint("other-name"));
  EXPECT_TRUE(Echoes(c, "sni from the options"));
  EndAndWait(c);
}

TEST_F(SocketTest, SniCallbackAnsweredLaterPicksTheContextAndAnErrorRefusesTheName) {
  std::vector<std::function<void(absl::StatusOr<std::shared_ptr<const SecureContext>>)>> waiting;
  std::vector<std::string> asked;
  handlers_.sni_callback = [&](const std::string& name, auto done) {
    asked.push_back(name);
    waiting.push_back(std::move(done));
  };
  handlers_.on_secure_connection = [](std::shared_ptr<TlsSocket> s) { EchoOn(s); };
  handlers_.on_client_error = [this](const absl::Status& e, TlsSocket&) { client_errors_.push_back(e); };
  server_ = *Server::Create({loop_.get()}, ServerFor("server-rsa"), handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  std::shared_ptr<const SecureContext> ecdsa =
      *SecureContext::Create(tlsengine::testing::IdentityOptions("server-ecdsa"));

  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), ClientTo(server_->address()->port));
  bool secure = false;
  c->handlers().on_secure_connect = [&] { secure = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return waiting.size() == 1; }));
  EXPECT_EQ(asked[0], "localhost");
  RunFor(*loop_, absl::Milliseconds(200));
  EXPECT_FALSE(secure) << "the handshake waits for the answer";
  // Answered later, from another thread.
  std::thread([&] { waiting[0](ecdsa); }).join();
  ASSERT_TRUE(RunUntil(*loop_, [&] { return secure; }));
  EXPECT_EQ(c->GetPeerCertificate()->fingerprint256, Fingerprint("server-ecdsa"));
  EXPECT_TRUE(Echoes(c, "sni"));
  EndAndWait(c);

  // An error answer: unrecognized_name to the client, a clientError here.
  std::shared_ptr<TlsSocket> refused = *TlsSocket::Connect(loop_.get(), ClientTo(server_->address()->port));
  absl::Status error;
  bool closed = false;
  refused->handlers().on_error = [&](const absl::Status& e) { error = e; };
  refused->handlers().on_close = [&](bool) { closed = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return waiting.size() == 2; }));
  waiting[1](absl::NotFoundError("no such name"));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed && !client_errors_.empty(); }));
  EXPECT_EQ(error.code(), absl::StatusCode::kAborted) << error;
  ASSERT_TRUE(AlertOf(error).has_value()) << error;
  EXPECT_EQ(*AlertOf(error), 112) << "unrecognized_name (RFC 6066 §3)";
  EXPECT_EQ(client_errors_.size(), 1u);
}

TEST_F(SocketTest, NewSessionAndResumeSessionAnsweredByTheApplicationResumeTls12ById) {
  std::map<std::string, std::string> store;
  std::vector<std::function<void()>> later;  // answers, given after the events
  int new_sessions = 0, lookups = 0, hits = 0;
  handlers_.on_new_session = [&](TlsSocket&, const std::string& id, const std::string& session, auto done) {
    ++new_sessions;
    store[id] = session;
    later.push_back([done] { done(absl::OkStatus()); });
  };
  handlers_.on_resume_session = [&](TlsSocket&, const std::string& id, auto done) {
    ++lookups;
    auto it = store.find(id);
    std::string found = it == store.end() ? "" : it->second;
    if (!found.empty()) ++hits;
    later.push_back([done, found] { done(found); });
  };
  handlers_.on_secure_connection = [](std::shared_ptr<TlsSocket> s) { EchoOn(s); };
  SecureContextOptions ctx = tlsengine::testing::IdentityOptions("server-ecdsa", "TLSv1.2");
  ctx.secure_options |= kSslOpNoTicket;  // no tickets: resumption can only go by id
  ServerOptions o;
  o.context = ctx;
  o.honour_sslkeylogfile = false;
  server_ = *Server::Create({loop_.get()}, o, handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  EXPECT_EQ(server_->session_store(), nullptr) << "the application's handlers replace the store";
  int port = server_->address()->port;

  std::string session;
  for (int round = 0; round < 2; ++round) {
    TlsSocketOptions co = ClientTo(port, "TLSv1.2");
    co.tls.session = session;
    std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), co);
    bool secure = false;
    c->handlers().on_secure_connect = [&] { secure = true; };
    // Answer each event 100 ms after it came.
    ASSERT_TRUE(RunUntil(*loop_, [&] {
      if (!later.empty()) {
        RunFor(*loop_, absl::Milliseconds(100));
        EXPECT_FALSE(secure) << "'secure' waits for the application's answer";
        auto answers = std::move(later);
        later.clear();
        for (auto& a : answers) a();
      }
      return secure;
    })) << "round " << round;
    EXPECT_EQ(c->is_session_reused(), round == 1) << "round " << round;
    session = c->GetSession();
    EXPECT_TRUE(Echoes(c, "resumed by id"));
    EndAndWait(c);
  }
  EXPECT_EQ(new_sessions, 1) << "the resumed handshake makes no new session";
  EXPECT_EQ(lookups, 1);
  EXPECT_EQ(hits, 1);
}

// Regression: a server with only one of on_new_session / on_resume_session
// called the missing one (an empty std::function: the process died). The
// missing one now gets the default answer, as Node does without the
// listener: no stored session (a full handshake), and "stored".
class OneSessionHandlerTest : public SocketTest {
 protected:
  void Run(bool only_new) {
    int calls = 0;
    if (only_new) {
      handlers_.on_new_session = [&](TlsSocket&, const std::string&, const std::string&, auto done) {
        ++calls;
        done(absl::OkStatus());
      };
    } else {
      handlers_.on_resume_session = [&](TlsSocket&, const std::string&, auto done) {
        ++calls;
        done(std::string());
      };
    }
    handlers_.on_secure_connection = [](std::shared_ptr<TlsSocket> s) { EchoOn(s); };
    SecureContextOptions ctx = tlsengine::testing::IdentityOptions("server-ecdsa", "TLSv1.2");
    ctx.secure_options |= kSslOpNoTicket;  // resumption by id: both events come
    ServerOptions o;
    o.context = ctx;
    o.honour_sslkeylogfile = false;
    server_ = *Server::Create({loop_.get()}, o, handlers_);
    ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
    std::string session;
    for (int round = 0; round < 2; ++round) {
      TlsSocketOptions co = ClientTo(server_->address()->port, "TLSv1.2");
      co.tls.session = session;
      std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), co);
      bool secure = false;
      c->handlers().on_secure_connect = [&] { secure = true; };
      ASSERT_TRUE(RunUntil(*loop_, [&] { return secure; })) << "round " << round;
      EXPECT_FALSE(c->is_session_reused()) << "nothing keeps sessions";
      session = c->GetSession();
      EXPECT_FALSE(session.empty());
      EXPECT_TRUE(Echoes(c, "full"));
      EndAndWait(c);
    }
    // on_new_session: each round makes a session; on_resume_session: round 1 looks one up.
    EXPECT_EQ(calls, only_new ? 2 : 1);
  }
};

TEST_F(OneSessionHandlerTest, OnlyOnNewSessionResumeSessionAnsweredByDefault) { Run(/*only_new=*/true); }
TEST_F(OneSessionHandlerTest, OnlyOnResumeSessionNewSessionAnsweredByDefault) { Run(/*only_new=*/false); }

TEST_F(SocketTest, KeylogFilesOfBothEndsHoldTheSameNssLinesForTheConnection) {
  std::string dir = ::testing::TempDir();
  std::string server_log = absl::StrCat(dir, "/server-keylog-", getpid());
  std::string client_log = absl::StrCat(dir, "/client-keylog-", getpid());
  ::unlink(server_log.c_str());
  ::unlink(client_log.c_str());
  ServerOptions o = ServerFor("server-ecdsa", "TLSv1.3");
  o.keylog_file = server_log;
  int server_lines = 0;
  handlers_.on_keylog = [&](const std::string&, TlsSocket&) { ++server_lines; };
  StartEcho(o);
  TlsSocketOptions co = ClientTo(port_);
  co.keylog_file = client_log;
  std::vector<std::string> events;
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), co);
  bool secure = false;
  c->handlers().on_keylog = [&](const std::string& line) { events.push_back(line); };
  c->handlers().on_secure_connect = [&] { secure = true; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return secure && server_lines >= 5; }));
  EXPECT_TRUE(Echoes(c, "logged"));
  EndAndWait(c);
  absl::StatusOr<tlsengine::testing::KeylogEntries> client_file = tlsengine::testing::ReadKeylog(client_log);
  ASSERT_TRUE(client_file.ok()) << client_file.status();
  absl::StatusOr<tlsengine::testing::KeylogEntries> server_file = tlsengine::testing::ReadKeylog(server_log);
  ASSERT_TRUE(server_file.ok()) << server_file.status();
  const tlsengine::testing::KeylogEntries& ours = *client_file;
  const tlsengine::testing::KeylogEntries& theirs = *server_file;
  // TLS 1.3 (RFC 8446 §7.1): four traffic secrets and the exporter secret.
  for (const char* label : {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                            "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"}) {
    EXPECT_EQ(ours.count(label), 1u) << label;
  }
  EXPECT_EQ(ours, theirs) << "both ends log the same secrets for the same client random";
  EXPECT_EQ(events.size(), ours.size()) << "one 'keylog' event per line";
  std::set<std::string> randoms;
  for (const auto& [label, rest] : ours) randoms.insert(rest.substr(0, 64));
  EXPECT_EQ(randoms.size(), 1u) << "one connection, one client random";
  ::unlink(server_log.c_str());
  ::unlink(client_log.c_str());
}

TEST_F(SocketTest, ExportKeyingMaterialIsEqualOnBothEnds) {
  std::shared_ptr<TlsSocket> server_side;
  handlers_.on_secure_connection = [&](std::shared_ptr<TlsSocket> s) {
    server_side = s;
    EchoOn(s);
  };
  for (const char* version : {"TLSv1.2", "TLSv1.3"}) {
    server_side = nullptr;
    server_ = *Server::Create({loop_.get()}, ServerFor("server-ecdsa", version), handlers_);
    ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
    std::shared_ptr<TlsSocket> c = ConnectSecure(ClientTo(server_->address()->port));
    ASSERT_TRUE(RunUntil(*loop_, [&] { return server_side != nullptr; }));
    absl::StatusOr<std::string> ours = c->ExportKeyingMaterial(32, "EXPERIMENTAL tlsengine", "ctx");
    absl::StatusOr<std::string> theirs = server_side->ExportKeyingMaterial(32, "EXPERIMENTAL tlsengine", "ctx");
    ASSERT_TRUE(ours.ok()) << ours.status();
    ASSERT_TRUE(theirs.ok()) << theirs.status();
    EXPECT_EQ(ours->size(), 32u);
    EXPECT_EQ(*ours, *theirs) << version;
    absl::StatusOr<std::string> other = c->ExportKeyingMaterial(32, "EXPERIMENTAL tlsengine", "other");
    ASSERT_TRUE(other.ok()) << other.status();
    EXPECT_NE(*other, *ours) << "the context is part of the derivation";
    EndAndWait(c);
    bool closed = false;
    ASSERT_TRUE(server_->Close([&] { closed = true; }).ok());
    ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }));
    server_.reset();
  }
}

TEST_F(SocketTest, WrapAfterAPlaintextStarttlsExchangeKeepsTheBytesAlreadyRead) {
  int client_fd = -1, server_fd = -1;
  ASSERT_NO_FATAL_FAILURE(LoopbackPair(&client_fd, &server_fd));
  // The client asks for TLS and starts it at once, without waiting for an
  // answer (pipelining, as some SMTP clients do).
  const std::string request = "STARTTLS\r\n";
  ASSERT_EQ(send(client_fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::shared_ptr<TlsSocket> client = *TlsSocket::Wrap(loop_.get(), client_fd, ClientTo(1));
  std::string got;
  bool secure = false, closed = false;
  client->handlers().on_secure_connect = [&] {
    secure = true;
    client->Write("over tls");
  };
  client->handlers().on_data = [&](absl::string_view d) {
    got.append(d.data(), d.size());
    if (got == "over tls") client->End();
  };
  client->handlers().on_error = [](const absl::Status& e) { ADD_FAILURE() << e; };
  client->handlers().on_close = [&](bool) { closed = true; };
  RunFor(*loop_, absl::Milliseconds(100));  // the ClientHello goes out
  // The server reads what is there: the command and the start of TLS.
  std::string read(16384, '\0');
  ssize_t n = recv(server_fd, read.data(), read.size(), 0);
  ASSERT_GT(n, static_cast<ssize_t>(request.size()));
  read.resize(static_cast<size_t>(n));
  ASSERT_EQ(read.substr(0, request.size()), request);
  std::string already_read = read.substr(request.size());
  EXPECT_EQ(already_read[0], 0x16) << "a handshake record follows the command";
  TlsSocketOptions so;
  so.tls = tlsengine::testing::ServerOptions("server-rsa");
  so.honour_sslkeylogfile = false;
  std::shared_ptr<TlsSocket> server = *TlsSocket::Wrap(loop_.get(), server_fd, so, already_read);
  server->handlers().on_data = [raw = server.get()](absl::string_view d) { raw->Write(d); };
  EXPECT_TRUE(server->is_server());
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }));
  EXPECT_TRUE(secure);
  EXPECT_EQ(got, "over tls");
  EXPECT_TRUE(server->secure_established());
}

// A non-blocking TCP socket whose connect is under way (after EINPROGRESS).
int StartConnect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

int TcpState(int fd) {
  tcp_info info = {};
  socklen_t len = sizeof(info);
  return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 ? info.tcpi_state : -1;
}

// A TCP listener on 127.0.0.1 with backlog 0 (see ConnectThatWaits); -1
// on failure.
int ListenWithoutRoom(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 0) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

// A connect to `port` (listening with backlog 0, not accepting) that stays
// under way: *filler, connected first, fills the accept queue, so the next
// SYN is dropped and sent again after a second. Once the listener has
// accepted the filler, that retry connects. -1 on failure.
int ConnectThatWaits(int port, int* filler) {
  *filler = StartConnect(port);
  pollfd p{*filler, POLLOUT, 0};
  if (*filler < 0 || poll(&p, 1, 5000) != 1) return -1;
  absl::SleepFor(absl::Milliseconds(50));  // the listener queues it
  int fd = StartConnect(port);
  if (fd >= 0 && TcpState(fd) != TCP_SYN_SENT) {
    close(fd);
    return -1;
  }
  return fd;
}

// Node's tls.connect({socket}) over a socket still connecting
// (test-tls-connect-given-socket): the TLS socket waits for 'connect'.
TEST_F(SocketTest, WrapOfASocketStillConnectingWaitsForTheConnectThenHandshakes) {
  // A full accept queue (backlog 0, one connection waiting) drops the next
  // SYN, so that connect stays under way until the retransmission (1 s).
  ServerOptions o = ServerFor();
  o.backlog = 0;
  StartEcho(o);
  int filler = -1;
  int fd = ConnectThatWaits(port_, &filler);
  ASSERT_GE(fd, 0) << "the connect must still be under way for this test";
  sockaddr_storage peer;
  socklen_t peer_len = sizeof(peer);
  ASSERT_NE(getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len), 0);
  ASSERT_EQ(errno, ENOTCONN);

  absl::StatusOr<std::shared_ptr<TlsSocket>> wrapped = TlsSocket::Wrap(loop_.get(), fd, ClientTo(port_));
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  std::shared_ptr<TlsSocket> c = *wrapped;
  EXPECT_EQ(c->ready_state(), ReadyState::kOpening);
  std::vector<std::string> events;
  std::string got;
  c->handlers().on_connect = [&] { events.push_back("connect"); };
  c->handlers().on_secure_connect = [&] { events.push_back("secureConnect"); };
  c->handlers().on_data = [&](absl::string_view d) { got.append(d.data(), d.size()); };
  c->handlers().on_error = [](const absl::Status& e) { ADD_FAILURE() << e; };
  EXPECT_TRUE(c->Write("written while connecting"));  // queued until the handshake
  close(filler);  // the server takes it (a client error), then the retried SYN
  ASSERT_TRUE(RunUntil(*loop_, [&] { return got == "written while connecting"; }, absl::Seconds(10))) << got;
  EXPECT_EQ(events, (std::vector<std::string>{"connect", "secureConnect"}));
  EXPECT_TRUE(c->authorized());
  EXPECT_EQ(c->remote_port(), port_);
  EXPECT_EQ(c->ready_state(), ReadyState::kOpen);
  EndAndWait(c);
}

// A socket nobody is connecting cannot become connected once Wrap holds
// it (Node's tls socket over an empty net.Socket waits for a later
// socket.connect(); an fd has no such later call): refused at once, and
// the fd is closed.
TEST_F(SocketTest, WrapOfASocketNeitherConnectedNorConnectingIsRefusedWithEnotconn) {
  int idle = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(idle, 0);
  int listening = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listening, 0);
  ASSERT_EQ(listen(listening, 1), 0);
  for (int fd : {idle, listening}) {
    absl::StatusOr<std::shared_ptr<TlsSocket>> wrapped = TlsSocket::Wrap(loop_.get(), fd, ClientTo(1));
    EXPECT_EQ(wrapped.status().code(), absl::StatusCode::kFailedPrecondition) << wrapped.status();
    EXPECT_EQ(NodeCode(wrapped.status()), "ENOTCONN");
    EXPECT_TRUE(absl::StrContains(wrapped.status().message(), "no connect is under way")) << wrapped.status();
    EXPECT_EQ(fcntl(fd, F_GETFD), -1) << "the fd was taken and closed";
  }
}

// test-tls-wrap-econnreset: a plain server that ends the connection at
// once gives the client ECONNRESET.
TEST_F(SocketTest, WrapOfAConnectingSocketToAServerThatClosesAtOnceIsEconnreset) {
  int port = 0;
  int listening = ListenWithoutRoom(&port);
  ASSERT_GE(listening, 0);
  int filler = -1;
  int fd = ConnectThatWaits(port, &filler);
  ASSERT_GE(fd, 0) << "the connect must still be under way for this test";
  absl::StatusOr<std::shared_ptr<TlsSocket>> wrapped = TlsSocket::Wrap(loop_.get(), fd, ClientTo(port));
  ASSERT_TRUE(wrapped.ok()) << wrapped.status();
  std::shared_ptr<TlsSocket> c = *wrapped;
  testing::Ending ending;
  testing::RecordEnding(*c, &ending);
  bool secure = false, connected = false;
  c->handlers().on_secure_connect = [&] { secure = true; };
  c->handlers().on_connect = [&] { connected = true; };
  // A plain server: accepts each connection and closes it at once.
  std::thread server([listening] {
    for (int i = 0; i < 2; ++i) {
      pollfd p{listening, POLLIN, 0};
      if (poll(&p, 1, 5000) != 1) return;
      int accepted = accept4(listening, nullptr, nullptr, SOCK_CLOEXEC);
      if (accepted >= 0) close(accepted);
    }
  });
  bool done = RunUntil(*loop_, [&] { return ending.closed; });
  server.join();
  close(filler);
  close(listening);
  ASSERT_TRUE(done);
  EXPECT_TRUE(connected);
  EXPECT_FALSE(secure);
  EXPECT_EQ(NodeCode(ending.error), "ECONNRESET") << ending.error;
  EXPECT_TRUE(ending.had_error);
}

// A connect that fails, before Wrap looked or while it waits, is the
// socket's error, as Node's socket 'error' (ECONNREFUSED) reaches the TLS
// socket.
TEST_F(SocketTest, WrapOfAConnectThatIsRefusedReportsEconnrefused) {
  auto expect_refused = [&](int fd, int port) {
    absl::StatusOr<std::shared_ptr<TlsSocket>> wrapped = TlsSocket::Wrap(loop_.get(), fd, ClientTo(port));
    ASSERT_TRUE(wrapped.ok()) << wrapped.status();
    std::shared_ptr<TlsSocket> c = *wrapped;
    testing::Ending ending;
    testing::RecordEnding(*c, &ending);
    bool connected = false;
    c->handlers().on_connect = [&] { connected = true; };
    ASSERT_TRUE(RunUntil(*loop_, [&] { return ending.closed; }));
    EXPECT_FALSE(connected);
    EXPECT_EQ(NodeCode(ending.error), "ECONNREFUSED") << ending.error;
    EXPECT_EQ(ending.error.code(), absl::StatusCode::kUnavailable) << ending.error;
    EXPECT_TRUE(ending.had_error);
  };
  {
    SCOPED_TRACE("a port nobody listens on: refused at once, usually before Wrap looks");
    int port = 0;
    {
      tlsengine::testing::Listener gone;
      port = gone.port();
    }
    int fd = StartConnect(port);
    ASSERT_GE(fd, 0) << "connect() refused at once, before any Wrap";
    expect_refused(fd, port);
  }
  {
    SCOPED_TRACE("the listener goes away while the connect waits");
    int port = 0;
    int listening = ListenWithoutRoom(&port);
    ASSERT_GE(listening, 0);
    int filler = -1;
    int fd = ConnectThatWaits(port, &filler);
    close(listening);  // the SYN sent again is answered with a reset
    close(filler);
    ASSERT_GE(fd, 0) << "the connect must still be under way for this test";
    expect_refused(fd, port);
  }
}

// Node's new TLSSocket(socket, {isServer: true}) emits 'error' then 'close'
// for a handshake that fails; a plain-HTTP client is the common case.
TEST_F(SocketTest, AWrappedServerRoleSocketEmitsItsHandshakeErrorThenClose) {
  int client_fd = -1, server_fd = -1;
  ASSERT_NO_FATAL_FAILURE(LoopbackPair(&client_fd, &server_fd));
  TlsSocketOptions so;
  so.tls = tlsengine::testing::ServerOptions("server-rsa");
  so.honour_sslkeylogfile = false;
  std::shared_ptr<TlsSocket> server = *TlsSocket::Wrap(loop_.get(), server_fd, so);
  std::vector<std::string> events;
  absl::Status error;
  server->handlers().on_error = [&](const absl::Status& e) {
    error = e;
    events.push_back("error");
  };
  server->handlers().on_close = [&](bool had_error) { events.push_back(had_error ? "close(error)" : "close"); };
  const std::string junk = "GET / HTTP/1.0\r\n\r\n";
  ASSERT_EQ(send(client_fd, junk.data(), junk.size(), MSG_NOSIGNAL), static_cast<ssize_t>(junk.size()));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return !events.empty(); }));
  close(client_fd);  // the server lingers for the client's end after its alert
  ASSERT_TRUE(RunUntil(*loop_, [&] { return events.size() >= 2; }));
  EXPECT_EQ(events, (std::vector<std::string>{"error", "close(error)"}));
  EXPECT_EQ(NodeCode(error), "ERR_SSL_HTTP_REQUEST") << error;  // as Node says
  EXPECT_FALSE(server->secure_established());
}

TEST_F(SocketTest, HalfCloseWithoutCloseNotifyIsEndAsTruncated) {
  std::vector<std::string> events;
  handlers_.on_secure_connection = [&](std::shared_ptr<TlsSocket> s) {
    TlsSocket* raw = s.get();
    s->handlers().on_data = [&events](absl::string_view d) { events.push_back(absl::StrCat("data:", d)); };
    s->handlers().on_end = [&events, raw] { events.push_back(raw->truncated() ? "end(truncated)" : "end"); };
    s->handlers().on_error = [&events](const absl::Status& e) { events.push_back(std::string(NodeCode(e))); };
    s->handlers().on_close = [&events](bool had_error) { events.push_back(had_error ? "close(error)" : "close"); };
  };
  server_ = *Server::Create({loop_.get()}, ServerFor("server-ecdsa"), handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  int fd = tlsengine::testing::ConnectLoopback(server_->address()->port);
  ASSERT_GE(fd, 0);
  std::unique_ptr<TlsConnection> engine = testing::HandshakeOver(fd, absl::Seconds(10), loop_.get());
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->Write("bye").ok());
  for (auto out = engine->Output(); !out.empty(); out = engine->Output()) {
    ssize_t n = send(fd, out[0].data(), out[0].size(), MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    ASSERT_TRUE(engine->ConsumeOutput(static_cast<size_t>(n)).ok());
  }
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);  // FIN, no close_notify
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 0; }));
  EXPECT_EQ(events, (std::vector<std::string>{"data:bye", "end(truncated)", "close"}));
  // The server ended its side in turn (allowHalfOpen false): EOF here.
  char buf[4096];
  ssize_t n;
  absl::Time end = absl::Now() + absl::Seconds(5);
  while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) != 0 && absl::Now() < end) {
    if (n < 0) RunFor(*loop_, absl::Milliseconds(10));
  }
  EXPECT_EQ(n, 0);
  close(fd);
}

TEST_F(SocketTest, WritesPastMaxBufferedWritesAreRefusedAndDestroyTheSocket) {
  std::shared_ptr<TlsSocket> server_side;
  handlers_.on_secure_connection = [&](std::shared_ptr<TlsSocket> s) {
    server_side = s;
    s->Pause();  // a peer that never reads
  };
  server_ = *Server::Create({loop_.get()}, ServerFor(), handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  TlsSocketOptions o = ClientTo(server_->address()->port);
  o.max_buffered_writes = 1 << 20;
  std::shared_ptr<TlsSocket> c = ConnectSecure(o);
  testing::Ending ending;
  testing::RecordEnding(*c, &ending);
  const absl::Status& error = ending.error;
  const bool& closed = ending.closed;
  const std::string chunk(64 * 1024, 'w');
  int false_but_kept = 0;
  size_t most_buffered = 0;
  for (int i = 0; i < 4096 && error.ok() && !closed; ++i) {
    size_t before = c->buffered_writes();
    bool below = c->Write(chunk);
    if (!below && c->buffered_writes() > before) ++false_but_kept;  // Node's semantics
    most_buffered = std::max(most_buffered, c->buffered_writes());
    RunFor(*loop_, absl::Milliseconds(1));
  }
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }));
  EXPECT_GT(false_but_kept, 0) << "above the high-water mark Write() still takes the data";
  EXPECT_LE(most_buffered, o.max_buffered_writes);
  EXPECT_GT(most_buffered, o.max_buffered_writes / 2);
  EXPECT_EQ(error.code(), absl::StatusCode::kResourceExhausted) << error;
  EXPECT_EQ(NodeCode(error), kErrBufferFull) << error;
  EXPECT_TRUE(absl::StrContains(error.message(), "max_buffered_writes")) << error;
  EXPECT_TRUE(ending.had_error);
  EXPECT_FALSE(c->Write("more")) << "nothing is taken after the refusal";
  RunFor(*loop_, absl::Milliseconds(20));

  TlsSocketOptions bad = ClientTo(server_->address()->port);
  bad.max_buffered_writes = bad.high_water_mark - 1;
  absl::StatusOr<std::shared_ptr<TlsSocket>> refused = TlsSocket::Connect(loop_.get(), bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_EQ(NodeCode(refused.status()), kErrInvalidArgValue);
}

// ---- The rest of issue 10's Server and TlsSocket surface: each property
// and event that no test above covers, with its error codes.

TEST_F(SocketTest, ListenCloseAndAddressRefuseWithNodesCodes) {
  handlers_.on_secure_connection = [](std::shared_ptr<TlsSocket> s) { EchoOn(s); };
  server_ = *Server::Create({loop_.get()}, ServerFor(), handlers_);
  absl::Status not_listening = server_->address().status();
  EXPECT_EQ(not_listening.code(), absl::StatusCode::kFailedPrecondition) << not_listening;
  absl::Status not_running = server_->Close();
  EXPECT_EQ(not_running.code(), absl::StatusCode::kFailedPrecondition) << not_running;
  EXPECT_EQ(NodeCode(not_running), "ERR_SERVER_NOT_RUNNING") << not_running;
  absl::Status bad_port = server_->Listen(65536, "127.0.0.1");
  EXPECT_EQ(bad_port.code(), absl::StatusCode::kInvalidArgument) << bad_port;
  absl::Status bad_host = server_->Listen(0, "no-such-host.invalid");  // RFC 2606: never resolves
  EXPECT_TRUE(NodeCode(bad_host) == "ENOTFOUND" || NodeCode(bad_host) == "EAI_AGAIN") << bad_host;
  EXPECT_FALSE(server_->listening());

  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  absl::StatusOr<SocketAddress> addr = server_->address();
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_GT(addr->port, 0) << "port 0 picks a free port, and address() says which";
  absl::Status again = server_->Listen(0, "127.0.0.1");
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition) << again;
  EXPECT_EQ(NodeCode(again), "ERR_SERVER_ALREADY_LISTEN") << again;
  std::unique_ptr<Server> other = *Server::Create({loop_.get()}, ServerFor(), handlers_);
  absl::Status in_use = other->Listen(addr->port, "127.0.0.1");
  EXPECT_EQ(in_use.code(), absl::StatusCode::kUnavailable) << in_use;
  EXPECT_EQ(NodeCode(in_use), "EADDRINUSE") << in_use;
  SecureContextOptions bad = tlsengine::testing::IdentityOptions("other-name");
  bad.cert = {"not a certificate"};
  absl::Status bad_context = server_->AddContext("other.example.com", bad);
  EXPECT_EQ(bad_context.code(), absl::StatusCode::kInvalidArgument) << bad_context;
}

TEST_F(SocketTest, ListeningAndConnectionEventsComeBeforeTls) {
  int listening = 0;
  std::vector<std::string> connections;
  handlers_.on_listening = [&] { ++listening; };
  handlers_.on_connection = [&](TlsSocket& s) {
    connections.push_back(absl::StrCat(s.remote_address(), s.secure_established() ? " secure" : " before TLS"));
  };
  StartEcho();
  EXPECT_EQ(listening, 0) << "'listening' comes from the loop";
  RunFor(*loop_, absl::Milliseconds(20));
  EXPECT_EQ(listening, 1);
  // A TCP connection that sends nothing: 'connection', no 'secureConnection'.
  int raw = tlsengine::testing::ConnectLoopback(port_);
  ASSERT_GE(raw, 0);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return connections.size() == 1; }));
  EXPECT_EQ(connections[0], "127.0.0.1 before TLS");
  EXPECT_EQ(secure_connections_, 0);
  close(raw);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_->connections() == 0; }));
  std::shared_ptr<TlsSocket> c = ConnectSecure(ClientTo(port_));
  EXPECT_EQ(connections.size(), 2u);
  EndAndWait(c);
}

TEST_F(SocketTest, CloseStopsAcceptingAndCallsBackOnceTheOpenConnectionsHaveEnded) {
  StartEcho();
  std::shared_ptr<TlsSocket> open = ConnectSecure(ClientTo(port_));
  bool closed = false;
  ASSERT_TRUE(server_->Close([&] { closed = true; }).ok());
  EXPECT_FALSE(server_->listening());
  std::shared_ptr<TlsSocket> late = *TlsSocket::Connect(loop_.get(), ClientTo(port_));
  testing::Ending ending;
  testing::RecordEnding(*late, &ending);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return ending.closed; }));
  EXPECT_EQ(NodeCode(ending.error), "ECONNREFUSED") << ending.error;
  EXPECT_FALSE(closed) << "the open connection is not ended by Close()";
  EXPECT_TRUE(Echoes(open, "still served"));
  EndAndWait(open);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; })) << "Close()'s callback once the last one ended";
}

TEST_F(SocketTest, CipherCertificatesAndEncryptedDescribeTheConnection) {
  std::shared_ptr<TlsSocket> server_side;
  handlers_.on_secure_connection = [&](std::shared_ptr<TlsSocket> s) { server_side = s; };
  server_ = *Server::Create({loop_.get()}, ServerFor("server-ecdsa", "TLSv1.2"), handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  std::shared_ptr<TlsSocket> c = ConnectSecure(ClientTo(server_->address()->port));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_side != nullptr; }));
  EXPECT_TRUE(c->encrypted());
  EXPECT_FALSE(c->is_server());
  EXPECT_TRUE(server_side->is_server());
  std::optional<CipherInfo> cipher = c->GetCipher();
  ASSERT_TRUE(cipher.has_value());
  EXPECT_TRUE(absl::StartsWith(cipher->name, "ECDHE-ECDSA-")) << cipher->name;
  EXPECT_TRUE(absl::StartsWith(cipher->standard_name, "TLS_ECDHE_ECDSA_WITH_")) << cipher->standard_name;
  EXPECT_EQ(server_side->GetCipher()->name, cipher->name);
  EXPECT_EQ(c->protocol(), "TLSv1.2");
  // getCertificate(): our own; the client has none, the server its leaf.
  EXPECT_FALSE(c->GetCertificate().has_value());
  ASSERT_TRUE(server_side->GetCertificate().has_value());
  EXPECT_EQ(server_side->GetCertificate()->fingerprint256, Fingerprint("server-ecdsa"));
  EXPECT_EQ(c->GetPeerCertificate()->fingerprint256, Fingerprint("server-ecdsa"));
  EXPECT_FALSE(server_side->GetPeerCertificate().has_value()) << "no client certificate was asked for";
  EXPECT_EQ(c->npn_protocol(), "") << "no NPN offered";
  EXPECT_EQ(c->alpn_protocol(), "");
  EndAndWait(c);
}

// Node's getters on a destroyed socket (checked with node -e): getCipher,
// getProtocol, getPeerCertificate, getCertificate, getSession,
// getTLSTicket and isSessionReused return null; authorized,
// authorizationError, alpnProtocol and servername keep their values.
TEST_F(SocketTest, AfterDestroyTheSessionGettersReturnNothingAndThePropertiesStay) {
  SecureContextOptions own = tlsengine::testing::IdentityOptions("client", "TLSv1.2");
  ServerOptions so = ServerFor("server-rsa", "TLSv1.2");
  so.connection.alpn_protocols = {"h2"};
  StartEcho(so);
  TlsSocketOptions o = ClientTo(port_, "TLSv1.2");
  o.tls.secure_context = tlsengine::testing::MakeContext(own);  // a certificate of its own
  o.tls.servername = "localhost";
  o.tls.alpn_protocols = {"h2"};
  std::shared_ptr<TlsSocket> c = ConnectSecure(o);
  ASSERT_TRUE(c->GetCipher().has_value());
  ASSERT_EQ(c->protocol(), "TLSv1.2");
  ASSERT_TRUE(c->GetPeerCertificate().has_value());
  ASSERT_TRUE(c->GetCertificate().has_value());
  ASSERT_FALSE(c->GetSession().empty());
  ASSERT_FALSE(c->GetTlsTicket().empty());
  ASSERT_TRUE(c->ExportKeyingMaterial(16, "EXPORTER-test").ok());
  ASSERT_TRUE(c->authorized());
  ASSERT_EQ(c->alpn_protocol(), "h2");
  testing::Ending ending;
  testing::RecordEnding(*c, &ending);
  auto check_destroyed = [&](const std::string& when) {
    SCOPED_TRACE(when);
    EXPECT_FALSE(c->GetCipher().has_value());
    EXPECT_EQ(c->protocol(), "");
    EXPECT_FALSE(c->GetPeerCertificate().has_value());
    EXPECT_FALSE(c->GetPeerCertificate(/*detailed=*/true).has_value());
    EXPECT_FALSE(c->GetCertificate().has_value());
    EXPECT_EQ(c->GetSession(), "");
    EXPECT_EQ(c->GetTlsTicket(), "");
    EXPECT_FALSE(c->is_session_reused());
    absl::StatusOr<std::string> ekm = c->ExportKeyingMaterial(16, "EXPORTER-test");
    EXPECT_EQ(ekm.status().code(), absl::StatusCode::kFailedPrecondition) << ekm.status();
    EXPECT_EQ(NodeCode(ekm.status()), kErrInvalidState);
    EXPECT_FALSE(c->SetMaxSendFragment(1024));
    // Node's properties stay.
    EXPECT_TRUE(c->authorized());
    EXPECT_EQ(c->authorization_error(), "");
    EXPECT_EQ(c->alpn_protocol(), "h2");
    EXPECT_EQ(c->servername(), "localhost");
  };
  c->Destroy();
  check_destroyed("at once");
  ASSERT_TRUE(RunUntil(*loop_, [&] { return ending.closed; }));
  check_destroyed("after close");
  EXPECT_TRUE(ending.error.ok()) << ending.error;
}

TEST_F(SocketTest, NpnIsAgreedOnTls12) {
  std::shared_ptr<TlsSocket> server_side;
  handlers_.on_secure_connection = [&](std::shared_ptr<TlsSocket> s) { server_side = s; };
  ServerOptions o = ServerFor("server-ecdsa", "TLSv1.2");
  o.context.npn_protocols = {"spdy/3", "http/1.1"};
  server_ = *Server::Create({loop_.get()}, o, handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  TlsSocketOptions co = ClientTo(server_->address()->port, "TLSv1.2");
  SecureContextOptions npn;
  npn.max_version = "TLSv1.2";
  npn.npn_protocols = {"http/1.1"};
  co.tls = tlsengine::testing::ClientWith(npn);
  std::shared_ptr<TlsSocket> c = ConnectSecure(co);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_side != nullptr; }));
  EXPECT_EQ(c->npn_protocol(), "http/1.1");
  EXPECT_EQ(server_side->npn_protocol(), "http/1.1");
  EndAndWait(c);
}

TEST_F(SocketTest, AnUntrustedServerWithRejectUnauthorizedOffIsSecureButNotAuthorized) {
  StartEcho();
  SecureContextOptions other_ca;
  other_ca.ca = std::vector<std::string>{tlsengine::testing::Cert("ca2")};
  TlsSocketOptions o = ClientTo(port_);
  o.tls = tlsengine::testing::ClientWith(other_ca);
  o.tls.reject_unauthorized = false;
  std::shared_ptr<TlsSocket> c = ConnectSecure(o);
  EXPECT_FALSE(c->authorized());
  EXPECT_EQ(c->authorization_error(), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
  EXPECT_TRUE(Echoes(c, "unauthorized but encrypted"));
  EndAndWait(c);

  // With reject_unauthorized (the default): the same code as an error.
  o.tls.reject_unauthorized = true;
  std::shared_ptr<TlsSocket> rejected = *TlsSocket::Connect(loop_.get(), o);
  testing::Ending ending;
  testing::RecordEnding(*rejected, &ending);
  ASSERT_TRUE(RunUntil(*loop_, [&] { return ending.closed; }));
  EXPECT_EQ(NodeCode(ending.error), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY") << ending.error;
  EXPECT_EQ(ending.error.code(), absl::StatusCode::kUnauthenticated) << ending.error;
  EXPECT_TRUE(ending.had_error);
}

// `tlsctl connect --insecure` to a self-signed service, or to one whose
// certificate names another host: the session resumes, as in Node, and the
// resumed connection reports the full handshake's verdict. The peer is
// openssl s_server, TLS 1.2 (ticket) and 1.3.
TEST_F(SocketTest, WithoutRejectUnauthorizedSServerSessionsResumeWithTheSameVerdict) {
  struct Case {
    std::string identity, code;
  };
  for (const Case& c : {Case{"self-signed", "DEPTH_ZERO_SELF_SIGNED_CERT"},
                        Case{"other-name", "ERR_TLS_CERT_ALTNAME_INVALID"}}) {
    for (const std::string version : {"TLSv1.2", "TLSv1.3"}) {
      SCOPED_TRACE(c.identity + " " + version);
      std::vector<std::string> argv = {"openssl", "s_server", "-accept", "0", "-naccept", "2", "-rev",
                                       version == "TLSv1.2" ? "-tls1_2" : "-tls1_3",
                                       "-cert", tlsengine::testing::TestFilePath(c.identity + ".pem"),
                                       "-key", tlsengine::testing::TestFilePath(c.identity + "-key.pem")};
      if (c.identity != "self-signed") {
        argv.insert(argv.end(), {"-cert_chain", tlsengine::testing::TestFilePath("int1.pem")});
      }
      tlsengine::testing::Subprocess server;
      ASSERT_TRUE(server.Start(argv).ok());
      absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", absl::Seconds(10));
      ASSERT_TRUE(accept.ok()) << accept.status();
      const int port = std::stoi(accept->substr(accept->rfind(':') + 1));
      std::string session;
      for (int round = 0; round < 2; ++round) {
        TlsSocketOptions o = ClientTo(port, version);
        o.tls.reject_unauthorized = false;
        o.tls.session = session;
        std::shared_ptr<TlsSocket> sock = ConnectSecure(o);
        EXPECT_EQ(sock->is_session_reused(), round == 1);
        EXPECT_FALSE(sock->authorized());
        EXPECT_EQ(sock->authorization_error(), c.code);
        std::string got;
        sock->handlers().on_data = [&got](absl::string_view d) { got.append(d.data(), d.size()); };
        sock->Write("hello\n");
        ASSERT_TRUE(RunUntil(*loop_, [&] { return absl::StrContains(got, "olleh"); })) << got;
        session = sock->GetSession();  // TLS 1.3: its ticket came before the reply
        ASSERT_FALSE(session.empty());
        EndAndWait(sock);  // close_notify: s_server keeps the session
      }
      EXPECT_EQ(server.Wait(absl::Seconds(5)), 0) << server.err();
    }
  }
}

TEST_F(SocketTest, WriteAfterEndAndAfterDestroyReportNodesCodesOnce) {
  StartEcho();
  std::shared_ptr<TlsSocket> c = ConnectSecure(ClientTo(port_));
  std::vector<std::string> errors;
  c->handlers().on_error = [&](const absl::Status& e) { errors.push_back(std::string(NodeCode(e))); };
  bool closed = false;
  c->handlers().on_close = [&](bool) { closed = true; };
  c->End();
  EXPECT_FALSE(c->Write("late"));
  EXPECT_FALSE(c->Write("later"));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }));
  EXPECT_EQ(errors, std::vector<std::string>{"ERR_STREAM_WRITE_AFTER_END"}) << "once";

  std::shared_ptr<TlsSocket> d = ConnectSecure(ClientTo(port_));
  testing::Ending ending;
  testing::RecordEnding(*d, &ending);
  d->Destroy(absl::CancelledError("the application gave up"));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return ending.closed; }));
  EXPECT_EQ(ending.error.code(), absl::StatusCode::kCancelled) << "Destroy(error) emits that error";
  EXPECT_TRUE(ending.had_error);
  EXPECT_EQ(d->ready_state(), ReadyState::kClosed);
  absl::Status after;
  d->handlers().on_error = [&](const absl::Status& e) { after = e; };
  EXPECT_FALSE(d->Write("after destroy"));
  RunFor(*loop_, absl::Milliseconds(20));
  EXPECT_EQ(NodeCode(after), "ERR_STREAM_DESTROYED") << after;
}

TEST_F(SocketTest, AllowHalfOpenKeepsWritingAfterThePeerEndedInReadyStateWriteOnly) {
  std::string server_got;
  handlers_.on_secure_connection = [&](std::shared_ptr<TlsSocket> s) {
    s->handlers().on_data = [&server_got](absl::string_view d) { server_got.append(d.data(), d.size()); };
    s->End("bye");  // ends its side at once; keeps reading
  };
  server_ = *Server::Create({loop_.get()}, ServerFor(), handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  TlsSocketOptions o = ClientTo(server_->address()->port);
  o.allow_half_open = true;
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), o);
  std::string got;
  bool ended = false, closed = false;
  c->handlers().on_data = [&](absl::string_view d) { got.append(d.data(), d.size()); };
  c->handlers().on_end = [&] { ended = true; };
  c->handlers().on_close = [&](bool) { closed = true; };
  c->handlers().on_error = [](const absl::Status& e) { ADD_FAILURE() << e; };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return ended; }));
  EXPECT_EQ(got, "bye");
  EXPECT_FALSE(c->truncated()) << "close_notify, not a bare EOF";
  RunFor(*loop_, absl::Milliseconds(50));
  EXPECT_FALSE(closed) << "allow_half_open: our side stays open";
  EXPECT_EQ(c->ready_state(), ReadyState::kWriteOnly);
  EXPECT_TRUE(c->Write("after your end"));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_got == "after your end"; })) << server_got;
  c->End();
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed && server_->connections() == 0; }));
  EXPECT_EQ(c->ready_state(), ReadyState::kClosed);
}

TEST_F(SocketTest, SetMaxSendFragmentBoundsTheRecordsWeSend) {
  std::shared_ptr<TlsSocket> server_side;
  handlers_.on_secure_connection = [&](std::shared_ptr<TlsSocket> s) { server_side = s; };
  server_ = *Server::Create({loop_.get()}, ServerFor(), handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  std::shared_ptr<TlsSocket> c = ConnectSecure(ClientTo(server_->address()->port));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_side != nullptr; }));
  // The client sees one 'data' per record: the largest piece is the record size.
  auto largest_piece = [&](size_t total) {
    size_t got = 0, largest = 0;
    c->handlers().on_data = [&](absl::string_view d) {
      got += d.size();
      largest = std::max(largest, d.size());
    };
    server_side->Write(std::string(total, 'f'));
    EXPECT_TRUE(RunUntil(*loop_, [&] { return got == total; }));
    return largest;
  };
  EXPECT_GT(largest_piece(64 * 1024), 512u) << "full records by default";
  EXPECT_FALSE(server_side->SetMaxSendFragment(511));
  EXPECT_FALSE(server_side->SetMaxSendFragment(16385));
  ASSERT_TRUE(server_side->SetMaxSendFragment(512));
  EXPECT_LE(largest_piece(64 * 1024), 512u);
  EndAndWait(c);
}

TEST_F(SocketTest, KeyUpdateFromOurClientKeepsEchoingAndTls12RefusesIt) {
  std::shared_ptr<TlsSocket> server_side;
  handlers_.on_secure_connection = [&](std::shared_ptr<TlsSocket> s) {
    server_side = s;
    EchoOn(s);
  };
  server_ = *Server::Create({loop_.get()}, ServerFor("server-ecdsa"), handlers_);
  ASSERT_TRUE(server_->Listen(0, "127.0.0.1").ok());
  std::shared_ptr<TlsSocket> c = ConnectSecure(ClientTo(server_->address()->port, "TLSv1.3"));
  ASSERT_TRUE(RunUntil(*loop_, [&] { return server_side != nullptr; }));
  ASSERT_TRUE(c->KeyUpdate(/*request_peer=*/true).ok());
  EXPECT_TRUE(Echoes(c, "under new keys"));
  EXPECT_EQ(c->engine()->stats().key_updates_sent, 1u);
  EXPECT_EQ(server_side->engine()->stats().key_updates_received, 1u);
  EXPECT_EQ(c->engine()->stats().key_updates_received, 1u) << "the server answered request_peer";
  EndAndWait(c);
  absl::Status closed = c->KeyUpdate(false);
  EXPECT_EQ(closed.code(), absl::StatusCode::kFailedPrecondition) << closed;

  std::shared_ptr<TlsSocket> old = ConnectSecure(ClientTo(server_->address()->port, "TLSv1.2"));
  absl::Status refused = old->KeyUpdate(true);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_EQ(NodeCode(refused), kErrInvalidState) << refused;
  EndAndWait(old);
}

TEST_F(SocketTest, ReadyStateGoesOpeningOpenReadOnlyClosedAndCountersCountPlaintext) {
  StartEcho();
  std::shared_ptr<TlsSocket> c = *TlsSocket::Connect(loop_.get(), ClientTo(port_));
  std::vector<std::string> states = {std::string(ReadyStateName(c->ready_state()))};
  auto note = [&] {
    std::string now(ReadyStateName(c->ready_state()));
    if (states.back() != now) states.push_back(now);
  };
  std::string got;
  bool closed = false;
  c->handlers().on_connect = note;
  c->handlers().on_secure_connect = [&] {
    note();
    c->Write("12345");
  };
  c->handlers().on_data = [&](absl::string_view d) {
    got.append(d.data(), d.size());
    if (got == "12345") {
      c->End("678");
      note();
    }
  };
  c->handlers().on_end = note;
  c->handlers().on_close = [&](bool) {
    note();
    closed = true;
  };
  ASSERT_TRUE(RunUntil(*loop_, [&] { return closed; }));
  EXPECT_EQ(states, (std::vector<std::string>{"opening", "open", "readOnly", "closed"}));
  EXPECT_EQ(c->bytes_written(), 8u) << "plaintext accepted by Write() and End()";
  EXPECT_EQ(c->bytes_read(), 8u) << "plaintext received";
  EXPECT_GT(c->raw_bytes_written(), 8u);
}

TEST_F(SocketTest, AnIpv6ConnectionReportsIpv6OnBothEnds) {
  StartEcho(ServerFor(), "::1");
  TlsSocketOptions o = ClientTo(port_);
  o.host = "::1";
  std::shared_ptr<TlsSocket> c = ConnectSecure(o);
  EXPECT_EQ(c->remote_family(), "IPv6");
  EXPECT_EQ(c->remote_address(), "::1");
  EXPECT_EQ(c->address().family, "IPv6");
  EXPECT_EQ(c->local_address(), "::1");
  EndAndWait(c);
}

// The server's own session store (ServerOptions::session_cache, the
// default) keeps what a later handshake asks for by id: TLS 1.2 sessions.
// A TLS 1.3 ticket carries its session, so the store keeps nothing for it
// (before, two entries per connection pushed TLS 1.2 ids out of the LRU).
class SessionStoreTest : public SocketTest {
 protected:
  // Two connections, the second offering the first's session: *resumed
  // says whether it resumed; returns the entries the store holds after.
  size_t StoredAfterResuming(const std::string& version, bool tickets, bool* resumed) {
    ServerOptions o = ServerFor("server-ecdsa", version);
    if (!tickets) o.context.secure_options |= kSslOpNoTicket;
    StartEcho(o);
    auto* store = dynamic_cast<MemorySessionStore*>(server_->session_store());
    EXPECT_NE(store, nullptr) << "session_cache without handlers: the server's store";
    if (store == nullptr) return 0;
    std::string session;
    for (int round = 0; round < 2; ++round) {
      TlsSocketOptions co = ClientTo(port_);
      co.tls.session = session;
      std::shared_ptr<TlsSocket> c = ConnectSecure(co);
      *resumed = c->is_session_reused();
      if (round == 0) EXPECT_FALSE(*resumed) << "nothing to resume in the first round";
      EXPECT_TRUE(Echoes(c, "ping"));  // a TLS 1.3 session comes after the handshake
      session = c->GetSession();
      EXPECT_FALSE(session.empty());
      EndAndWait(c);
    }
    return store->size();
  }
};

TEST_F(SessionStoreTest, Tls13TicketsResumeWithoutAnEntryInTheStore) {
  bool resumed = false;
  EXPECT_EQ(StoredAfterResuming("TLSv1.3", true, &resumed), 0u);
  EXPECT_TRUE(resumed) << "the ticket alone resumes";
}

TEST_F(SessionStoreTest, Tls12SessionIdsResumeFromTheStore) {
  bool resumed = false;
  EXPECT_EQ(StoredAfterResuming("TLSv1.2", false, &resumed), 1u);
  EXPECT_TRUE(resumed) << "a TLS 1.2 session id is looked up in the store";
}

}  // namespace
}  // namespace epoll
}  // namespace tlsengine

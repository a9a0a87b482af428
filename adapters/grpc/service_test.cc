// The TlsControl service over real gRPC: a ControlServer on a unix socket
// (and on loopback TCP, with and without TLS), driven through the generated
// stub and through the `call` library. Every call's status is checked.
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>

#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "adapters/grpc/call.h"
#include "adapters/grpc/control.grpc.pb.h"
#include "adapters/grpc/daemon.h"
#include "core/certificate.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace control {
namespace {

using tlsengine::testing::Cert;
using tlsengine::testing::Chain;
using tlsengine::testing::Key;
using tlsengine::testing::ReadTestFile;

// A short private directory: TEST_TMPDIR is often too long for a unix
// socket path (108 bytes).
std::string TmpDir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/tlsctl-test-XXXXXX";
    const char* d = mkdtemp(tmpl);
    return std::string(d != nullptr ? d : "/tmp");
  }();
  return dir;
}

std::string WriteTmp(const std::string& name, const std::string& data) {
  std::string path = absl::StrCat(TmpDir(), "/", name);
  std::ofstream(path, std::ios::binary) << data;
  return path;
}

std::string Fingerprint(const std::string& identity) {
  absl::StatusOr<CertificateInfo> info = CertificateInfo::FromPem(Cert(identity));
  return info.ok() ? info->fingerprint256 : "";
}

// A fake clock the test moves. std::mutex, not absl::Mutex: Debian's
// Abseil is not built for TSan, which would not see absl::Mutex's locking.
struct FakeClock {
  std::mutex mu;
  absl::Time now = absl::Now();
  absl::Time Get() {
    std::lock_guard<std::mutex> l(mu);
    return now;
  }
};

class ControlTest : public ::testing::Test {
 protected:
  void Start(DaemonOptions o = DaemonOptions()) {
    ASSERT_NO_FATAL_FAILURE(StartServer(std::move(o)));
  }
  void StartServer(DaemonOptions o) {
    o.controller.clock = [this] { return clock_.Get(); };
    static int n = 0;
    socket_ = absl::StrCat(TmpDir(), "/control-", getpid(), "-", ++n, ".sock");
    absl::StatusOr<std::unique_ptr<ControlServer>> s = ControlServer::Start("unix:" + socket_, std::move(o));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    client_.address = server_->address();
    absl::StatusOr<std::shared_ptr<grpc::Channel>> ch = MakeChannel(client_);
    ASSERT_TRUE(ch.ok()) << ch.status();
    channel_ = *ch;
    stub_ = v1::TlsControl::NewStub(channel_);
  }
  void TearDown() override {
    // The channel goes first: destroyed after the server, it can wait out
    // a finished call's deadline timer (10 s for a Read below).
    stub_.reset();
    channel_.reset();
    if (server_) server_->Shutdown();
  }

  // One unary call with a deadline.
  template <typename Req, typename Resp>
  grpc::Status Do(grpc::Status (v1::TlsControl::Stub::*m)(grpc::ClientContext*, const Req&, Resp*), const Req& req,
                  Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return (stub_.get()->*m)(&ctx, req, resp);
  }
  // One unary call that must succeed; its reply.
  template <typename Req, typename Resp>
  Resp Ok(grpc::Status (v1::TlsControl::Stub::*m)(grpc::ClientContext*, const Req&, Resp*), const Req& req) {
    Resp resp;
    grpc::Status s = Do(m, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  // A context serving `identity` (leaf + chain) and trusting ca1.
  std::string ServerContext(const std::string& identity) {
    v1::CreateContextRequest req;
    req.add_cert(Chain(identity));
    req.add_key(Key(identity));
    req.add_ca(Cert("ca1"));
    return Ok(&v1::TlsControl::Stub::CreateContext, req).context_id();
  }
  std::string ClientContext() {
    v1::CreateContextRequest req;
    req.add_ca(Cert("ca1"));
    return Ok(&v1::TlsControl::Stub::CreateContext, req).context_id();
  }
  // server-rsa, TLS 1.2 at most: a context that can renegotiate.
  std::string Tls12ServerContext() {
    v1::CreateContextRequest req;
    req.add_cert(Chain("server-rsa"));
    req.add_key(Key("server-rsa"));
    req.set_max_version("TLSv1.2");
    return Ok(&v1::TlsControl::Stub::CreateContext, req).context_id();
  }
  v1::ListenResponse Listen(const std::string& context_id, const std::string& mode = "echo") {
    v1::ListenRequest req;
    req.set_context_id(context_id);
    req.set_host("127.0.0.1");
    req.set_mode(mode);
    v1::ListenResponse resp = Ok(&v1::TlsControl::Stub::Listen, req);
    EXPECT_GT(resp.address().port(), 0);
    return resp;
  }
  v1::ConnectResponse Connect(int port, const std::string& client_ctx, const std::string& session = "",
                              const std::string& servername = "localhost") {
    v1::ConnectRequest req;
    req.set_port(port);
    req.set_servername(servername);
    req.set_context_id(client_ctx);
    req.set_session(session);
    return Ok(&v1::TlsControl::Stub::Connect, req);
  }
  grpc::Status Write(const std::string& id, const std::string& data) {
    v1::WriteRequest req;
    req.set_connection_id(id);
    req.set_data(data);
    v1::WriteResponse resp;
    grpc::Status s = Do(&v1::TlsControl::Stub::Write, req, &resp);
    if (s.ok()) EXPECT_EQ(resp.written(), data.size());
    return s;
  }
  // Reads exactly `n` bytes (bounded in time).
  std::string Read(const std::string& id, size_t n) {
    v1::ReadRequest req;
    req.set_connection_id(id);
    req.set_max_bytes(n);
    req.set_timeout(10000);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    std::unique_ptr<grpc::ClientReader<v1::ReadChunk>> r = stub_->Read(&ctx, req);
    std::string got;
    v1::ReadChunk chunk;
    while (r->Read(&chunk)) got += chunk.data();
    grpc::Status s = r->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return got;
  }
  // Reads until the chunk marked `end`; whether it came.
  bool ReadsToEnd(const v1::ReadRequest& req) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    std::unique_ptr<grpc::ClientReader<v1::ReadChunk>> reader = stub_->Read(&ctx, req);
    v1::ReadChunk chunk;
    bool ended = false;
    while (reader->Read(&chunk)) ended = ended || chunk.end();
    grpc::Status s = reader->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
    return ended;
  }
  // Writes and reads back through an echo.
  std::string Echo(const std::string& id, const std::string& data) {
    EXPECT_TRUE(Write(id, data).ok());
    return Read(id, data.size());
  }
  // The listener's side of the only connection it has (the client is
  // secure first in TLS 1.3; the server side follows shortly).
  std::string ServerSide(const std::string& listener_id, int index = 0) {
    v1::ListConnectionsRequest req;
    req.set_listener_id(listener_id);
    v1::ListConnectionsResponse page;
    for (int i = 0; i < 200 && page.connections_size() <= index; ++i) {
      grpc::Status s = Do(&v1::TlsControl::Stub::ListConnections, req, &page);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (page.connections_size() <= index) absl::SleepFor(absl::Milliseconds(10));
    }
    EXPECT_GT(page.connections_size(), index);
    return page.connections_size() > index ? page.connections(index).connection_id() : "";
  }
  v1::ConnectionInfo Get(const std::string& id) {
    v1::ConnectionRequest req;
    req.set_connection_id(id);
    return Ok(&v1::TlsControl::Stub::GetConnection, req);
  }

  FakeClock clock_;
  std::string socket_;
  std::unique_ptr<ControlServer> server_;
  ClientOptions client_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TlsControl::Stub> stub_;
};

// ------------------------------------------------------ daemon and security

TEST_F(ControlTest, UnixSocketIsMode0600AndHealthSaysServing) {
  ASSERT_NO_FATAL_FAILURE(Start());
  struct stat st {};
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(st.st_uid, getuid());

  // grpc.health.v1.Health/Check with an empty HealthCheckRequest; the reply
  // is HealthCheckResponse{status: SERVING} = field 1, varint 1.
  grpc::internal::RpcMethod check("/grpc.health.v1.Health/Check", grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer request, reply;
  grpc::Slice empty("", 0);
  request = grpc::ByteBuffer(&empty, 1);
  grpc::Status s =
      grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(channel_.get(), check, &ctx, request, &reply);
  ASSERT_TRUE(s.ok()) << s.error_message();
  grpc::Slice got;
  ASSERT_TRUE(reply.TrySingleSlice(&got).ok() || reply.DumpToSingleSlice(&got).ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(got.begin()), got.size()), std::string("\x08\x01", 2));
}

TEST_F(ControlTest, SecondDaemonOnALiveSocketIsAlreadyExistsAndAStaleOneIsReplaced) {
  ASSERT_NO_FATAL_FAILURE(Start());
  absl::StatusOr<std::unique_ptr<ControlServer>> again = ControlServer::Start("unix:" + socket_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  server_->Shutdown();
  server_.reset();
  // A file left behind by a dead daemon (a socket nobody listens on).
  std::string stale = absl::StrCat(TmpDir(), "/stale.sock");
  {
    absl::StatusOr<std::unique_ptr<ControlServer>> first = ControlServer::Start("unix:" + stale);
    ASSERT_TRUE(first.ok()) << first.status();
    std::string kept = stale + ".kept";
    ASSERT_EQ(link(stale.c_str(), kept.c_str()), 0);
    (*first)->Shutdown();
    ASSERT_EQ(rename(kept.c_str(), stale.c_str()), 0);
  }
  absl::StatusOr<std::unique_ptr<ControlServer>> second = ControlServer::Start("unix:" + stale);
  EXPECT_TRUE(second.ok()) << second.status();
}

TEST(ControlAddressTest, TcpBeyondLoopbackIsRefusedWithoutTls) {
  absl::StatusOr<std::unique_ptr<ControlServer>> open = ControlServer::Start("0.0.0.0:0");
  ASSERT_EQ(open.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(open.status().message(), "--control-cert")) << open.status();
  EXPECT_EQ(ControlServer::Start("[::]:0").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ControlServer::Start("10.1.2.3:0").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ControlServer::Start("no-port").status().code(), absl::StatusCode::kInvalidArgument);
  DaemonOptions half;
  half.control_cert = "x.pem";
  EXPECT_EQ(ControlServer::Start("127.0.0.1:0", half).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(*IsLoopbackTcp("127.0.0.1:1"));
  EXPECT_TRUE(*IsLoopbackTcp("[::1]:1"));
  EXPECT_TRUE(*IsLoopbackTcp("localhost:1"));
  EXPECT_FALSE(*IsLoopbackTcp("192.168.0.1:1"));
}

TEST(ControlAddressTest, LoopbackTcpServesCallsThatCarryTheToken) {
  DaemonOptions o;
  o.control_token_file = absl::StrCat(TmpDir(), "/tcp-", getpid(), ".token");
  absl::StatusOr<std::unique_ptr<ControlServer>> s = ControlServer::Start("127.0.0.1:0", o);
  ASSERT_TRUE(s.ok()) << s.status();
  ClientOptions c;
  c.address = (*s)->address();
  c.timeout = absl::Seconds(5);
  absl::Status without = CallMethod(c, "GetCiphers", "{}", [](const std::string&) {});
  EXPECT_EQ(without.code(), absl::StatusCode::kUnauthenticated) << without;
  EXPECT_TRUE(absl::StrContains(without.message(), "[ERR_TLS_CONTROL_TOKEN]")) << without;
  c.token_file = o.control_token_file;
  std::vector<std::string> lines;
  absl::Status called = CallMethod(c, "GetCiphers", "{}", [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(called.ok()) << called;
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(absl::StrContains(lines[0], "\"tls_aes_128_gcm_sha256\"")) << lines[0];
}

TEST(ControlTlsTest, RefusesAClientWithoutACertificate) {
  DaemonOptions o;
  o.control_cert = WriteTmp("ctl-cert.pem", Chain("server-rsa"));
  o.control_key = WriteTmp("ctl-key.pem", Key("server-rsa"));
  o.control_ca = WriteTmp("ctl-ca.pem", Cert("ca1"));
  // With TLS and client certificates, even a non-loopback address is allowed.
  absl::StatusOr<std::unique_ptr<ControlServer>> s = ControlServer::Start("0.0.0.0:0", o);
  ASSERT_TRUE(s.ok()) << s.status();
  std::string port = (*s)->address().substr((*s)->address().rfind(':') + 1);
  ClientOptions c;
  c.address = absl::StrCat("127.0.0.1:", port);
  c.ca_file = o.control_ca;
  c.server_name = "localhost";
  c.timeout = absl::Seconds(5);
  auto ignore = [](const std::string&) {};
  absl::Status without = CallMethod(c, "GetCiphers", "{}", ignore);
  EXPECT_EQ(without.code(), absl::StatusCode::kUnavailable) << without;

  c.cert_file = WriteTmp("ctl-client.pem", Chain("client"));
  c.key_file = WriteTmp("ctl-client-key.pem", Key("client"));
  absl::Status with = CallMethod(c, "GetCiphers", "{}", ignore);
  EXPECT_TRUE(with.ok()) << with;

  // Plaintext to a TLS control port gets nowhere.
  ClientOptions plain;
  plain.address = c.address;
  plain.timeout = absl::Seconds(5);
  EXPECT_EQ(CallMethod(plain, "GetCiphers", "{}", ignore).code(), absl::StatusCode::kUnavailable);
}

// --------------------------------------------------------- the call client

TEST_F(ControlTest, CallListsMethodsFromReflectionAndSpeaksJson) {
  ASSERT_NO_FATAL_FAILURE(Start());
  absl::StatusOr<std::vector<std::string>> methods = ListMethods(client_);
  ASSERT_TRUE(methods.ok()) << methods.status();
  std::string all = absl::StrJoin(*methods, "\n");
  EXPECT_TRUE(absl::StrContains(all, "tlsengine.control.v1.TlsControl.Read(ReadRequest) returns (stream ReadChunk)"))
      << all;
  EXPECT_TRUE(absl::StrContains(all, "tlsengine.control.v1.TlsControl.CreateContext(CreateContextRequest)")) << all;
  // gRPC's built-in health service is named, but has no protobuf file to
  // describe its methods (the health test above calls it).
  EXPECT_TRUE(absl::StrContains(all, "grpc.health.v1.Health")) << all;
  EXPECT_TRUE(absl::StrContains(all, "grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo")) << all;

  std::string cert = WriteTmp("call-cert.pem", Chain("server-rsa"));
  std::string key = WriteTmp("call-key.pem", Key("server-rsa"));
  std::vector<std::string> out;
  absl::Status s = CallMethod(client_, "CreateContext",
                              absl::StrCat(R"({"certFile":[")", cert, R"("],"keyFile":[")", key, R"("]})"),
                              [&](const std::string& l) { out.push_back(l); });
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(absl::StrContains(out[0], R"("contextId":"ctx1")")) << out[0];
  EXPECT_TRUE(absl::StrContains(out[0], Fingerprint("server-rsa"))) << out[0];

  // Errors keep their gRPC code and name the field.
  s = CallMethod(client_, "CreateContext", R"({"certFile":["/nonexistent.pem"]})", [](const std::string&) {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "certFile[0]")) << s;
  s = CallMethod(client_, "NoSuchMethod", "{}", [](const std::string&) {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = CallMethod(client_, "GetCiphers", R"({"bogus":1})", [](const std::string&) {});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
}

// ------------------------------------------------- contexts and certificates

TEST_F(ControlTest, CreateContextAndListCertificatesWithDaysUntilExpiry) {
  ASSERT_NO_FATAL_FAILURE(Start());
  absl::StatusOr<CertificateInfo> leaf = CertificateInfo::FromPem(Cert("server-rsa"));
  ASSERT_TRUE(leaf.ok());
  {
    std::lock_guard<std::mutex> l(clock_.mu);
    clock_.now = absl::FromUnixSeconds(leaf->valid_to_unix) - absl::Hours(24 * 10 + 12);
  }
  v1::CreateContextRequest req;
  req.add_cert_file(WriteTmp("list-cert.pem", Chain("server-rsa")));
  req.add_key_file(WriteTmp("list-key.pem", Key("server-rsa")));
  req.add_cert(Chain("server-ecdsa"));
  req.add_key(Key("server-ecdsa"));
  v1::CreateContextResponse made;
  grpc::Status s = Do(&v1::TlsControl::Stub::CreateContext, req, &made);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(made.certificates_size(), 2);

  v1::ListenResponse l = Listen(made.context_id());
  v1::ListCertificatesRequest lreq;
  lreq.set_listener_id(l.listener_id());
  v1::ListCertificatesResponse list;
  s = Do(&v1::TlsControl::Stub::ListCertificates, lreq, &list);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(list.entries_size(), 1);
  ASSERT_EQ(list.entries(0).certificates_size(), 2);
  // Files come after inline values: the ECDSA leaf first, then the RSA one.
  const v1::CertificateSummary& rsa = list.entries(0).certificates(1);
  EXPECT_EQ(rsa.fingerprint256(), leaf->fingerprint256);
  EXPECT_EQ(rsa.serial_number(), leaf->serial_number);
  EXPECT_EQ(rsa.valid_to(), leaf->valid_to);
  EXPECT_EQ(rsa.subject(), leaf->subject.ToString());
  EXPECT_EQ(rsa.issuer(), leaf->issuer.ToString());
  EXPECT_EQ(rsa.days_until_expiration(), 10);
  EXPECT_FALSE(rsa.ocsp_stapled());
  bool has_ip = false;
  for (const std::string& san : rsa.subjectaltname()) has_ip = has_ip || san == "IP Address:127.0.0.1";
  EXPECT_TRUE(has_ip);

  // An OCSP response shows as stapled, with its next update.
  v1::SetOcspResponseRequest oreq;
  oreq.set_listener_id(l.listener_id());
  oreq.set_response(ReadTestFile("server-rsa-ocsp.der"));
  v1::ChangeResponse change;
  s = Do(&v1::TlsControl::Stub::SetOcspResponse, oreq, &change);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(change.change(), "setOcspResponse");
  s = Do(&v1::TlsControl::Stub::ListCertificates, lreq, &list);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(list.entries(0).certificates(0).ocsp_stapled());

  // A malformed response is refused and the stapled one stays.
  oreq.set_response("not DER");
  s = Do(&v1::TlsControl::Stub::SetOcspResponse, oreq, &change);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "response")) << s.error_message();
  s = Do(&v1::TlsControl::Stub::ListCertificates, lreq, &list);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(list.entries(0).certificates(0).ocsp_stapled());
}

// ------------------------------------------------------------ every error

TEST_F(ControlTest, MalformedRequestsGetTheirCodesAndDisturbNothing) {
  DaemonOptions o;
  o.controller.limits.max_contexts = 3;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  std::string server_ctx = ServerContext("server-rsa");
  std::string client_ctx = ClientContext();
  v1::ListenResponse l = Listen(server_ctx);
  v1::ConnectResponse c = Connect(l.address().port(), client_ctx);
  ASSERT_EQ(Echo(c.connection_id(), "before"), "before");

  auto expect = [](const grpc::Status& s, grpc::StatusCode code, const std::string& needle) {
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), needle)) << s.error_message() << " lacks " << needle;
  };
  v1::CreateContextResponse made;
  v1::CreateContextRequest bad_pem;
  bad_pem.add_cert("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
  bad_pem.add_key(Key("server-rsa"));
  expect(Do(&v1::TlsControl::Stub::CreateContext, bad_pem, &made), grpc::StatusCode::INVALID_ARGUMENT, "cert");
  v1::CreateContextRequest bad_keys;
  bad_keys.set_ticket_keys(std::string(47, 'k'));
  expect(Do(&v1::TlsControl::Stub::CreateContext, bad_keys, &made), grpc::StatusCode::INVALID_ARGUMENT, "ticketKeys");
  v1::CreateContextRequest bad_version;
  bad_version.set_min_version("SSLv2");
  expect(Do(&v1::TlsControl::Stub::CreateContext, bad_version, &made), grpc::StatusCode::INVALID_ARGUMENT,
         "ERR_TLS_INVALID_PROTOCOL_VERSION");
  v1::CreateContextRequest missing_file;
  missing_file.add_key_file("/nonexistent/key.pem");
  expect(Do(&v1::TlsControl::Stub::CreateContext, missing_file, &made), grpc::StatusCode::INVALID_ARGUMENT,
         "keyFile[0]");

  v1::ListenResponse lr;
  v1::ListenRequest no_ctx;
  expect(Do(&v1::TlsControl::Stub::Listen, no_ctx, &lr), grpc::StatusCode::INVALID_ARGUMENT, "contextId");
  v1::ListenRequest unknown_ctx;
  unknown_ctx.set_context_id("ctx999");
  expect(Do(&v1::TlsControl::Stub::Listen, unknown_ctx, &lr), grpc::StatusCode::NOT_FOUND, "ctx999");
  v1::ListenRequest bad_mode;
  bad_mode.set_context_id(server_ctx);
  bad_mode.set_mode("mirror");
  expect(Do(&v1::TlsControl::Stub::Listen, bad_mode, &lr), grpc::StatusCode::INVALID_ARGUMENT, "mode");
  v1::ListenRequest client_only;
  client_only.set_context_id(client_ctx);
  expect(Do(&v1::TlsControl::Stub::Listen, client_only, &lr), grpc::StatusCode::INVALID_ARGUMENT, "no certificate");
  v1::ListenRequest in_use;
  in_use.set_context_id(server_ctx);
  in_use.set_host("127.0.0.1");
  in_use.set_port(l.address().port());
  expect(Do(&v1::TlsControl::Stub::Listen, in_use, &lr), grpc::StatusCode::ALREADY_EXISTS, "EADDRINUSE");

  v1::DeleteContextRequest del;
  del.set_context_id(server_ctx);
  v1::DeleteContextResponse deleted;
  expect(Do(&v1::TlsControl::Stub::DeleteContext, del, &deleted), grpc::StatusCode::FAILED_PRECONDITION, l.listener_id());
  del.set_context_id("nope");
  expect(Do(&v1::TlsControl::Stub::DeleteContext, del, &deleted), grpc::StatusCode::NOT_FOUND, "contextId");

  v1::ConnectionInfo info;
  v1::SetMaxSendFragmentRequest frag;
  frag.set_connection_id(c.connection_id());
  frag.set_size(100);
  expect(Do(&v1::TlsControl::Stub::SetMaxSendFragment, frag, &info), grpc::StatusCode::INVALID_ARGUMENT, "size");
  v1::ConnectionRequest none;
  none.set_connection_id("c999");
  expect(Do(&v1::TlsControl::Stub::GetConnection, none, &info), grpc::StatusCode::NOT_FOUND, "connectionId");
  v1::AddContextRequest bad_sni;
  bad_sni.set_listener_id(l.listener_id());
  bad_sni.set_servername("a.*.example.com");
  bad_sni.set_context_id(server_ctx);
  v1::ChangeResponse change;
  expect(Do(&v1::TlsControl::Stub::AddContext, bad_sni, &change), grpc::StatusCode::INVALID_ARGUMENT, "servername");
  v1::RotateTicketKeysRequest bad_key;
  bad_key.set_listener_id(l.listener_id());
  bad_key.set_key("short");
  expect(Do(&v1::TlsControl::Stub::RotateTicketKeys, bad_key, &change), grpc::StatusCode::INVALID_ARGUMENT, "key");
  v1::ListConnectionsRequest bad_page;
  bad_page.set_page_token("x");
  v1::ListConnectionsResponse page;
  expect(Do(&v1::TlsControl::Stub::ListConnections, bad_page, &page), grpc::StatusCode::INVALID_ARGUMENT, "pageToken");
  v1::WriteRequest too_big;
  too_big.set_connection_id(c.connection_id());
  too_big.set_data(std::string((1 << 20) + 1, 'x'));
  v1::WriteResponse wrote;
  expect(Do(&v1::TlsControl::Stub::Write, too_big, &wrote), grpc::StatusCode::RESOURCE_EXHAUSTED,
         "ERR_TLS_CONTROL_LIMIT");
  // Reading from an echo-mode server connection: nothing is held.
  v1::ListConnectionsRequest by_listener;
  by_listener.set_listener_id(l.listener_id());
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::ListConnections, by_listener, &page).ok());
  ASSERT_EQ(page.connections_size(), 1);
  {
    v1::ReadRequest r;
    r.set_connection_id(page.connections(0).connection_id());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto reader = stub_->Read(&ctx, r);
    v1::ReadChunk chunk;
    EXPECT_FALSE(reader->Read(&chunk));
    expect(reader->Finish(), grpc::StatusCode::FAILED_PRECONDITION, "echo");
  }
  // The context limit (3): two made above, one more fits, the next does not.
  ClientContext();
  v1::CreateContextRequest fine;
  expect(Do(&v1::TlsControl::Stub::CreateContext, fine, &made), grpc::StatusCode::RESOURCE_EXHAUSTED, "limit 3");
  // Connecting to a closed port: the transport's code.
  v1::ConnectRequest refused;
  refused.set_port(1);
  refused.set_context_id(client_ctx);
  v1::ConnectResponse cr;
  expect(Do(&v1::TlsControl::Stub::Connect, refused, &cr), grpc::StatusCode::UNAVAILABLE, "ECONNREFUSED");

  // None of this disturbed the open connection.
  EXPECT_EQ(Echo(c.connection_id(), "after"), "after");
}

// ---------------------------------------------- listeners and connections

TEST_F(ControlTest, ListenConnectEchoPagesAndStats) {
  ASSERT_NO_FATAL_FAILURE(Start());
  std::string server_ctx = ServerContext("server-rsa");
  std::string client_ctx = ClientContext();
  v1::ListenResponse l = Listen(server_ctx);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    v1::ConnectResponse c = Connect(l.address().port(), client_ctx);
    EXPECT_TRUE(c.connection().authorized());
    EXPECT_EQ(c.connection().protocol(), "TLSv1.3");
    EXPECT_EQ(c.connection().peer_certificate().fingerprint256(), Fingerprint("server-rsa"));
    EXPECT_EQ(Echo(c.connection_id(), absl::StrCat("hello ", i)), absl::StrCat("hello ", i));
    ids.push_back(c.connection_id());
  }
  v1::ConnectionInfo info = Get(ids[0]);
  EXPECT_EQ(info.role(), "client");
  EXPECT_EQ(info.state(), "open");
  EXPECT_EQ(info.bytes_written(), 7u);
  EXPECT_EQ(info.bytes_read(), 7u);

  // The listener's side, two per page.
  v1::ListConnectionsRequest req;
  req.set_listener_id(l.listener_id());
  req.set_page_size(2);
  v1::ListConnectionsResponse page;
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::ListConnections, req, &page).ok());
  ASSERT_EQ(page.connections_size(), 2);
  ASSERT_FALSE(page.next_page_token().empty());
  EXPECT_EQ(page.connections(0).role(), "server");
  EXPECT_EQ(page.connections(0).listener_id(), l.listener_id());
  req.set_page_token(page.next_page_token());
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::ListConnections, req, &page).ok());
  EXPECT_EQ(page.connections_size(), 1);
  EXPECT_TRUE(page.next_page_token().empty());

  v1::GetStatsRequest sreq;
  sreq.set_listener_id(l.listener_id());
  v1::GetStatsResponse stats;
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::GetStats, sreq, &stats).ok());
  ASSERT_EQ(stats.listeners_size(), 1);
  const v1::ListenerStats& ls = stats.listeners(0);
  EXPECT_EQ(ls.active(), 3);
  EXPECT_EQ(ls.total(), 3u);
  EXPECT_EQ(ls.handshakes().at("ok"), 3u);
  EXPECT_EQ(ls.protocols().at("TLSv1.3"), 3u);
  EXPECT_EQ(ls.bytes_in(), 21u);
  EXPECT_EQ(ls.bytes_out(), 21u);

  // A failed handshake counts by its code: a client that trusts nothing.
  v1::CreateContextRequest nothing;
  nothing.set_ca_empty(true);
  v1::CreateContextResponse untrusting;
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::CreateContext, nothing, &untrusting).ok());
  v1::ConnectRequest creq;
  creq.set_port(l.address().port());
  creq.set_servername("localhost");
  creq.set_context_id(untrusting.context_id());
  v1::ConnectResponse failed;
  grpc::Status s = Do(&v1::TlsControl::Stub::Connect, creq, &failed);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY")) << s.error_message();

  // Closing ends the open connections; the clients see the end.
  v1::CloseListenerRequest close;
  close.set_listener_id(l.listener_id());
  close.set_deadline(300);  // the clients never end: destroyed at the deadline
  v1::CloseListenerResponse closed;
  s = Do(&v1::TlsControl::Stub::CloseListener, close, &closed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(closed.ended() + closed.destroyed(), 3);
  v1::ReadRequest rreq;
  rreq.set_connection_id(ids[0]);
  rreq.set_timeout(5000);
  EXPECT_TRUE(ReadsToEnd(rreq));
  // The listener is gone; its context can now be deleted.
  v1::GetStatsResponse after;
  EXPECT_EQ(Do(&v1::TlsControl::Stub::GetStats, sreq, &after).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::DeleteContextRequest del;
  del.set_context_id(server_ctx);
  v1::DeleteContextResponse deleted;
  EXPECT_TRUE(Do(&v1::TlsControl::Stub::DeleteContext, del, &deleted).ok());
}

TEST_F(ControlTest, ConnectsThroughTheServiceToAnOpensslSServer) {
  ASSERT_NO_FATAL_FAILURE(Start());
  tlsengine::testing::Subprocess peer;
  using tlsengine::testing::TestFilePath;
  ASSERT_TRUE(peer.Start({"openssl", "s_server", "-accept", "0", "-naccept", "1", "-rev", "-cert",
                          TestFilePath("server-rsa.pem"), "-cert_chain", TestFilePath("int1.pem"), "-key",
                          TestFilePath("server-rsa-key.pem")})
                  .ok());
  absl::StatusOr<std::string> accept = peer.WaitForLine("ACCEPT", absl::Seconds(10));
  ASSERT_TRUE(accept.ok()) << accept.status();
  int port = std::stoi(accept->substr(accept->rfind(':') + 1));
  // The client context from a file the daemon reads.
  v1::CreateContextRequest req;
  req.add_ca_file(TestFilePath("ca1.pem"));
  v1::CreateContextResponse ctx;
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::CreateContext, req, &ctx).ok());
  v1::ConnectResponse c = Connect(port, ctx.context_id());
  EXPECT_TRUE(c.connection().authorized());
  EXPECT_EQ(c.connection().peer_certificate().fingerprint256(), Fingerprint("server-rsa"));
  ASSERT_TRUE(Write(c.connection_id(), "hello\n").ok());
  EXPECT_EQ(Read(c.connection_id(), 6), "olleh\n");
  v1::ConnectionRequest end;
  end.set_connection_id(c.connection_id());
  v1::ConnectionInfo info;
  EXPECT_TRUE(Do(&v1::TlsControl::Stub::End, end, &info).ok());
  peer.Kill();
}

TEST_F(ControlTest, HoldModeHandsThePlaintextToTheController) {
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::ListenResponse l = Listen(ServerContext("server-rsa"), "hold");
  v1::ConnectResponse c = Connect(l.address().port(), ClientContext());
  v1::ListConnectionsRequest req;
  req.set_listener_id(l.listener_id());
  v1::ListConnectionsResponse page;
  // The client is secure first (TLS 1.3); the server side follows shortly.
  for (int i = 0; i < 200 && page.connections_size() == 0; ++i) {
    ASSERT_TRUE(Do(&v1::TlsControl::Stub::ListConnections, req, &page).ok());
    if (page.connections_size() == 0) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(page.connections_size(), 1);
  std::string server_side = page.connections(0).connection_id();
  EXPECT_EQ(page.connections(0).mode(), "hold");

  ASSERT_TRUE(Write(c.connection_id(), "ping").ok());
  EXPECT_EQ(Read(server_side, 4), "ping");
  ASSERT_TRUE(Write(server_side, "pong").ok());
  EXPECT_EQ(Read(c.connection_id(), 4), "pong");

  // KeyUpdate and a smaller fragment size on a live connection.
  v1::KeyUpdateRequest ku;
  ku.set_connection_id(server_side);
  ku.set_request_peer(true);
  v1::ConnectionInfo info;
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::KeyUpdate, ku, &info).ok());
  v1::SetMaxSendFragmentRequest frag;
  frag.set_connection_id(server_side);
  frag.set_size(512);
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::SetMaxSendFragment, frag, &info).ok());
  std::string big(2000, 'z');
  ASSERT_TRUE(Write(server_side, big).ok());
  EXPECT_EQ(Read(c.connection_id(), big.size()), big);

  // End from the client: the server side's Read reports the end.
  v1::ConnectionRequest end;
  end.set_connection_id(c.connection_id());
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::End, end, &info).ok());
  v1::ReadRequest rreq;
  rreq.set_connection_id(server_side);
  rreq.set_timeout(5000);
  EXPECT_TRUE(ReadsToEnd(rreq));
  // Destroy on the server side; writing afterwards is refused.
  v1::ConnectionRequest destroy;
  destroy.set_connection_id(server_side);
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::Destroy, destroy, &info).ok());
  for (int i = 0; i < 100 && Get(server_side).state() != "closed"; ++i) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(Get(server_side).state(), "closed");
  EXPECT_EQ(Write(server_side, "late").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

// Waits until the client connection has a session to resume.
std::string SessionOf(const std::function<v1::ConnectionInfo()>& get) {
  for (int i = 0; i < 100; ++i) {
    v1::ConnectionInfo info = get();
    if (!info.session().empty()) return info.session();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return "";
}

class TicketRotationTest : public ControlTest {
 protected:
  // A ticket from a new connection to `servername`, after one echo.
  std::string FreshTicket(const std::string& servername) {
    v1::ConnectResponse c = Connect(port_, client_ctx_, "", servername);
    EXPECT_EQ(Echo(c.connection_id(), "ticket"), "ticket");
    return SessionOf([&] { return Get(c.connection_id()); });
  }
  v1::ConnectionInfo Resume(const std::string& ticket, const std::string& servername) {
    return Connect(port_, client_ctx_, ticket, servername).connection();
  }
  v1::ChangeResponse Rotate(int64_t keep_previous_ms) {
    v1::RotateTicketKeysRequest rot;
    rot.set_listener_id(listener_id_);
    rot.set_keep_previous(keep_previous_ms);
    return Ok(&v1::TlsControl::Stub::RotateTicketKeys, rot);
  }
  // An old ticket resumes while keepPrevious lasts, a ticket issued after
  // the rotation resumes, and once the previous keys retire the old ticket
  // gets a full handshake, always from the context serving `identity`.
  void RotateAndResume(const std::string& servername, const std::string& identity) {
    std::string old_ticket = FreshTicket(servername);
    ASSERT_FALSE(old_ticket.empty());
    EXPECT_EQ(Rotate(60000).ticket_keys(), 2);
    v1::ConnectionInfo old_resumed = Resume(old_ticket, servername);
    EXPECT_TRUE(old_resumed.session_reused());
    EXPECT_EQ(old_resumed.peer_certificate().fingerprint256(), Fingerprint(identity));
    std::string new_ticket = FreshTicket(servername);
    ASSERT_FALSE(new_ticket.empty());
    EXPECT_TRUE(Resume(new_ticket, servername).session_reused());

    // Rotating again with no time for the previous keys: the old ticket no
    // longer decrypts.
    Rotate(1);
    absl::SleepFor(absl::Milliseconds(50));
    v1::ConnectionInfo full = Resume(old_ticket, servername);
    EXPECT_FALSE(full.session_reused()) << servername << " still decrypts with a retired key";
    EXPECT_EQ(full.peer_certificate().fingerprint256(), Fingerprint(identity));
    v1::GetStatsRequest sreq;
    v1::GetStatsResponse stats;
    ASSERT_TRUE(Do(&v1::TlsControl::Stub::GetStats, sreq, &stats).ok());
    ASSERT_EQ(stats.listeners_size(), 1);
    EXPECT_EQ(stats.listeners(0).resumed(), 2u);
  }
  void SetUpListener() {
    ASSERT_NO_FATAL_FAILURE(Start());
    v1::ListenResponse l = Listen(ServerContext("server-rsa"));
    listener_id_ = l.listener_id();
    port_ = l.address().port();
    client_ctx_ = ClientContext();
  }
  std::string listener_id_;
  int port_ = 0;
  std::string client_ctx_;
};

TEST_F(TicketRotationTest, ResumesAnOldTicketAfterRotatingTicketKeys) {
  ASSERT_NO_FATAL_FAILURE(SetUpListener());
  RotateAndResume("localhost", "server-rsa");
}

// A ticket is issued and accepted by the context that serves the
// handshake, so the rotation must reach the listener's SNI contexts too.
TEST_F(TicketRotationTest, RotateTicketKeysReachesSniNames) {
  ASSERT_NO_FATAL_FAILURE(SetUpListener());
  v1::AddContextRequest add;
  add.set_listener_id(listener_id_);
  add.set_servername("other.example.com");
  add.set_context_id(ServerContext("other-name"));
  v1::ChangeResponse change;
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::AddContext, add, &change).ok());
  RotateAndResume("other.example.com", "other-name");
}

TEST_F(ControlTest, ReplaceContextServesNewConnectionsWhileAnOpenOneKeepsEchoing) {
  ASSERT_NO_FATAL_FAILURE(Start());
  std::string rsa = ServerContext("server-rsa");
  std::string ecdsa = ServerContext("server-ecdsa");
  std::string client_ctx = ClientContext();
  v1::ListenResponse l = Listen(rsa);
  v1::ConnectResponse open = Connect(l.address().port(), client_ctx);
  ASSERT_EQ(open.connection().peer_certificate().fingerprint256(), Fingerprint("server-rsa"));

  // A failed replacement changes nothing and names the field.
  v1::ReplaceContextRequest bad;
  bad.set_listener_id(l.listener_id());
  bad.set_context_id(client_ctx);  // no certificate
  v1::ChangeResponse change;
  grpc::Status s = Do(&v1::TlsControl::Stub::ReplaceContext, bad, &change);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "contextId")) << s.error_message();
  v1::ConnectResponse still = Connect(l.address().port(), client_ctx);
  EXPECT_EQ(still.connection().peer_certificate().fingerprint256(), Fingerprint("server-rsa"));

  v1::ReplaceContextRequest good;
  good.set_listener_id(l.listener_id());
  good.set_context_id(ecdsa);
  s = Do(&v1::TlsControl::Stub::ReplaceContext, good, &change);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(change.previous_context_id(), rsa);
  ASSERT_EQ(change.fingerprint256_size(), 1);
  EXPECT_EQ(change.fingerprint256(0), Fingerprint("server-ecdsa"));

  v1::ConnectResponse fresh = Connect(l.address().port(), client_ctx);
  EXPECT_EQ(fresh.connection().peer_certificate().fingerprint256(), Fingerprint("server-ecdsa"));
  EXPECT_EQ(Echo(open.connection_id(), "still here"), "still here");
  EXPECT_EQ(Get(open.connection_id()).peer_certificate().fingerprint256(), Fingerprint("server-rsa"));

  v1::ListCertificatesRequest lreq;
  lreq.set_listener_id(l.listener_id());
  v1::ListCertificatesResponse list;
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::ListCertificates, lreq, &list).ok());
  ASSERT_EQ(list.entries_size(), 1);
  EXPECT_EQ(list.entries(0).context_id(), ecdsa);

  // SNI: a name gets its own context, and loses it again.
  v1::AddContextRequest add;
  add.set_listener_id(l.listener_id());
  add.set_servername("*.example.com");
  add.set_context_id(rsa);
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::AddContext, add, &change).ok());
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::ListCertificates, lreq, &list).ok());
  EXPECT_EQ(list.entries_size(), 2);
  v1::RemoveContextRequest rm;
  rm.set_listener_id(l.listener_id());
  rm.set_servername("*.example.com");
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::RemoveContext, rm, &change).ok());
  EXPECT_EQ(Do(&v1::TlsControl::Stub::RemoveContext, rm, &change).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ControlTest, WatchEventsSeesConnectionsAndChanges) {
  ASSERT_NO_FATAL_FAILURE(Start());
  std::string server_ctx = ServerContext("server-rsa");
  std::string client_ctx = ClientContext();
  grpc::ClientContext wctx;
  wctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::WatchEventsRequest wreq;
  auto watch = stub_->WatchEvents(&wctx, wreq);
  watch->WaitForInitialMetadata();  // registered: nothing after this is missed

  v1::ListenResponse l = Listen(server_ctx);
  v1::ConnectResponse c = Connect(l.address().port(), client_ctx);
  ASSERT_EQ(Echo(c.connection_id(), "x"), "x");
  v1::ConnectionRequest destroy;
  destroy.set_connection_id(c.connection_id());
  v1::ConnectionInfo info;
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::Destroy, destroy, &info).ok());

  std::vector<std::string> want = {"change", "secureConnection", "secureConnect", "close"};
  std::vector<std::string> seen;
  v1::ControlEvent ev;
  while (!want.empty() && watch->Read(&ev)) {
    seen.push_back(ev.type());
    auto it = std::find(want.begin(), want.end(), ev.type());
    if (it != want.end()) want.erase(it);
    if (ev.type() == "secureConnection") {
      EXPECT_EQ(ev.listener_id(), l.listener_id());
      EXPECT_EQ(ev.protocol(), "TLSv1.3");
    }
  }
  EXPECT_TRUE(want.empty()) << "missing " << absl::StrJoin(want, ",") << " after " << absl::StrJoin(seen, ",");
  wctx.TryCancel();
  grpc::Status s = watch->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED) << s.error_message();

  v1::WatchEventsRequest bad;
  bad.add_types("explosion");
  grpc::ClientContext bctx;
  auto b = stub_->WatchEvents(&bctx, bad);
  EXPECT_FALSE(b->Read(&ev));
  EXPECT_EQ(b->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// ------------------------------------------------------------ renegotiation

TEST_F(ControlTest, RenegotiatesATls12ConnectionToItsOwnListenerAndRefusesTls13) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string tls12 = Tls12ServerContext();
  ASSERT_FALSE(tls12.empty());
  std::string client_ctx = ClientContext();
  v1::ListenRequest lreq;
  lreq.set_context_id(tls12);
  lreq.set_host("127.0.0.1");
  lreq.set_allow_client_renegotiation(true);
  v1::ListenResponse l;
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::Listen, lreq, &l).ok());
  v1::ConnectResponse c = Connect(l.address().port(), client_ctx);
  ASSERT_EQ(c.connection().protocol(), "TLSv1.2");

  v1::RenegotiateRequest rreq;
  rreq.set_connection_id(c.connection_id());
  rreq.set_timeout(10000);
  v1::ConnectionInfo info;
  grpc::Status s = Do(&v1::TlsControl::Stub::Renegotiate, rreq, &info);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(info.state(), "open");
  EXPECT_TRUE(info.authorized());
  EXPECT_EQ(Echo(c.connection_id(), "after renegotiation"), "after renegotiation");

  // TLS 1.3 has no renegotiation: the engine's code, and the connection
  // carries on.
  v1::ListenResponse l13 = Listen(ServerContext("server-rsa"));
  v1::ConnectResponse c13 = Connect(l13.address().port(), client_ctx);
  ASSERT_EQ(c13.connection().protocol(), "TLSv1.3");
  rreq.set_connection_id(c13.connection_id());
  s = Do(&v1::TlsControl::Stub::Renegotiate, rreq, &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "ERR_TLS_RENEGOTIATE")) << s.error_message();
  EXPECT_EQ(Echo(c13.connection_id(), "still"), "still");
  // An unknown connection, and a bad timeout.
  rreq.set_connection_id("c999");
  EXPECT_EQ(Do(&v1::TlsControl::Stub::Renegotiate, rreq, &info).error_code(), grpc::StatusCode::NOT_FOUND);
  rreq.set_connection_id(c.connection_id());
  rreq.set_timeout(-1);
  s = Do(&v1::TlsControl::Stub::Renegotiate, rreq, &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "timeout")) << s.error_message();
}

TEST_F(ControlTest, RenegotiatesThroughTheServiceWithAnOpensslSServer) {
  ASSERT_NO_FATAL_FAILURE(Start());
  tlsengine::testing::Subprocess peer;
  using tlsengine::testing::TestFilePath;
  ASSERT_TRUE(peer.Start({"openssl", "s_server", "-accept", "0", "-naccept", "1", "-rev", "-tls1_2",
                          "-client_renegotiation", "-cert", TestFilePath("server-rsa.pem"), "-cert_chain",
                          TestFilePath("int1.pem"), "-key", TestFilePath("server-rsa-key.pem")})
                  .ok());
  absl::StatusOr<std::string> accept = peer.WaitForLine("ACCEPT", absl::Seconds(10));
  ASSERT_TRUE(accept.ok()) << accept.status();
  int port = std::stoi(accept->substr(accept->rfind(':') + 1));
  v1::ConnectResponse c = Connect(port, ClientContext());
  ASSERT_EQ(c.connection().protocol(), "TLSv1.2");
  v1::RenegotiateRequest rreq;
  rreq.set_connection_id(c.connection_id());
  v1::ConnectionInfo info;
  grpc::Status s = Do(&v1::TlsControl::Stub::Renegotiate, rreq, &info);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(info.authorized());
  ASSERT_TRUE(Write(c.connection_id(), "hello\n").ok());
  EXPECT_EQ(Read(c.connection_id(), 6), "olleh\n");
  peer.Kill();
}

// The listener's side of a connection asks for the renegotiation: a
// HelloRequest to openssl s_client, which answers with a new handshake.
TEST_F(ControlTest, RenegotiatesTheServerSideOfAListenersConnectionWithAnOpensslSClient) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string tls12 = Tls12ServerContext();
  ASSERT_FALSE(tls12.empty());
  v1::ListenResponse l = Listen(tls12);
  ASSERT_GT(l.address().port(), 0);

  tlsengine::testing::Subprocess peer;
  using tlsengine::testing::TestFilePath;
  // -msg shows every handshake message (on stdout, with the echoed data).
  ASSERT_TRUE(peer.Start({"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", l.address().port()),
                          "-tls1_2", "-servername", "localhost", "-CAfile", TestFilePath("ca1.pem"), "-msg"})
                  .ok());
  absl::StatusOr<std::string> line = peer.WaitForLine("Secure Renegotiation IS supported", absl::Seconds(10));
  ASSERT_TRUE(line.ok()) << line.status();
  std::string server_side = ServerSide(l.listener_id());
  ASSERT_FALSE(server_side.empty());
  v1::ConnectionInfo before = Get(server_side);
  EXPECT_EQ(before.role(), "server");
  EXPECT_EQ(before.listener_id(), l.listener_id());
  EXPECT_EQ(before.protocol(), "TLSv1.2");
  EXPECT_EQ(before.state(), "open");

  v1::RenegotiateRequest rreq;
  rreq.set_connection_id(server_side);
  rreq.set_timeout(10000);
  v1::ConnectionInfo info;
  grpc::Status s = Do(&v1::TlsControl::Stub::Renegotiate, rreq, &info);
  ASSERT_TRUE(s.ok()) << s.error_message() << "\n" << peer.out() << peer.err();
  EXPECT_EQ(info.connection_id(), server_side);
  EXPECT_EQ(info.state(), "open");
  EXPECT_EQ(info.protocol(), "TLSv1.2");
  // The client saw the server's HelloRequest and sent a second ClientHello
  // (the first was read above, before the session summary).
  line = peer.WaitForLine("HelloRequest", absl::Seconds(10));
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_TRUE(absl::StrContains(*line, "<<< TLS 1.2")) << *line;
  line = peer.WaitForLine("ClientHello", absl::Seconds(10));
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_TRUE(absl::StrContains(*line, ">>> TLS 1.2")) << *line;

  // The echo carries on over the renegotiated connection.
  ASSERT_TRUE(peer.WriteStdin("ping after renegotiation\n").ok());
  line = peer.WaitForLine("ping after renegotiation", absl::Seconds(10));
  ASSERT_TRUE(line.ok()) << line.status();
  v1::ConnectionInfo after = Get(server_side);
  EXPECT_EQ(after.state(), "open");
  EXPECT_GE(after.bytes_read(), 25u);
  peer.Kill();
}

// ------------------------------------------------------------- more events

TEST_F(ControlTest, WatchEventsSeesNewSessionAndTheStapledOcspResponse) {
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::ListenResponse l = Listen(ServerContext("server-rsa"));
  v1::SetOcspResponseRequest oreq;
  oreq.set_listener_id(l.listener_id());
  oreq.set_response(ReadTestFile("server-rsa-ocsp.der"));
  v1::ChangeResponse change;
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::SetOcspResponse, oreq, &change).ok());

  grpc::ClientContext wctx;
  wctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::WatchEventsRequest wreq;
  for (const char* t : {"newSession", "OCSPRequest", "OCSPResponse", "session"}) wreq.add_types(t);
  auto watch = stub_->WatchEvents(&wctx, wreq);
  watch->WaitForInitialMetadata();

  v1::ConnectRequest creq;
  creq.set_port(l.address().port());
  creq.set_servername("localhost");
  creq.set_context_id(ClientContext());
  creq.set_request_ocsp(true);
  v1::ConnectResponse c;
  grpc::Status s = Do(&v1::TlsControl::Stub::Connect, creq, &c);
  ASSERT_TRUE(s.ok()) << s.error_message();

  std::map<std::string, v1::ControlEvent> got;
  v1::ControlEvent ev;
  while (got.size() < 4 && watch->Read(&ev)) {
    EXPECT_NE(ev.type(), "change");  // filtered out by types
    got.emplace(ev.type(), ev);
  }
  ASSERT_EQ(got.count("newSession"), 1u);
  EXPECT_EQ(got["newSession"].listener_id(), l.listener_id());
  EXPECT_FALSE(got["newSession"].session_id().empty());
  ASSERT_EQ(got.count("OCSPRequest"), 1u);
  EXPECT_EQ(got["OCSPRequest"].message(), "stapled");
  ASSERT_EQ(got.count("OCSPResponse"), 1u);
  EXPECT_EQ(got["OCSPResponse"].connection_id(), c.connection_id());
  EXPECT_EQ(got["OCSPResponse"].message(), absl::StrCat(ReadTestFile("server-rsa-ocsp.der").size(), " bytes"));
  ASSERT_EQ(got.count("session"), 1u);
  EXPECT_EQ(got["session"].connection_id(), c.connection_id());
  wctx.TryCancel();
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

// ------------------------------------------------------------------ limits

TEST_F(ControlTest, HoldModeBoundsWhatAPeerThatIsNotReadCanBuffer) {
  DaemonOptions o;
  o.controller.limits.max_connection_buffer = 64 << 10;
  o.controller.limits.max_buffered_bytes = 256 << 10;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  v1::ListenResponse l = Listen(ServerContext("server-rsa"), "hold");
  std::string client_ctx = ClientContext();
  v1::ConnectResponse a = Connect(l.address().port(), client_ctx);
  std::string a_server = ServerSide(l.listener_id());
  ASSERT_FALSE(a_server.empty());

  // The client writes and the listener's side is never read: once the
  // held bytes reach the limit the server side stops reading, the kernel's
  // buffers fill, and the client's queue passes its own bound: Write is
  // refused with RESOURCE_EXHAUSTED instead of growing without end.
  std::string sent;
  grpc::Status refused;
  for (int i = 0; i < 200 && refused.ok(); ++i) {
    std::string chunk(256 << 10, static_cast<char>('a' + i % 26));
    refused = Write(a.connection_id(), chunk);
    if (refused.ok()) sent += chunk;
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_TRUE(absl::StrContains(refused.error_message(), "ERR_TLS_CONTROL_LIMIT")) << refused.error_message();
  EXPECT_TRUE(absl::StrContains(refused.error_message(), "limit 65536")) << refused.error_message();

  v1::ConnectionInfo held = Get(a_server);
  EXPECT_TRUE(held.paused());
  EXPECT_GE(held.buffered(), 64u << 10);
  EXPECT_LE(held.buffered(), 128u << 10);  // the limit plus what one read decrypted
  v1::GetStatsRequest sreq;
  v1::GetStatsResponse stats;
  ASSERT_TRUE(Do(&v1::TlsControl::Stub::GetStats, sreq, &stats).ok());
  EXPECT_EQ(stats.buffered(), held.buffered());

  // Another connection on the same listener is not disturbed.
  v1::ConnectResponse b = Connect(l.address().port(), client_ctx);
  std::string b_server = ServerSide(l.listener_id(), 1);
  ASSERT_FALSE(b_server.empty());
  ASSERT_TRUE(Write(b.connection_id(), "ping").ok());
  EXPECT_EQ(Read(b_server, 4), "ping");
  ASSERT_TRUE(Write(b_server, "pong").ok());
  EXPECT_EQ(Read(b.connection_id(), 4), "pong");

  // Reading drains it: every byte accepted arrives, in order (backpressure,
  // not loss), and the client may write again.
  EXPECT_EQ(Read(a_server, sent.size()), sent);
  EXPECT_FALSE(Get(a_server).paused());
  EXPECT_TRUE(Write(a.connection_id(), "more").ok());
  EXPECT_EQ(Read(a_server, 4), "more");
}

// Issue 17: 16 peers that nobody Reads fill the service's budget; a 17th
// still gets every byte it sends through Read (it holds less than its fair
// share), and the total held stays bounded. Scaled down: 64 KiB per
// connection, 1 MiB for the service (the defaults' ratio, 1 MiB / 16 MiB).
TEST_F(ControlTest, HoldModePeersNobodyReadsDoNotStarveAnotherConnection) {
  DaemonOptions o;
  constexpr size_t kPerConnection = 64 << 10, kBudget = 16 * kPerConnection;
  o.controller.limits.max_connection_buffer = kPerConnection;
  o.controller.limits.max_buffered_bytes = kBudget;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  v1::ListenResponse l = Listen(ServerContext("server-rsa"), "hold");
  std::string client_ctx = ClientContext();
  auto stats = [&] {
    v1::GetStatsResponse out;
    grpc::Status s = Do(&v1::TlsControl::Stub::GetStats, v1::GetStatsRequest(), &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  };
  std::vector<std::string> idle_servers;
  for (int i = 0; i < 16; ++i) {
    v1::ConnectResponse c = Connect(l.address().port(), client_ctx);
    idle_servers.push_back(ServerSide(l.listener_id(), i));
    ASSERT_TRUE(Write(c.connection_id(), std::string(kPerConnection + (16 << 10), 'i')).ok());
  }
  // Wait (bounded) until all 16 hold their share and stopped reading.
  bool all_paused = false;
  for (int i = 0; i < 500 && !all_paused; ++i) {
    all_paused = stats().buffered() >= kBudget;
    for (const std::string& id : idle_servers) all_paused = all_paused && Get(id).paused();
    if (!all_paused) absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(all_paused) << "buffered " << stats().buffered();

  // A 17th connection: all that it sends arrives through Read, chunk after
  // chunk, although the service's budget is spent.
  v1::ConnectResponse late = Connect(l.address().port(), client_ctx);
  std::string late_server = ServerSide(l.listener_id(), 16);
  ASSERT_FALSE(late_server.empty());
  std::string sent;
  for (int i = 0; i < 4; ++i) sent += std::string(kPerConnection, static_cast<char>('a' + i));
  ASSERT_TRUE(Write(late.connection_id(), sent).ok());
  std::string got = Read(late_server, sent.size());
  EXPECT_EQ(got.size(), sent.size()) << "the 17th stalls after its first chunks";
  EXPECT_TRUE(got == sent) << "every byte, in order";
  ASSERT_TRUE(Write(late.connection_id(), "more").ok());
  EXPECT_EQ(Read(late_server, 4), "more");

  // The 16 still hold theirs, each within its bound plus one read, and
  // still do not read.
  v1::GetStatsResponse after = stats();
  EXPECT_GE(after.buffered(), kBudget);
  EXPECT_LE(after.buffered(), 2 * kBudget);
  for (const std::string& id : idle_servers) {
    v1::ConnectionInfo held = Get(id);
    EXPECT_TRUE(held.paused()) << id;
    EXPECT_LE(held.buffered(), 2 * kPerConnection) << id;
  }
}

// An echo listener stops reading from a peer that does not read its echo
// (backpressure) instead of queueing the echo until the connection is
// destroyed; other connections carry on.
TEST_F(ControlTest, EchoStopsReadingFromAPeerThatDoesNotReadItsEcho) {
  ASSERT_NO_FATAL_FAILURE(Start());
  v1::ListenResponse l = Listen(ServerContext("server-rsa"));
  // Python's ssl writes 64 KiB records and never reads; it reports how much
  // went out before a write stalled for a second.
  const char* kWriter = R"py(
import socket, ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="localhost")
s.settimeout(1)
sent = 0
try:
    while sent < (64 << 20):
        s.sendall(b"x" * 65536)
        sent += 65536
except Exception:
    pass
print("stalled after", sent, flush=True)
sys.stdin.read()
)py";
  tlsengine::testing::Subprocess peer;
  ASSERT_TRUE(peer.Start({"python3", "-c", kWriter, absl::StrCat(l.address().port())}).ok());
  absl::StatusOr<std::string> stalled = peer.WaitForLine("stalled after", absl::Seconds(30));
  ASSERT_TRUE(stalled.ok()) << stalled.status() << peer.err();
  int64_t sent = std::stoll(stalled->substr(stalled->rfind(' ') + 1));
  EXPECT_LT(sent, 64 << 20) << "the listener kept reading";

  std::string server_side = ServerSide(l.listener_id());
  v1::ConnectionInfo info = Get(server_side);
  EXPECT_EQ(info.state(), "open") << info.error() << " " << info.error_message();
  EXPECT_TRUE(info.paused());
  EXPECT_LE(info.bytes_read(), static_cast<uint64_t>(sent));

  v1::ConnectResponse other = Connect(l.address().port(), ClientContext());
  EXPECT_EQ(Echo(other.connection_id(), "unaffected"), "unaffected");
  peer.Kill();
}

TEST_F(ControlTest, ListenerConnectionAndWatcherLimitsAreResourceExhausted) {
  DaemonOptions o;
  o.controller.limits.max_listeners = 1;
  o.controller.limits.max_connections = 2;
  o.controller.limits.max_watchers = 1;
  ASSERT_NO_FATAL_FAILURE(Start(o));
  std::string server_ctx = ServerContext("server-rsa");
  v1::ListenResponse l = Listen(server_ctx);
  v1::ListenRequest second;
  second.set_context_id(server_ctx);
  second.set_host("127.0.0.1");
  v1::ListenResponse lr;
  grpc::Status s = Do(&v1::TlsControl::Stub::Listen, second, &lr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "too many listeners (limit 1)")) << s.error_message();

  // One client connection and its server side are the two allowed.
  std::string client_ctx = ClientContext();
  v1::ConnectResponse c = Connect(l.address().port(), client_ctx);
  ASSERT_FALSE(ServerSide(l.listener_id()).empty());
  v1::ConnectRequest more;
  more.set_port(l.address().port());
  more.set_servername("localhost");
  more.set_context_id(client_ctx);
  v1::ConnectResponse cr;
  s = Do(&v1::TlsControl::Stub::Connect, more, &cr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "too many connections (limit 2)")) << s.error_message();

  grpc::ClientContext first_ctx;
  first_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto first = stub_->WatchEvents(&first_ctx, v1::WatchEventsRequest());
  first->WaitForInitialMetadata();
  grpc::ClientContext second_ctx;
  second_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto other = stub_->WatchEvents(&second_ctx, v1::WatchEventsRequest());
  v1::ControlEvent ev;
  EXPECT_FALSE(other->Read(&ev));
  s = other->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_TRUE(absl::StrContains(s.error_message(), "ERR_TLS_CONTROL_LIMIT")) << s.error_message();
  first_ctx.TryCancel();
  EXPECT_EQ(first->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // The open connection was not disturbed.
  EXPECT_EQ(Echo(c.connection_id(), "fine"), "fine");
}

}  // namespace
}  // namespace control
}  // namespace tlsengine

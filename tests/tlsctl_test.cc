// tlsctl end to end: the built binary as a subprocess against real peers
// (openssl s_client/s_server, gnutls-cli, node, curl) and against itself, on
// loopback.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/testlib/keylog.h"
#include "tests/testlib/peers.h"

namespace tlsengine {
namespace {

using testing::KeylogEntries;
using testing::KeylogLabels;
using testing::ReadKeylog;
using testing::Subprocess;
using testing::TestFilePath;

constexpr absl::Duration kTimeout = absl::Seconds(15);

std::string Tlsctl() {
  char cwd[4096];
  EXPECT_NE(getcwd(cwd, sizeof cwd), nullptr);
  return absl::StrCat(cwd, "/examples/tlsctl/tlsctl");
}

std::string TmpDir() {
  const char* d = std::getenv("TEST_TMPDIR");
  return d != nullptr ? d : "/tmp";
}

std::string CacheCert() { return TmpDir() + "/cache/tlsengine/tlsctl/localhost.pem"; }

struct Outcome {
  int code = -1;
  std::string out, err;
};

// Runs tlsctl to completion.
Outcome RunTlsctl(std::vector<std::string> args, const std::string& stdin_data = "") {
  args.insert(args.begin(), Tlsctl());
  Subprocess p;
  Outcome r;
  absl::Status s = p.Start(args);
  EXPECT_TRUE(s.ok()) << s;
  if (!s.ok()) return r;
  if (!stdin_data.empty()) {
    EXPECT_TRUE(p.WriteStdin(stdin_data).ok());
  }
  p.CloseStdin();
  r.code = p.Wait(kTimeout);
  r.out = p.out();
  r.err = p.err();
  return r;
}

// The stdout lines holding `needle`.
std::vector<std::string> Lines(const std::string& out, const std::string& needle) {
  std::vector<std::string> got;
  for (absl::string_view l : absl::StrSplit(out, '\n')) {
    if (absl::StrContains(l, needle)) got.emplace_back(l);
  }
  return got;
}

int PortOf(const std::string& listening_line) {
  size_t at = listening_line.find("\"port\":");
  return at == std::string::npos ? -1 : std::atoi(listening_line.c_str() + at + 7);
}

class TlsctlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { setenv("XDG_CACHE_HOME", (TmpDir() + "/cache").c_str(), 1); }

  // Starts `tlsctl serve --port 0 ARGS` and returns the port it listens on.
  int StartServe(Subprocess& server, std::vector<std::string> args) {
    args.insert(args.begin(), {Tlsctl(), "serve", "--port", "0"});
    absl::Status s = server.Start(args);
    EXPECT_TRUE(s.ok()) << s;
    absl::StatusOr<std::string> line = server.WaitForLine("\"event\":\"listening\"", kTimeout);
    EXPECT_TRUE(line.ok()) << line.status();
    if (!line.ok()) return -1;
    EXPECT_TRUE(absl::StrContains(*line, "\"address\":\"127.0.0.1\"")) << *line;
    EXPECT_TRUE(absl::StrContains(*line, "\"family\":\"IPv4\"")) << *line;
    return PortOf(*line);
  }

  // Starts `openssl s_client -connect 127.0.0.1:PORT ARGS`.
  static void StartSClient(Subprocess& client, int port, std::vector<std::string> args) {
    args.insert(args.begin(), {"openssl", "s_client", "-connect", absl::StrCat("127.0.0.1:", port)});
    absl::Status s = client.Start(args);
    EXPECT_TRUE(s.ok()) << s;
  }

  // Starts openssl s_server with `cert` (sent with int1 when `chain`), then
  // `extra`, and returns its port.
  int StartSServer(Subprocess& server, const std::string& cert, const std::string& key, bool chain,
                   const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {"openssl", "s_server", "-accept", "0", "-naccept", "1", "-cert",
                                     TestFilePath(cert), "-key", TestFilePath(key)};
    if (chain) argv.insert(argv.end(), {"-cert_chain", TestFilePath("int1.pem")});
    argv.insert(argv.end(), extra.begin(), extra.end());
    EXPECT_TRUE(server.Start(argv).ok());
    absl::StatusOr<std::string> accept = server.WaitForLine("ACCEPT", kTimeout);
    EXPECT_TRUE(accept.ok()) << accept.status();
    if (!accept.ok()) return -1;
    return std::atoi(accept->substr(accept->rfind(':') + 1).c_str());
  }
};

TEST_F(TlsctlTest, BadFlagsAndUnreadableFilesExitTwoWithOneLine) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"serve", "--bogus"},
           {"serve", "--min-version", "TLSv1_3"},
           {"serve", "--key", "/nonexistent/k.pem", "--cert", "/nonexistent/c.pem"},
           {"connect", "--port", "1", "--ca", "/nonexistent/ca.pem"},
           {"connect", "--host", "127.0.0.1"},
           {"launch"},
           {"daemon", "--bogus"},
           {"serve", "--mode", "hold"},
           {"serve", "--control", "unix:/nonexistent/ctl.sock", "--mode", "http"},
       }) {
    Outcome r = RunTlsctl(args);
    EXPECT_EQ(r.code, 2) << args[1] << ": " << r.err;
    EXPECT_EQ(r.out, "") << args[1];
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_TRUE(absl::StartsWith(r.err, "tlsctl: ")) << r.err;
  }
  Outcome r = RunTlsctl({"serve", "--cert", "/nonexistent/c.pem", "--key", "/nonexistent/k.pem"});
  EXPECT_TRUE(absl::StrContains(r.err, "--key: cannot read '/nonexistent/k.pem'")) << r.err;
}

// A bad --pfx is a bad file (exit 2) in the words Node users grep for.
TEST_F(TlsctlTest, PfxErrorsSayWhatNodeSays) {
  std::string empty = TmpDir() + "/empty.pfx";
  { std::ofstream touch(empty); }
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {{"serve", "--port", "0", "--pfx", empty}, "--pfx: not enough data ('" + empty + "' is empty)"},
           {{"serve", "--port", "0", "--pfx", TestFilePath("server-rsa.pem")}, "wrong tag (not a PKCS#12 (PFX) file)"},
           {{"serve", "--port", "0", "--pfx", TestFilePath("server-rsa.pfx")}, "mac verify failure (wrong passphrase?)"},
           {{"connect", "--port", "1", "--pfx", TestFilePath("server-rsa.pfx"), "--passphrase", "wrong"},
            "mac verify failure (wrong passphrase?)"},
       }) {
    Outcome r = RunTlsctl(c.args);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(absl::StrContains(r.err, c.says)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST_F(TlsctlTest, HelpAndCiphers) {
  Outcome help = RunTlsctl({"serve", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_TRUE(absl::StrContains(help.out, "--reneg-limit N")) << help.out;
  Outcome ciphers = RunTlsctl({"ciphers"});
  EXPECT_EQ(ciphers.code, 0);
  EXPECT_FALSE(Lines(ciphers.out, "tls_aes_128_gcm_sha256").empty()) << ciphers.out;
  EXPECT_FALSE(Lines(ciphers.out, "ecdhe-rsa-aes128-gcm-sha256").empty());
}

TEST_F(TlsctlTest, ServeEchoesToOpensslClientWithTheCachedLocalhostCertificate) {
  Subprocess server;
  int port = StartServe(server, {});
  ASSERT_GT(port, 0);
  Subprocess client;
  StartSClient(client, port, {"-CAfile", CacheCert(), "-verify_return_error", "-servername", "localhost"});
  ASSERT_TRUE(client.WaitForLine("Verify return code: 0 (ok)", kTimeout).ok()) << client.err();
  ASSERT_TRUE(client.WriteStdin("ping from s_client\n").ok());
  EXPECT_TRUE(client.WaitForLine("ping from s_client", kTimeout).ok());
  client.CloseStdin();
  client.Wait(kTimeout);
  absl::StatusOr<std::string> secure = server.WaitForLine("\"event\":\"secureConnection\"", kTimeout);
  ASSERT_TRUE(secure.ok()) << secure.status();
  EXPECT_TRUE(absl::StrContains(*secure, "\"protocol\":\"TLSv1.3\"")) << *secure;
  EXPECT_TRUE(absl::StrContains(*secure, "\"servername\":\"localhost\"")) << *secure;
  absl::StatusOr<std::string> close = server.WaitForLine("\"event\":\"close\"", kTimeout);
  ASSERT_TRUE(close.ok()) << close.status();
  EXPECT_TRUE(absl::StrContains(*close, "\"id\":1")) << *close;
}

// The certificate serve makes has a serial nobody can guess: 16 random
// bytes with the top bit clear (CA/Browser Forum: >= 64 bits of entropy),
// read back with openssl x509 as the oracle. Two fresh caches, two serials.
TEST_F(TlsctlTest, TheDefaultCertificateHasARandomSerial) {
  std::vector<std::string> serials;
  for (const char* cache : {"serial-a", "serial-b"}) {
    std::string dir = absl::StrCat(TmpDir(), "/", cache);
    setenv("XDG_CACHE_HOME", dir.c_str(), 1);
    Subprocess server;
    int port = StartServe(server, {});
    setenv("XDG_CACHE_HOME", (TmpDir() + "/cache").c_str(), 1);
    ASSERT_GT(port, 0);
    EXPECT_TRUE(absl::StrContains(server.err(), "made a certificate for localhost")) << server.err();
    server.Kill();
    Subprocess x509;
    ASSERT_TRUE(
        x509.Start({"openssl", "x509", "-noout", "-serial", "-in", dir + "/tlsengine/tlsctl/localhost.pem"}).ok());
    ASSERT_EQ(x509.Wait(kTimeout), 0) << x509.err();
    absl::string_view out = x509.out();
    ASSERT_TRUE(absl::ConsumePrefix(&out, "serial=")) << x509.out();
    std::string hex(absl::StripTrailingAsciiWhitespace(out));
    // 16 bytes, or 15 when the first random byte was zero (1 in 128).
    EXPECT_GE(hex.size(), 30u) << hex;
    EXPECT_LE(hex.size(), 32u) << hex;
    EXPECT_TRUE(hex.size() < 32 || hex[0] < '8') << hex << ": the top bit must be clear (a positive serial)";
    serials.push_back(hex);
  }
  EXPECT_NE(serials[0], serials[1]);
}

TEST_F(TlsctlTest, CurlReadsTheConnectionAsJsonInHttpMode) {
  Subprocess server;
  int port = StartServe(server, {"--mode", "http", "--key", TestFilePath("server-rsa-key.pem"), "--cert",
                                 TestFilePath("server-rsa-chain.pem"), "--alpn", "http/1.1"});
  ASSERT_GT(port, 0);
  Subprocess curl;
  ASSERT_TRUE(curl.Start({"curl", "-sS", "--max-time", "10", "--cacert", TestFilePath("ca1.pem"),
                          absl::StrCat("https://localhost:", port, "/"), absl::StrCat("https://localhost:", port, "/again")})
                  .ok());
  EXPECT_EQ(curl.Wait(kTimeout), 0) << curl.err();
  std::vector<std::string> bodies = Lines(curl.out(), "\"event\":\"secureConnection\"");
  ASSERT_EQ(bodies.size(), 2u) << curl.out();  // two requests on one kept-alive connection
  EXPECT_TRUE(absl::StrContains(bodies[0], "\"alpnProtocol\":\"http/1.1\"")) << bodies[0];
  EXPECT_TRUE(absl::StrContains(bodies[0], "\"servername\":\"localhost\"")) << bodies[0];
  EXPECT_TRUE(absl::StrContains(bodies[0], "\"cipher\":{\"name\":")) << bodies[0];
}

// Every script starts with this: PORT and PID (the server's) from argv,
// conn() for a handshaked TLS socket, growth_kb() for how much the
// server's peak RSS (VmHWM in /proc/PID/status) grew since the start or
// since start_measuring() (--mode http), and
// head(s) for the status line of the next response ('timeout' or 'closed'
// when none comes), answers(s, n) for the next n status codes, and
// closed_within(s, seconds) for whether the server closes the connection.
constexpr char kPrelude[] = R"py(
import socket, ssl, sys, time
PORT, PID = int(sys.argv[1]), int(sys.argv[2])
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE
def conn(timeout=5):
    return CTX.wrap_socket(socket.create_connection(("127.0.0.1", PORT), timeout=timeout))
def hwm_kb():
    for line in open("/proc/%d/status" % PID):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
START_KB = hwm_kb()
def start_measuring():
    # After one request, so that what every connection costs (and ASan's
    # shadow of it) is not counted.
    global START_KB
    s = conn()
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    s.recv(65536)
    s.close()
    START_KB = hwm_kb()
def growth_kb():
    return hwm_kb() - START_KB
def head(s, timeout=3):
    s.settimeout(timeout)
    got = b""
    try:
        while b"\r\n" not in got:
            d = s.recv(65536)
            if not d:
                return "closed"
            got += d
    except socket.timeout:
        return "timeout"
    except (ConnectionError, ssl.SSLError):
        return "closed"
    return got.split(b"\r\n", 1)[0].decode()
def answers(s, n, timeout=5):
    # The status codes of the next n responses (fewer when the wait ends).
    s.settimeout(timeout)
    got = b""
    try:
        while got.count(b"HTTP/1.1 ") < n:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except (OSError, ssl.SSLError):
        pass
    return " ".join(p[:3].decode() for p in got.split(b"HTTP/1.1 ")[1:n + 1])
def closed_within(s, timeout):
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
    except socket.timeout:
        return "open"
    except (ConnectionError, ssl.SSLError):
        pass
    return "closed"
)py";

// tlsctl serve as a hostile or careless client meets it, driven over TLS
// by python3's ssl module, with the server's memory read from /proc: bodies
// are discarded as they arrive and capped (413), bad lengths get 400, a
// client that pipelines without reading stops being read (backpressure),
// and silent connections are ended by --idle-timeout.
class TlsctlAbuseTest : public TlsctlTest {
 protected:
  // Starts `tlsctl serve --port 0 SERVE_ARGS`, runs kPrelude + `script`
  // against it and returns the script's stdout, after checking that it
  // exited 0.
  std::string Attack(const std::vector<std::string>& serve_args, const std::string& script) {
    // Under ASan freed memory waits in a quarantine (256 MB by default),
    // and stack-use-after-return's fake stacks touch page after page: both
    // count in RSS and grow with traffic. Keep them out of serve's RSS, so
    // VmHWM shows what serve holds (ASan still checks every access).
    const char* asan = std::getenv("ASAN_OPTIONS");
    const std::string asan_options = asan != nullptr ? asan : "";
    if (asan != nullptr) {
      setenv("ASAN_OPTIONS", (asan_options + ":quarantine_size_mb=1:detect_stack_use_after_return=0").c_str(), 1);
    }
    int port = StartServe(server_, serve_args);
    if (asan != nullptr) setenv("ASAN_OPTIONS", asan_options.c_str(), 1);
    if (port <= 0) return "";
    Subprocess py;
    absl::Status s = py.Start({"python3", "-c", absl::StrCat(kPrelude, script), absl::StrCat(port),
                               absl::StrCat(server_.pid())});
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) return "";
    EXPECT_EQ(py.Wait(kTimeout), 0) << py.out() << py.err();
    std::fputs(py.out().c_str(), stdout);  // the measurements, for the test log
    return py.out();
  }

  Subprocess server_;
};

// The value of the script's output line "KEY: VALUE".
std::string Value(const std::string& out, absl::string_view key) {
  for (absl::string_view l : absl::StrSplit(out, '\n')) {
    if (absl::ConsumePrefix(&l, absl::StrCat(key, ": "))) return std::string(l);
  }
  return "(no " + std::string(key) + " line)";
}

int64_t IntValue(const std::string& out, absl::string_view key) {
  int64_t n = -1;
  EXPECT_TRUE(absl::SimpleAtoi(Value(out, key), &n)) << key << " in " << out;
  return n;
}

// The server's peak RSS may grow by at most this while a client sends tens
// of MB (before the fixes it grew by what was sent).
constexpr int64_t kGrowthBoundKb = 16 * 1024;

TEST_F(TlsctlAbuseTest, OversizedBodyGets413AtTheHeadAndIsNotBuffered) {
  std::string out = Attack({"--mode", "http"}, R"py(
start_measuring()
s = conn()
s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n" + b"x" * 65536)
print("status:", head(s))
sent, chunk = 65536, b"x" * 65536
try:
    s.settimeout(1)
    while sent < 64 << 20:
        s.sendall(chunk)
        sent += len(chunk)
except (OSError, ssl.SSLError):
    pass
print("closed:", closed_within(s, 5))
print("growth_kb:", growth_kb())
print("sent:", sent)
)py");
  EXPECT_EQ(Value(out, "status"), "HTTP/1.1 413 Content Too Large") << out;
  EXPECT_EQ(Value(out, "closed"), "closed") << out;
  EXPECT_LT(IntValue(out, "growth_kb"), kGrowthBoundKb) << out;
  EXPECT_LT(IntValue(out, "sent"), 64 << 20) << "serve went on reading a body it refused: " << out;
}

TEST_F(TlsctlAbuseTest, BodyUnderTheCapIsDiscardedAsItArrives) {
  std::string out = Attack({"--mode", "http", "--max-body-size", "67108864"}, R"py(
start_measuring()
s = conn(timeout=10)
s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n")
chunk = b"x" * 65536
for _ in range(1024):
    s.sendall(chunk)
s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
print("growth_kb:", growth_kb())
print("answers:", answers(s, 2))
)py");
  EXPECT_EQ(Value(out, "answers"), "200 200") << "the POST and the GET after its body: " << out;
  EXPECT_LT(IntValue(out, "growth_kb"), kGrowthBoundKb) << out;
}

TEST_F(TlsctlAbuseTest, MalformedOrHugeLengthsGet400AndChunkedGets501) {
  std::string out = Attack({"--mode", "http"}, R"py(
# Each case on a new connection: a name and the header lines to send.
cases = [
    ("max64", "Content-Length: 18446744073709551615"),
    ("max64plus1", "Content-Length: 18446744073709551616"),
    ("int64plus1", "Content-Length: 9223372036854775808"),
    ("minus1", "Content-Length: -1"),
    ("plus5", "Content-Length: +5"),
    ("trailing", "Content-Length: 12abc"),
    ("hex", "Content-Length: 0x10"),
    ("empty", "Content-Length: "),
    ("list", "Content-Length: 5, 5"),
    ("conflict", "Content-Length: 5\r\nContent-Length: 6"),
    ("spacebeforecolon", "Content-Length : 5"),
    ("nocolon", "Content-Length 5"),
    ("chunked", "Transfer-Encoding: chunked"),
    ("int64max", "Content-Length: 9223372036854775807"),
    ("same", "Content-Length: 5\r\nContent-Length: 5"),
]
for name, headers in cases:
    s = conn()
    s.sendall(("POST / HTTP/1.1\r\nHost: x\r\n%s\r\n\r\nhello" % headers).encode())
    print("%s: %s" % (name, head(s)))
    s.close()
)py");
  for (const char* name : {"max64", "max64plus1", "int64plus1", "minus1", "plus5", "trailing", "hex", "empty", "list",
                           "conflict", "spacebeforecolon", "nocolon"}) {
    EXPECT_EQ(Value(out, name), "HTTP/1.1 400 Bad Request") << name << "\n" << out;
  }
  EXPECT_EQ(Value(out, "chunked"), "HTTP/1.1 501 Not Implemented") << out;
  EXPECT_EQ(Value(out, "int64max"), "HTTP/1.1 413 Content Too Large") << out;
  EXPECT_EQ(Value(out, "same"), "HTTP/1.1 200 OK") << out;
}

// A line ending another parser may split on (bare LF or CR) must not hide
// a Content-Length: otherwise the body ("hello" + a second request) is
// read as requests, a smuggling desync with any front end that splits
// there. Nor is "5\v" (VT and FF are not optional whitespace) a length.
TEST_F(TlsctlAbuseTest, BareLineEndsAndControlsInTheHeadGet400) {
  std::string out = Attack({"--mode", "http"}, R"py(
cases = [
    ("barelf", "X-A: a\nContent-Length: 29"),
    ("barecr", "X-A: a\rContent-Length: 29"),
    ("barelfrequestline", ""),
    ("vt", "Content-Length: 29\x0b"),
    ("ff", "Content-Length: \x0c29"),
]
for name, headers in cases:
    s = conn()
    line = "POST / HTTP/1.1\nContent-Length: 29" if name == "barelfrequestline" else "POST / HTTP/1.1\r\n" + headers
    s.sendall((line + "\r\nHost: x\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n").encode())
    print("%s: %s" % (name, head(s)))
    s.close()
)py");
  for (const char* name : {"barelf", "barecr", "barelfrequestline", "vt", "ff"}) {
    EXPECT_EQ(Value(out, name), "HTTP/1.1 400 Bad Request") << name << "\n" << out;
  }
}

// Slowloris: a head sent one byte per half idle period keeps the idle
// timer from ever firing; the head must be whole within --idle-timeout of
// its first byte (408), while a slow but whole request is still served.
TEST_F(TlsctlAbuseTest, HeadTrickledPastTheIdleTimeoutGets408) {
  std::string out = Attack({"--mode", "http", "--idle-timeout", "1000"}, R"py(
s = conn()
start, sent, status = time.monotonic(), 0, "still open"
req = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
try:
    while time.monotonic() - start < 8:
        s.sendall(req[sent:sent + 1])
        sent += 1
        time.sleep(0.4)
        s.settimeout(0.01)
        try:
            got = s.recv(65536)
            status = got.split(b"\r\n", 1)[0].decode() if got else "closed"
            break
        except socket.timeout:
            pass
except (OSError, ssl.SSLError) as e:
    status = "closed"
print("trickle:", status)
print("after_s: %d" % (time.monotonic() - start))
print("closed:", closed_within(s, 5))
ok = conn()
ok.sendall(b"GET / HTTP/1.1\r\n")
time.sleep(0.6)
ok.sendall(b"Host: x\r\n\r\n")
print("slow_but_whole:", head(ok))
)py");
  EXPECT_EQ(Value(out, "trickle"), "HTTP/1.1 408 Request Timeout") << out;
  EXPECT_LT(IntValue(out, "after_s"), 4) << out;
  EXPECT_EQ(Value(out, "closed"), "closed") << out;
  EXPECT_EQ(Value(out, "slow_but_whole"), "HTTP/1.1 200 OK") << out;
}

TEST_F(TlsctlAbuseTest, PipelinerThatNeverReadsIsNotReadAndOthersAreServed) {
  std::string out = Attack({"--mode", "http"}, R"py(
start_measuring()
p = conn()
chunk = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2400
sent, outcome = 0, "all sent"
p.settimeout(2)
try:
    while sent < 20 << 20:
        p.sendall(chunk)
        sent += len(chunk)
except socket.timeout:
    outcome = "blocked"
except (OSError, ssl.SSLError) as e:
    outcome = "failed: %r" % e
print("pipeliner:", outcome)
print("sent:", sent)
print("growth_kb:", growth_kb())
o = conn()
o.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
print("other:", head(o))
o.close()
print("first:", answers(p, 3))
)py");
  EXPECT_EQ(Value(out, "pipeliner"), "blocked") << out;
  EXPECT_LT(IntValue(out, "sent"), 20 << 20) << out;
  EXPECT_LT(IntValue(out, "growth_kb"), kGrowthBoundKb) << out;
  EXPECT_EQ(Value(out, "other"), "HTTP/1.1 200 OK") << out;
  EXPECT_EQ(Value(out, "first"), "200 200 200") << "the pipeliner's answers wait for it: " << out;
}

TEST_F(TlsctlAbuseTest, IdleTimeoutFreesTheSlotsOfSilentClients) {
  std::string out = Attack({"--mode", "http", "--max-connections", "2", "--idle-timeout", "1000"}, R"py(
a, b = conn(), conn()
start = time.monotonic()
served = "never"
while time.monotonic() - start < 8:
    try:
        c = conn()
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status = head(c)
        c.close()
    except (OSError, ssl.SSLError):
        status = "refused"
    if status.startswith("HTTP/1.1 200"):
        served = "after %.1f s" % (time.monotonic() - start)
        break
    time.sleep(0.1)
print("third:", served)
print("a:", closed_within(a, 5))
print("b:", closed_within(b, 5))
)py");
  EXPECT_TRUE(absl::StartsWith(Value(out, "third"), "after")) << out;
  EXPECT_EQ(Value(out, "a"), "closed") << out;
  EXPECT_EQ(Value(out, "b"), "closed") << out;
  EXPECT_TRUE(server_.WaitForLine("\"event\":\"timeout\"", kTimeout).ok()) << server_.out();
}

TEST_F(TlsctlAbuseTest, IdleTimeoutEndsASilentEchoClientButNotAnActiveOne) {
  std::string out = Attack({"--idle-timeout", "1000"}, R"py(
silent, active = conn(), conn()
echoed = 0
for i in range(8):  # 2.4 s of one echo every 0.3 s
    active.sendall(b"ping")
    if active.recv(16) == b"ping":
        echoed += 1
    time.sleep(0.3)
print("echoed:", echoed)
print("silent:", closed_within(silent, 5))
)py");
  EXPECT_EQ(Value(out, "echoed"), "8") << out;
  EXPECT_EQ(Value(out, "silent"), "closed") << out;
}

TEST_F(TlsctlTest, ConnectToOpensslServer) {
  Subprocess server;
  int port = StartSServer(server, "server-rsa.pem", "server-rsa-key.pem", true);
  ASSERT_GT(port, 0);
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", TestFilePath("ca1.pem"), "--servername",
                     "localhost", "--max-version", "TLSv1.2"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  std::vector<std::string> secure = Lines(r.out, "\"event\":\"secureConnect\"");
  ASSERT_EQ(secure.size(), 1u) << r.out;
  EXPECT_TRUE(absl::StrContains(secure[0], "\"authorized\":true")) << secure[0];
  EXPECT_TRUE(absl::StrContains(secure[0], "\"protocol\":\"TLSv1.2\"")) << secure[0];
  EXPECT_TRUE(absl::StrContains(secure[0], "\"CN\":\"localhost\"")) << secure[0];
  EXPECT_EQ(Lines(r.out, "\"event\":\"close\",\"hadError\":false").size(), 1u) << r.out;
}

TEST_F(TlsctlTest, ConnectRefusesASelfSignedServer) {
  Subprocess server;
  int port = StartSServer(server, "self-signed.pem", "self-signed-key.pem", false);
  ASSERT_GT(port, 0);
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--servername", "localhost"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(Lines(r.out, "\"event\":\"error\",\"code\":\"DEPTH_ZERO_SELF_SIGNED_CERT\"").size(), 1u) << r.out;
  EXPECT_TRUE(Lines(r.out, "secureConnect").empty()) << r.out;
}

TEST_F(TlsctlTest, ConnectRefusesAWrongName) {
  Subprocess server;
  int port = StartSServer(server, "other-name.pem", "other-name-key.pem", true);
  ASSERT_GT(port, 0);
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", TestFilePath("ca1.pem"), "--servername",
                     "localhost"});
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(Lines(r.out, "\"code\":\"ERR_TLS_CERT_ALTNAME_INVALID\"").size(), 1u) << r.out;
}

TEST_F(TlsctlTest, ConnectReportsConnectionRefused) {
  int port;
  {
    testing::Listener closed;  // a port that was free a moment ago
    port = closed.port();
  }
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--insecure"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(Lines(r.out, "\"code\":\"ECONNREFUSED\"").size(), 1u) << r.out;
}

// A Python ssl server for one connection (server-rsa, ca1), to see how
// connect ends. It reads the client's first data, then sends `lines` lines
// `gap_ms` apart, and then, by `how`: "close_notify" (unwrap: the clean
// end), "fin" (TCP FIN without close_notify: a truncation), or "silent"
// (nothing more until the client goes). Returns the port.
int StartPythonServer(Subprocess& server, int lines, int gap_ms, const std::string& how) {
  static constexpr char kScript[] = R"py(
import socket, ssl, sys, time
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
print("PORT", ls.getsockname()[1], flush=True)
raw, _ = ls.accept()
s = ctx.wrap_socket(raw, server_side=True)
s.recv(100)
for i in range(int(sys.argv[3])):
    time.sleep(int(sys.argv[4]) / 1000)
    s.sendall(b"line %d\n" % i)
how = sys.argv[5]
if how == "close_notify":
    try:
        s.unwrap()
    except (ssl.SSLError, OSError):
        pass
else:
    if how == "fin":
        s.shutdown(socket.SHUT_WR)  # drops the TLS layer: a FIN without close_notify
    s.settimeout(10)
    try:  # the bytes on the socket, below TLS, until the client's FIN
        while socket.socket.recv(s, 4096):
            pass
    except OSError:
        pass
s.close()
print("DONE", flush=True)
)py";
  absl::Status started = server.Start({"python3", "-c", kScript, TestFilePath("server-rsa-chain.pem"),
                                       TestFilePath("server-rsa-key.pem"), absl::StrCat(lines),
                                       absl::StrCat(gap_ms), how});
  EXPECT_TRUE(started.ok()) << started;
  absl::StatusOr<std::string> line = server.WaitForLine("PORT", kTimeout);
  EXPECT_TRUE(line.ok()) << line.status() << server.err();
  return line.ok() ? std::atoi(line->c_str() + 5) : -1;
}

// Starts that server and runs `connect --send x EXTRA` against it.
Outcome ConnectToPython(Subprocess& server, int lines, int gap_ms, const std::string& how,
                        const std::vector<std::string>& extra) {
  int port = StartPythonServer(server, lines, gap_ms, how);
  if (port <= 0) return Outcome{};
  std::vector<std::string> args = {"connect", "--port", absl::StrCat(port), "--ca", TestFilePath("ca1.pem"),
                                   "--servername", "localhost", "--send", "x"};
  args.insert(args.end(), extra.begin(), extra.end());
  return RunTlsctl(args);
}

// Node keeps reading after end() while data flows: the close wait bounds
// the server's silence, not the time since our close_notify. Eight lines
// 200 ms apart take three times the 500 ms wait.
TEST_F(TlsctlTest, ConnectKeepsReadingWhileDataArrivesAfterItEnds) {
  Subprocess server;
  Outcome r = ConnectToPython(server, 8, 200, "close_notify", {"--close-timeout", "500"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(Lines(r.out, "\"event\":\"data\"").size(), 8u) << r.out;
  EXPECT_EQ(Lines(r.out, "\"data\":\"line 7\\n\"").size(), 1u) << r.out;
  EXPECT_EQ(Lines(r.out, "{\"event\":\"end\",\"truncated\":false}").size(), 1u) << r.out;
  EXPECT_TRUE(Lines(r.out, "\"event\":\"error\"").empty()) << r.out;
  EXPECT_TRUE(server.WaitForLine("DONE", kTimeout).ok()) << server.err();
}

// ... and a server that goes silent is still given up on.
TEST_F(TlsctlTest, ConnectGivesUpOnASilentServerAfterTheCloseTimeout) {
  Subprocess server;
  Outcome r = ConnectToPython(server, 2, 100, "silent", {"--close-timeout", "300"});
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_EQ(Lines(r.out, "\"event\":\"data\"").size(), 2u) << r.out;
  EXPECT_EQ(Lines(r.out, "{\"event\":\"error\",\"code\":\"ERR_TLS_CLOSE_TIMEOUT\"").size(), 1u) << r.out;
  EXPECT_EQ(Lines(r.out, "\"event\":\"close\",\"hadError\":true").size(), 1u) << r.out;
}

// A FIN without close_notify may be a truncation attack: an error exit, as
// OpenSSL 3 and Python treat it, unless --allow-truncation.
TEST_F(TlsctlTest, ConnectFailsOnATruncatedStreamUnlessAllowed) {
  for (bool allow : {false, true}) {
    SCOPED_TRACE(allow ? "--allow-truncation" : "default");
    Subprocess server;
    Outcome r = ConnectToPython(server, 1, 0, "fin",
                                allow ? std::vector<std::string>{"--allow-truncation"} : std::vector<std::string>{});
    EXPECT_EQ(r.code, allow ? 0 : 1) << r.out << r.err;
    EXPECT_EQ(Lines(r.out, "\"data\":\"line 0\\n\"").size(), 1u) << r.out;
    EXPECT_EQ(Lines(r.out, "{\"event\":\"end\",\"truncated\":true}").size(), 1u) << r.out;
    std::vector<std::string> errors = Lines(r.out, "\"event\":\"error\"");
    if (allow) {
      EXPECT_TRUE(errors.empty()) << r.out;
      EXPECT_EQ(Lines(r.out, "\"event\":\"close\",\"hadError\":false").size(), 1u) << r.out;
    } else {
      ASSERT_EQ(errors.size(), 1u) << r.out;
      EXPECT_TRUE(absl::StrContains(errors[0], "\"code\":\"ECONNRESET\"")) << errors[0];
      EXPECT_TRUE(absl::StrContains(errors[0], "without close_notify")) << errors[0];
      EXPECT_EQ(Lines(r.out, "\"event\":\"close\",\"hadError\":true").size(), 1u) << r.out;
    }
    EXPECT_TRUE(server.WaitForLine("DONE", kTimeout).ok()) << server.err();
  }
}

// A server that accepts TCP and never answers the ClientHello.
TEST_F(TlsctlTest, ConnectHandshakeTimeout) {
  testing::Listener mute;
  Subprocess client;
  ASSERT_TRUE(client
                  .Start({Tlsctl(), "connect", "--port", absl::StrCat(mute.port()), "--insecure",
                          "--handshake-timeout", "300"})
                  .ok());
  int fd = mute.Accept(kTimeout);  // and never read
  ASSERT_GE(fd, 0);
  absl::StatusOr<std::string> error = client.WaitForLine("\"event\":\"error\"", kTimeout);
  close(fd);  // the client waits a moment for our FIN after its own
  ASSERT_TRUE(error.ok()) << error.status() << client.out() << client.err();
  EXPECT_TRUE(absl::StrContains(*error, "\"code\":\"ERR_TLS_HANDSHAKE_TIMEOUT\"")) << *error;
  EXPECT_TRUE(absl::StrContains(*error, "\"message\":\"TLS handshake timeout\"")) << *error;
  EXPECT_EQ(client.Wait(kTimeout), 1) << client.out() << client.err();
  EXPECT_TRUE(Lines(client.out(), "secureConnect").empty()) << client.out();
}

TEST_F(TlsctlTest, ConnectToServeEchoesAndResumes) {
  for (const char* version : {"TLSv1.3", "TLSv1.2"}) {
    SCOPED_TRACE(version);
    Subprocess server;
    int port = StartServe(server, {"--max-version", version});
    ASSERT_GT(port, 0);
    std::string session = absl::StrCat(TmpDir(), "/session-", version, ".der");
    Outcome first = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--send", "hello \"tlsctl\"\n",
                           "--session-out", session});
    EXPECT_EQ(first.code, 0) << first.out << first.err;
    EXPECT_EQ(Lines(first.out, "{\"event\":\"data\",\"data\":\"hello \\\"tlsctl\\\"\\n\"}").size(), 1u) << first.out;
    EXPECT_EQ(Lines(first.out, "\"sessionReused\":false").size(), 1u) << first.out;
    Outcome second = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--stdin", "--session-in",
                            session},
                           "from stdin");
    EXPECT_EQ(second.code, 0) << second.out << second.err;
    EXPECT_EQ(Lines(second.out, "\"sessionReused\":true").size(), 1u) << second.out;
    EXPECT_EQ(Lines(second.out, "\"data\":\"from stdin\"").size(), 1u) << second.out;
    absl::StatusOr<std::string> reused = server.WaitForLine("\"sessionReused\":true", kTimeout);
    EXPECT_TRUE(reused.ok()) << reused.status();
  }
}

TEST_F(TlsctlTest, ServeReportsClientErrorsWithNodeCodes) {
  Subprocess server;
  int port = StartServe(server, {"--request-cert", "--reject-unauthorized", "--ca", TestFilePath("ca1.pem")});
  ASSERT_GT(port, 0);
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert()});
  EXPECT_EQ(r.code, 1) << r.out;
  absl::StatusOr<std::string> err = server.WaitForLine("\"event\":\"clientError\"", kTimeout);
  ASSERT_TRUE(err.ok()) << err.status();
  EXPECT_TRUE(absl::StrContains(*err, "\"code\":\"ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE\"")) << *err;
  // With a client certificate from ca1 the same server authorizes it.
  Outcome ok = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--key",
                      TestFilePath("client-key.pem"), "--cert", TestFilePath("client-chain.pem"), "--send", "x"});
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
  absl::StatusOr<std::string> secure = server.WaitForLine("\"event\":\"secureConnection\"", kTimeout);
  ASSERT_TRUE(secure.ok()) << secure.status();
  EXPECT_TRUE(absl::StrContains(*secure, "\"authorized\":true")) << *secure;
  EXPECT_TRUE(absl::StrContains(*secure, "\"CN\":\"test client\"")) << *secure;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST_F(TlsctlTest, TwoLoopsResumeEachOthersTickets) {
  Subprocess server;
  int port = StartServe(server, {"--loops", "2"});
  ASSERT_GT(port, 0);
  EXPECT_TRUE(absl::StrContains(server.err(), "starting 2 loops")) << server.err();
  std::string session = TmpDir() + "/session-loops.der";
  Outcome first = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--session-out", session});
  ASSERT_EQ(first.code, 0) << first.out << first.err;
  // The acceptor deals connections out in turn: 2 goes to the second loop,
  // 3 back to the first; both resume the ticket the first loop issued.
  for (int id : {2, 3}) {
    Outcome again = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--session-in", session,
                               "--send", "again"});
    EXPECT_EQ(again.code, 0) << again.out << again.err;
    EXPECT_EQ(Lines(again.out, "\"sessionReused\":true").size(), 1u) << again.out;
    absl::StatusOr<std::string> reused = server.WaitForLine(absl::StrCat("\"id\":", id, ","), kTimeout);
    ASSERT_TRUE(reused.ok()) << reused.status();
    EXPECT_TRUE(absl::StrContains(*reused, "\"sessionReused\":true")) << *reused;
  }
}

TEST_F(TlsctlTest, StaplesTheOcspResponseForOpensslAndForConnect) {
  Subprocess server;
  int port = StartServe(server, {"--key", TestFilePath("server-rsa-key.pem"), "--cert",
                                 TestFilePath("server-rsa-chain.pem"), "--ocsp-response",
                                 TestFilePath("server-rsa-ocsp.der")});
  ASSERT_GT(port, 0);
  Subprocess client;
  StartSClient(client, port, {"-CAfile", TestFilePath("ca1.pem"), "-servername", "localhost", "-status"});
  EXPECT_TRUE(client.WaitForLine("OCSP Response Status: successful", kTimeout).ok()) << client.out();
  EXPECT_TRUE(client.WaitForLine("Cert Status: good", kTimeout).ok()) << client.out();
  client.CloseStdin();
  client.Wait(kTimeout);
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", TestFilePath("ca1.pem"), "--servername",
                         "localhost", "--request-ocsp"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  std::string der = ReadFile(TestFilePath("server-rsa-ocsp.der"));
  std::vector<std::string> ocsp = Lines(r.out, "\"event\":\"OCSPResponse\"");
  ASSERT_EQ(ocsp.size(), 1u) << r.out;
  EXPECT_TRUE(absl::StrContains(ocsp[0], absl::StrCat("\"response\":\"", absl::Base64Escape(der), "\""))) << ocsp[0];
}

TEST_F(TlsctlTest, SniServesTheNamedCertificate) {
  Subprocess server;
  int port = StartServe(server, {"--key", TestFilePath("server-rsa-key.pem"), "--cert",
                                 TestFilePath("server-rsa-chain.pem"), "--sni",
                                 absl::StrCat("other.example.com=", TestFilePath("other-name-key.pem"), ":",
                                              TestFilePath("other-name-chain.pem"))});
  ASSERT_GT(port, 0);
  for (const char* name : {"other.example.com", "localhost"}) {
    SCOPED_TRACE(name);
    Subprocess client;
    StartSClient(client, port,
                 {"-CAfile", TestFilePath("ca1.pem"), "-servername", name, "-verify_hostname", name,
                  "-verify_return_error"});
    absl::StatusOr<std::string> subject = client.WaitForLine("subject=", kTimeout);
    ASSERT_TRUE(subject.ok()) << client.out() << client.err();
    EXPECT_TRUE(absl::StrContains(*subject, absl::StrCat("CN = ", name))) << *subject;
    EXPECT_TRUE(client.WaitForLine("Verify return code: 0 (ok)", kTimeout).ok()) << client.out();
    client.CloseStdin();
    client.Wait(kTimeout);
    absl::StatusOr<std::string> secure = server.WaitForLine("\"event\":\"secureConnection\"", kTimeout);
    ASSERT_TRUE(secure.ok()) << secure.status();
    EXPECT_TRUE(absl::StrContains(*secure, absl::StrCat("\"servername\":\"", name, "\""))) << *secure;
  }
}

TEST_F(TlsctlTest, BothSidesWriteTheSameKeylogLines) {
  std::string server_log = TmpDir() + "/server.keylog", client_log = TmpDir() + "/client.keylog";
  unlink(server_log.c_str());
  unlink(client_log.c_str());
  Subprocess server;
  int port = StartServe(server, {"--keylog", server_log});
  ASSERT_GT(port, 0);
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--keylog", client_log,
                         "--send", "secret"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  ASSERT_TRUE(server.WaitForLine("\"event\":\"close\"", kTimeout).ok());
  absl::StatusOr<KeylogEntries> ours = ReadKeylog(server_log), theirs = ReadKeylog(client_log);
  ASSERT_TRUE(ours.ok()) << ours.status();
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  EXPECT_EQ(*ours, *theirs);
  // TLS 1.3: both handshake and traffic secrets, and the exporter secret.
  for (const std::string& label : KeylogLabels("TLSv1.3")) {
    EXPECT_EQ(ours->count(label), 1u) << label << " in " << ReadFile(server_log);
  }
}

// Key logs checked against an independent oracle: OpenSSL's -keylogfile at
// the other end of the same connection must hold exactly the lines tlsctl
// wrote (comment lines aside), given --keylog or $SSLKEYLOGFILE, for TLS 1.2
// and 1.3. Parameters: the version, and whether tlsctl gets the file through
// its environment instead of the flag.
class TlsctlKeylogTest : public TlsctlTest, public ::testing::WithParamInterface<std::tuple<std::string, bool>> {
 protected:
  void SetUp() override {
    unsetenv("SSLKEYLOGFILE");  // only ever in tlsctl's environment, and only when the test says so
    std::string name = absl::StrCat(version(), via_env() ? "-env" : "-flag");
    ours_ = absl::StrCat(TmpDir(), "/keylog-tlsctl-", name);
    theirs_ = absl::StrCat(TmpDir(), "/keylog-openssl-", name);
    unlink(ours_.c_str());
    unlink(theirs_.c_str());
  }
  void TearDown() override {
    unlink(ours_.c_str());
    unlink(theirs_.c_str());
  }

  const std::string& version() const { return std::get<0>(GetParam()); }
  bool via_env() const { return std::get<1>(GetParam()); }
  std::string OpenSslVersionFlag() const { return version() == "TLSv1.2" ? "-tls1_2" : "-tls1_3"; }

  // Runs `start` (which starts tlsctl) with $SSLKEYLOGFILE naming our file,
  // or with --keylog FILE among tlsctl's arguments; the variable is unset
  // again once tlsctl has started, so OpenSSL never sees it.
  template <typename F>
  auto WithKeylog(std::vector<std::string> args, F start) {
    if (via_env()) {
      setenv("SSLKEYLOGFILE", ours_.c_str(), 1);
    } else {
      args.insert(args.end(), {"--keylog", ours_});
    }
    auto result = start(args);
    unsetenv("SSLKEYLOGFILE");
    return result;
  }

  // Each of the version's labels once in OpenSSL's file, and the same lines
  // in tlsctl's.
  void ExpectSameLines() {
    absl::StatusOr<KeylogEntries> theirs = ReadKeylog(theirs_);
    ASSERT_TRUE(theirs.ok()) << theirs.status();
    for (const std::string& label : KeylogLabels(version())) {
      EXPECT_EQ(theirs->count(label), 1u) << label << " in " << ReadFile(theirs_);
    }
    EXPECT_EQ(theirs->size(), KeylogLabels(version()).size()) << ReadFile(theirs_);
    absl::StatusOr<KeylogEntries> ours = ReadKeylog(ours_);
    ASSERT_TRUE(ours.ok()) << ours.status();
    EXPECT_EQ(*ours, *theirs) << "tlsctl's key log:\n" << ReadFile(ours_) << "OpenSSL's:\n" << ReadFile(theirs_);
  }

  std::string ours_, theirs_;
};

TEST_P(TlsctlKeylogTest, ServeLogsTheSameSecretsAsSClient) {
  Subprocess server;
  int port = WithKeylog({}, [&](const std::vector<std::string>& args) { return StartServe(server, args); });
  ASSERT_GT(port, 0);
  Subprocess client;
  StartSClient(client, port, {"-keylogfile", theirs_, OpenSslVersionFlag(), "-CAfile", CacheCert(),
                              "-verify_return_error", "-servername", "localhost"});
  ASSERT_TRUE(client.WaitForLine("Verify return code: 0 (ok)", kTimeout).ok()) << client.out() << client.err();
  ASSERT_TRUE(client.WriteStdin("ping with a key log\n").ok());
  ASSERT_TRUE(client.WaitForLine("ping with a key log", kTimeout).ok()) << client.out() << client.err();
  client.CloseStdin();
  EXPECT_EQ(client.Wait(kTimeout), 0) << client.out() << client.err();
  absl::StatusOr<std::string> secure = server.WaitForLine("\"event\":\"secureConnection\"", kTimeout);
  ASSERT_TRUE(secure.ok()) << secure.status() << server.out() << server.err();
  EXPECT_TRUE(absl::StrContains(*secure, absl::StrCat("\"protocol\":\"", version(), "\""))) << *secure;
  absl::StatusOr<std::string> close = server.WaitForLine("\"event\":\"close\"", kTimeout);
  ASSERT_TRUE(close.ok()) << close.status() << server.out() << server.err();
  ExpectSameLines();
}

TEST_P(TlsctlKeylogTest, ConnectLogsTheSameSecretsAsSServer) {
  Subprocess server;
  int port = StartSServer(server, "server-rsa.pem", "server-rsa-key.pem", true,
                          {"-keylogfile", theirs_, OpenSslVersionFlag()});
  ASSERT_GT(port, 0);
  Outcome r = WithKeylog({"connect", "--port", absl::StrCat(port), "--ca", TestFilePath("ca1.pem"), "--servername",
                          "localhost", "--send", "ping with a key log"},
                         [](const std::vector<std::string>& args) { return RunTlsctl(args); });
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  std::vector<std::string> secure = Lines(r.out, "\"event\":\"secureConnect\"");
  ASSERT_EQ(secure.size(), 1u) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(secure[0], absl::StrCat("\"protocol\":\"", version(), "\""))) << secure[0];
  EXPECT_EQ(server.Wait(kTimeout), 0) << server.out() << server.err();
  EXPECT_TRUE(absl::StrContains(server.out(), "ping with a key log")) << server.out();
  ExpectSameLines();
}

INSTANTIATE_TEST_SUITE_P(All, TlsctlKeylogTest,
                         ::testing::Combine(::testing::Values(std::string("TLSv1.2"), std::string("TLSv1.3")),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return absl::StrCat(std::get<0>(info.param) == "TLSv1.2" ? "Tls12" : "Tls13",
                                               std::get<1>(info.param) ? "Env" : "Flag");
                         });

TEST_F(TlsctlTest, RenegotiationIsAllowedUpToTheLimit) {
  Subprocess server;
  int port = StartServe(server, {"--reneg-limit", "1"});
  ASSERT_GT(port, 0);
  // openssl s_client renegotiates when a line starts with R (TLS 1.2).
  Subprocess client;
  StartSClient(client, port, {"-CAfile", CacheCert(), "-servername", "localhost", "-tls1_2"});
  ASSERT_TRUE(client.WaitForLine("Verify return code: 0 (ok)", kTimeout).ok()) << client.out();
  ASSERT_TRUE(client.WriteStdin("R\n").ok());
  absl::StatusOr<std::string> once = server.WaitForLine("\"event\":\"renegotiated\"", kTimeout);
  ASSERT_TRUE(once.ok()) << once.status();
  EXPECT_TRUE(absl::StrContains(*once, "\"id\":1")) << *once;
  ASSERT_TRUE(client.WriteStdin("R\n").ok());  // one past the limit
  absl::StatusOr<std::string> attack = server.WaitForLine("\"event\":\"error\"", kTimeout);
  ASSERT_TRUE(attack.ok()) << attack.status();
  EXPECT_TRUE(absl::StrContains(*attack, "\"code\":\"ERR_TLS_SESSION_ATTACK\"")) << *attack;
  EXPECT_TRUE(absl::StrContains(*attack, "\"id\":1")) << *attack;
  client.CloseStdin();
  client.Wait(kTimeout);
  EXPECT_TRUE(server.WaitForLine("\"event\":\"close\",\"id\":1", kTimeout).ok());

  // tlsctl connect --renegotiate on a fresh connection (its own count).
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--max-version", "TLSv1.2",
                         "--renegotiate", "--send", "after"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(Lines(r.out, "{\"event\":\"renegotiated\",\"protocol\":\"TLSv1.2\"}").size(), 1u) << r.out;
  EXPECT_EQ(Lines(r.out, "\"data\":\"after\"").size(), 1u) << r.out;
  absl::StatusOr<std::string> second = server.WaitForLine("\"event\":\"renegotiated\"", kTimeout);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(absl::StrContains(*second, "\"id\":2")) << *second;
}

TEST_F(TlsctlTest, ConnectUpdatesKeysAndStillEchoes) {
  Subprocess server;
  int port = StartServe(server, {});
  ASSERT_GT(port, 0);
  Outcome r = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--key-update", "--send",
                         "after the update"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(Lines(r.out, "{\"event\":\"keyUpdate\",\"requestPeer\":true}").size(), 1u) << r.out;
  EXPECT_EQ(Lines(r.out, "\"data\":\"after the update\"").size(), 1u) << r.out;
  // Renegotiation does not exist in TLS 1.3: an error line, exit 1.
  Outcome reneg = RunTlsctl({"connect", "--port", absl::StrCat(port), "--ca", CacheCert(), "--renegotiate"});
  EXPECT_EQ(reneg.code, 1) << reneg.out;
  EXPECT_EQ(Lines(reneg.out, "\"event\":\"error\"").size(), 1u) << reneg.out;
}

TEST_F(TlsctlTest, GnutlsAndNodeClientsTalkToServe) {
  Subprocess server;
  int port = StartServe(server, {});
  ASSERT_GT(port, 0);
  {
    Subprocess gnutls;
    ASSERT_TRUE(gnutls
                    .Start({"gnutls-cli", "--x509cafile", CacheCert(), "--sni-hostname", "localhost",
                            "--verify-hostname", "localhost", "-p", absl::StrCat(port), "127.0.0.1"})
                    .ok());
    ASSERT_TRUE(gnutls.WaitForLine("Handshake was completed", kTimeout).ok()) << gnutls.out() << gnutls.err();
    ASSERT_TRUE(gnutls.WriteStdin("ping from gnutls\n").ok());
    EXPECT_TRUE(gnutls.WaitForLine("ping from gnutls", kTimeout).ok()) << gnutls.out();
    gnutls.CloseStdin();
    gnutls.Wait(kTimeout);
    absl::StatusOr<std::string> secure = server.WaitForLine("\"event\":\"secureConnection\"", kTimeout);
    ASSERT_TRUE(secure.ok()) << secure.status();
    EXPECT_TRUE(absl::StrContains(*secure, "\"servername\":\"localhost\"")) << *secure;
    EXPECT_TRUE(server.WaitForLine("\"event\":\"close\",\"id\":1", kTimeout).ok());
  }
  Subprocess node;
  ASSERT_TRUE(node.Start({"node", "-e",
                          "const tls = require('tls'), fs = require('fs');\n"
                          "const s = tls.connect({host: '127.0.0.1', port: +process.argv[1], servername: 'localhost',\n"
                          "  ca: fs.readFileSync(process.argv[2])}, () => s.write('ping'));\n"
                          "s.on('data', d => { console.log(s.getProtocol(), s.authorized, String(d)); s.end(); });\n"
                          "s.on('error', e => { console.log('error', e.code); process.exit(1); });\n",
                          absl::StrCat(port), CacheCert()})
                  .ok());
  EXPECT_EQ(node.Wait(kTimeout), 0) << node.out() << node.err();
  EXPECT_TRUE(absl::StrContains(node.out(), "TLSv1.3 true ping")) << node.out();
  absl::StatusOr<std::string> secure = server.WaitForLine("\"event\":\"secureConnection\"", kTimeout);
  ASSERT_TRUE(secure.ok()) << secure.status();
  EXPECT_TRUE(absl::StrContains(*secure, "\"id\":2")) << *secure;
  EXPECT_TRUE(server.WaitForLine("\"event\":\"close\",\"id\":2", kTimeout).ok());
}

// serve --control: the served listener is the service's l1; tlsctl call
// reads its stats and connections and lists the methods.
TEST_F(TlsctlTest, CallReadsServeControlStatsAndConnections) {
  // TEST_TMPDIR can be longer than a unix socket path may be.
  char dir[] = "/tmp/tlsctl-control-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = absl::StrCat(dir, "/ctl.sock");
  std::string address = "unix:" + path;
  Subprocess server;
  int port = StartServe(server, {"--control", address, "--key", TestFilePath("server-rsa-key.pem"), "--cert",
                                 TestFilePath("server-rsa-chain.pem")});
  ASSERT_GT(port, 0) << server.err();
  ASSERT_TRUE(server.WaitForLine("control: listening on " + address, kTimeout).ok()) << server.err();
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  Subprocess client;
  StartSClient(client, port, {"-CAfile", TestFilePath("ca1.pem"), "-servername", "localhost"});
  ASSERT_TRUE(client.WriteStdin("ping through the service\n").ok());
  ASSERT_TRUE(client.WaitForLine("ping through the service", kTimeout).ok()) << client.err();

  Outcome stats = RunTlsctl({"call", "--control", address, "GetStats", "{}"});
  EXPECT_EQ(stats.code, 0) << stats.err;
  EXPECT_TRUE(absl::StartsWith(stats.out, "{\"listeners\":[{\"listenerId\":\"l1\",\"active\":1,\"total\":\"1\""))
      << stats.out;
  EXPECT_TRUE(absl::StrContains(stats.out, "\"contexts\":1,\"connections\":1")) << stats.out;

  Outcome conns = RunTlsctl({"call", "--control", address, "ListConnections", "{\"listenerId\":\"l1\"}"});
  EXPECT_EQ(conns.code, 0) << conns.err;
  EXPECT_EQ(std::count(conns.out.begin(), conns.out.end(), '\n'), 1) << conns.out;
  EXPECT_TRUE(absl::StartsWith(conns.out, "{\"connections\":[{")) << conns.out;
  EXPECT_TRUE(absl::StrContains(conns.out, "\"listenerId\":\"l1\"")) << conns.out;
  EXPECT_TRUE(absl::StrContains(conns.out, "\"protocol\":\"TLSv1.3\"")) << conns.out;

  Outcome list = RunTlsctl({"call", "--control", address, "--list"});
  EXPECT_EQ(list.code, 0) << list.err;
  EXPECT_TRUE(absl::StrContains(
      list.out, "tlsengine.control.v1.TlsControl.GetStats(GetStatsRequest) returns (GetStatsResponse)\n"))
      << list.out;
  EXPECT_TRUE(absl::StrContains(list.out, "TlsControl.WatchEvents(WatchEventsRequest) returns (stream ControlEvent)"))
      << list.out;

  Outcome unknown = RunTlsctl({"call", "--control", address, "GetConnection", "{\"connectionId\":\"c999\"}"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_TRUE(absl::StartsWith(unknown.err, "error: NOT_FOUND: ")) << unknown.err;

  client.CloseStdin();
  client.Wait(kTimeout);
  server.Kill();
  unlink(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace tlsengine

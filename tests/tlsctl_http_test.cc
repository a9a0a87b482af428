// tlsctl serve as a hostile or careless client meets it: a real
// `tlsctl serve` process, driven over TLS by python3's ssl module, with the
// server's memory read from /proc/PID/status. Request bodies are discarded
// as they arrive and capped (413), bad lengths get 400, a client that
// pipelines without reading stops being read (backpressure), and silent
// connections are ended by --idle-timeout.
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"

namespace tlsengine {
namespace {

using testing::Subprocess;

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

// Every script starts with this: PORT and PID (the server's) from argv,
// conn() for a handshaked TLS socket, kb(FIELD) for /proc/PID/status, and
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
def kb(field):
    for line in open("/proc/%d/status" % PID):
        if line.startswith(field + ":"):
            return int(line.split()[1])
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

class TlsctlHttpTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { setenv("XDG_CACHE_HOME", (TmpDir() + "/cache").c_str(), 1); }

  // Starts `tlsctl serve --port 0 ARGS`; the port it listens on.
  int StartServe(std::vector<std::string> args) {
    args.insert(args.begin(), {Tlsctl(), "serve", "--port", "0"});
    absl::Status s = server_.Start(args);
    EXPECT_TRUE(s.ok()) << s;
    absl::StatusOr<std::string> line = server_.WaitForLine("\"event\":\"listening\"", kTimeout);
    EXPECT_TRUE(line.ok()) << line.status() << server_.err();
    if (!line.ok()) return -1;
    size_t at = line->find("\"port\":");
    return at == std::string::npos ? -1 : std::atoi(line->c_str() + at + 7);
  }

  // Runs kPrelude + `script` against the server; its stdout, after checking
  // that it exited 0.
  std::string RunPython(int port, const std::string& script) {
    Subprocess py;
    absl::Status s = py.Start({"python3", "-c", absl::StrCat(kPrelude, script), absl::StrCat(port),
                               absl::StrCat(server_.pid())});
    EXPECT_TRUE(s.ok()) << s;
    if (!s.ok()) return "";
    EXPECT_EQ(py.Wait(kTimeout), 0) << py.out() << py.err();
    std::cout << py.out();  // the measurements, for the test log
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

TEST_F(TlsctlHttpTest, OversizedBodyGets413AtTheHeadAndIsNotBuffered) {
  int port = StartServe({"--mode", "http"});
  ASSERT_GT(port, 0);
  std::string out = RunPython(port, R"py(
before = kb("VmHWM")
s = conn()
s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n" + b"x" * 65536)
print("status:", head(s))
sent, chunk = 65536, b"x" * 65536
try:
    s.settimeout(3)
    while sent < 64 << 20:
        s.sendall(chunk)
        sent += len(chunk)
except (OSError, ssl.SSLError):
    pass
print("closed:", closed_within(s, 5))
print("growth_kb:", kb("VmHWM") - before)
)py");
  EXPECT_EQ(Value(out, "status"), "HTTP/1.1 413 Content Too Large") << out;
  EXPECT_EQ(Value(out, "closed"), "closed") << out;
  EXPECT_LT(IntValue(out, "growth_kb"), kGrowthBoundKb) << out;
}

TEST_F(TlsctlHttpTest, BodyUnderTheCapIsDiscardedAsItArrives) {
  int port = StartServe({"--mode", "http", "--max-body-size", "67108864"});
  ASSERT_GT(port, 0);
  std::string out = RunPython(port, R"py(
before = kb("VmHWM")
s = conn(timeout=10)
s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 67108864\r\n\r\n")
chunk = b"x" * 65536
for _ in range(1024):
    s.sendall(chunk)
s.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
print("growth_kb:", kb("VmHWM") - before)
print("answers:", answers(s, 2))
)py");
  EXPECT_EQ(Value(out, "answers"), "200 200") << "the POST and the GET after its body: " << out;
  EXPECT_LT(IntValue(out, "growth_kb"), kGrowthBoundKb) << out;
}

TEST_F(TlsctlHttpTest, MalformedOrHugeLengthsGet400AndChunkedGets501) {
  int port = StartServe({"--mode", "http"});
  ASSERT_GT(port, 0);
  // Each case on a new connection: "NAME|HEADERS" with \n between header lines.
  std::string out = RunPython(port, R"py(
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

TEST_F(TlsctlHttpTest, PipelinerThatNeverReadsIsNotReadAndOthersAreServed) {
  int port = StartServe({"--mode", "http"});
  ASSERT_GT(port, 0);
  std::string out = RunPython(port, R"py(
before = kb("VmHWM")
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
print("growth_kb:", kb("VmHWM") - before)
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

TEST_F(TlsctlHttpTest, IdleTimeoutFreesTheSlotsOfSilentClients) {
  int port = StartServe({"--mode", "http", "--max-connections", "2", "--idle-timeout", "1000"});
  ASSERT_GT(port, 0);
  std::string out = RunPython(port, R"py(
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

TEST_F(TlsctlHttpTest, IdleTimeoutEndsASilentEchoClientButNotAnActiveOne) {
  int port = StartServe({"--idle-timeout", "1000"});
  ASSERT_GT(port, 0);
  std::string out = RunPython(port, R"py(
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

}  // namespace
}  // namespace tlsengine

// The control plane's trust boundaries (DESIGN.md "Trust boundaries of the
// control plane"), driven as the other local user would: the test runs as
// root and plays the attacker as uid 65534 (setpriv), with the built tlsctl
// and python3 as that user's programs.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/grpc/call.h"
#include "adapters/grpc/controller.h"
#include "adapters/grpc/daemon.h"
#include "core/errors.h"
#include "gtest/gtest.h"
#include "tests/testlib/peers.h"
#include "tests/testlib/testlib.h"

namespace tlsengine {
namespace control {
namespace {

using tlsengine::testing::Cert;
using tlsengine::testing::Chain;
using tlsengine::testing::Key;
using tlsengine::testing::Subprocess;

constexpr int kNobody = 65534;
constexpr absl::Duration kTimeout = absl::Seconds(10);

// A new directory under /tmp (short enough for socket paths) with `mode`
// and owner `uid`.
std::string MakeDir(mode_t mode, uid_t uid = 0) {
  char tmpl[] = "/tmp/tlsctl-trust-XXXXXX";
  const char* d = mkdtemp(tmpl);
  EXPECT_NE(d, nullptr);
  if (d == nullptr) return "/nonexistent";
  EXPECT_EQ(chown(d, uid, uid), 0);
  EXPECT_EQ(chmod(d, mode), 0);
  return d;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary) << data;
  EXPECT_EQ(chmod(path.c_str(), mode), 0);
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// argv as uid/gid 65534 with no supplementary groups.
std::vector<std::string> AsNobody(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
  return argv;
}

struct Outcome {
  int code = -1;
  std::string out, err;
};

Outcome RunToEnd(const std::vector<std::string>& argv) {
  Subprocess p;
  Outcome r;
  absl::Status s = p.Start(argv);
  EXPECT_TRUE(s.ok()) << s;
  if (!s.ok()) return r;
  p.CloseStdin();
  r.code = p.Wait(kTimeout);
  r.out = p.out();
  r.err = p.err();
  return r;
}

// The attacker's shell command, run to completion; must succeed.
void Nobody(const std::string& sh) {
  Outcome r = RunToEnd(AsNobody({"/bin/sh", "-c", sh}));
  EXPECT_EQ(r.code, 0) << sh << ": " << r.err;
}

// tlsctl, copied into `dir` where uid 65534 can run it (bazel's runfiles
// are under root's 0700 home).
std::string CopyTlsctlTo(const std::string& dir) {
  std::string to = dir + "/tlsctl";
  char cwd[4096];
  EXPECT_NE(getcwd(cwd, sizeof cwd), nullptr);
  std::ifstream in(absl::StrCat(cwd, "/examples/tlsctl/tlsctl"), std::ios::binary);
  std::ofstream(to, std::ios::binary) << in.rdbuf();
  EXPECT_EQ(chmod(to.c_str(), 0755), 0);
  return to;
}

// Sets or unsets an environment variable for one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

// --------------------------------------------- the default socket directory

TEST(DefaultDirectoryTest, ADirectoryAnotherUserMadeFirstIsRefused) {
  // $TMPDIR as /tmp is: everyone may create in it.
  std::string tmp = MakeDir(01777);
  ScopedEnv tmpdir("TMPDIR", tmp.c_str());
  ScopedEnv runtime("XDG_RUNTIME_DIR", nullptr);
  std::string dir = absl::StrCat(tmp, "/tlsctl-", geteuid());
  ASSERT_EQ(DefaultControlAddress(), absl::StrCat("unix:", dir, "/control.sock"));

  // The attacker makes it first, open to all, to put a socket of theirs in it.
  Nobody(absl::StrCat("mkdir ", dir, " && chmod 0777 ", dir));
  absl::StatusOr<std::unique_ptr<ControlServer>> s = ControlServer::Start("");
  ASSERT_EQ(s.status().code(), absl::StatusCode::kPermissionDenied) << s.status();
  EXPECT_EQ(NodeCode(s.status()), "EACCES");
  EXPECT_TRUE(absl::StrContains(s.status().message(), "belongs to uid 65534")) << s.status();
  EXPECT_FALSE(Exists(dir + "/control.sock"));
  ASSERT_EQ(rmdir(dir.c_str()), 0);

  // Ours, but open to others; a symlink to a private directory of ours.
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0755), 0);
  s = ControlServer::Start("");
  ASSERT_EQ(s.status().code(), absl::StatusCode::kPermissionDenied) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), "has mode 0755, not 0700")) << s.status();
  ASSERT_EQ(rmdir(dir.c_str()), 0);
  std::string elsewhere = MakeDir(0700);
  ASSERT_EQ(symlink(elsewhere.c_str(), dir.c_str()), 0);
  s = ControlServer::Start("");
  ASSERT_EQ(s.status().code(), absl::StatusCode::kPermissionDenied) << s.status();
  EXPECT_TRUE(absl::StrContains(s.status().message(), "is a symlink")) << s.status();
  ASSERT_EQ(unlink(dir.c_str()), 0);

  // Made here, under a umask that would leave it open: 0700, and served.
  mode_t old_mask = umask(0);
  s = ControlServer::Start("");
  umask(old_mask);
  ASSERT_TRUE(s.ok()) << s.status();
  struct stat st {};
  ASSERT_EQ(lstat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ((*s)->address(), absl::StrCat("unix:", dir, "/control.sock"));
  (*s)->Shutdown();
  EXPECT_FALSE(Exists(dir + "/control.sock"));
  EXPECT_EQ(rmdir(dir.c_str()), 0);
  EXPECT_EQ(rmdir(elsewhere.c_str()), 0);
  EXPECT_EQ(rmdir(tmp.c_str()), 0);
}

// A socket another user serves, where the victim expects the daemon: the
// victim's call fails before it sends a byte of its key.
TEST(PeerCheckTest, CallSendsNothingToASocketServedByAnotherUser) {
  std::string dir = MakeDir(0777);
  std::string path = dir + "/control.sock";
  Subprocess fake;
  ASSERT_TRUE(fake.Start(AsNobody({"/usr/bin/python3", "-c",
                                   "import socket, sys\n"
                                   "s = socket.socket(socket.AF_UNIX)\n"
                                   "s.bind(sys.argv[1]); s.listen(1)\n"
                                   "print('ready', flush=True)\n"
                                   "c, _ = s.accept(); c.settimeout(5); n = 0\n"
                                   "try:\n"
                                   "  while True:\n"
                                   "    d = c.recv(65536)\n"
                                   "    if not d: break\n"
                                   "    n += len(d)\n"
                                   "except socket.timeout: pass\n"
                                   "print('received', n, flush=True)\n",
                                   path}))
                  .ok());
  ASSERT_TRUE(fake.WaitForLine("ready", kTimeout).ok()) << fake.err();

  ClientOptions o;
  o.address = "unix:" + path;
  o.timeout = absl::Seconds(2);
  absl::Status s = CallMethod(o, "CreateContext", R"({"key":["-----BEGIN PRIVATE KEY----- secret"],"passphrase":"pw"})",
                              [](const std::string&) {});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "is served by uid 65534")) << s;
  absl::StatusOr<std::string> got = fake.WaitForLine("received", kTimeout);
  ASSERT_TRUE(got.ok()) << got.status() << fake.err();
  EXPECT_EQ(*got, "received 0");
  EXPECT_EQ(fake.Wait(kTimeout), 0);
  EXPECT_EQ(unlink(path.c_str()), 0);
  EXPECT_EQ(rmdir(dir.c_str()), 0);
}

// ------------------------------------------------------------ TCP control

TEST(TcpControlTest, NeedsATokenAndAnotherUserWithoutItIsUnauthenticated) {
  // Plain TCP, loopback or not, is refused at start.
  absl::StatusOr<std::unique_ptr<ControlServer>> plain = ControlServer::Start("127.0.0.1:0");
  ASSERT_EQ(plain.status().code(), absl::StatusCode::kInvalidArgument) << plain.status();
  EXPECT_TRUE(absl::StrContains(plain.status().message(), "--control-token-file")) << plain.status();

  std::string mine = MakeDir(0700);
  DaemonOptions d;
  d.control_token_file = mine + "/control.token";
  absl::StatusOr<std::unique_ptr<ControlServer>> s = ControlServer::Start("127.0.0.1:0", d);
  ASSERT_TRUE(s.ok()) << s.status();
  struct stat st {};
  ASSERT_EQ(lstat(d.control_token_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(ReadAll(d.control_token_file).size(), 65u);  // 64 hex digits and a newline

  // A key only root can read, which the attacker wants loaded and served.
  std::string key = mine + "/root-only-key.pem";
  WriteFile(key, Key("server-rsa"), 0600);
  std::string request = absl::StrCat(R"({"keyFile":[")", key, R"("]})");

  std::string shared = MakeDir(0755);
  const std::string tlsctl = CopyTlsctlTo(shared);
  std::string wrong = shared + "/wrong.token";
  WriteFile(wrong, std::string(64, 'a') + "\n", 0600);
  ASSERT_EQ(chown(wrong.c_str(), kNobody, kNobody), 0);
  for (const std::vector<std::string>& token : std::vector<std::vector<std::string>>{
           {}, {"--control-token-file", wrong}}) {
    std::vector<std::string> argv = {tlsctl, "call", "--control", (*s)->address()};
    argv.insert(argv.end(), token.begin(), token.end());
    argv.insert(argv.end(), {"CreateContext", request});
    Outcome r = RunToEnd(AsNobody(argv));
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "error: UNAUTHENTICATED: ")) << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "[ERR_TLS_CONTROL_TOKEN]")) << r.err;
  }
  // The real token is not theirs to read.
  Outcome r = RunToEnd(AsNobody({tlsctl, "call", "--control", (*s)->address(), "--control-token-file",
                            d.control_token_file, "GetStats", "{}"}));
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "cannot read")) << r.err;

  // Nothing they sent was done; the token's owner is served.
  ClientOptions c;
  c.address = (*s)->address();
  c.token_file = d.control_token_file;
  std::vector<std::string> lines;
  absl::Status stats = CallMethod(c, "GetStats", "{}", [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(stats.ok()) << stats;
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(absl::StrContains(lines[0], "\"contexts\":0")) << lines[0];

  // A token file others could have written is not sent.
  ClientOptions theirs = c;
  theirs.token_file = wrong;
  ASSERT_EQ(chown(wrong.c_str(), 1, 1), 0);
  EXPECT_EQ(CallMethod(theirs, "GetStats", "{}", [](const std::string&) {}).code(),
            absl::StatusCode::kPermissionDenied);

  (*s)->Shutdown();
  EXPECT_FALSE(Exists(d.control_token_file));

  // The daemon writes its token only into a directory no one else can
  // write to, and does not write through a file another user put there.
  std::string open_dir = shared + "-open";
  ASSERT_EQ(mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0777), 0);
  d.control_token_file = open_dir + "/t";
  EXPECT_EQ(ControlServer::Start("127.0.0.1:0", d).status().code(), absl::StatusCode::kPermissionDenied);
  d.control_token_file = shared + "/planted";
  WriteFile(d.control_token_file, "x", 0644);
  ASSERT_EQ(chown(d.control_token_file.c_str(), kNobody, kNobody), 0);
  EXPECT_EQ(ControlServer::Start("127.0.0.1:0", d).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReadAll(d.control_token_file), "x");

  for (const std::string& f : {key, d.control_token_file, wrong, tlsctl}) EXPECT_EQ(unlink(f.c_str()), 0) << f;
  for (const std::string& dir : {open_dir, shared, mine}) EXPECT_EQ(rmdir(dir.c_str()), 0) << dir;
}

// The daemon holds 127.0.0.1:PORT alone, but "localhost" resolves (for
// gRPC's resolver) to ::1 as well, where another user may listen on the
// same port: a call to localhost:PORT handed them the token (and the
// request), which they then used on 127.0.0.1:PORT.
TEST(TcpControlTest, TheTokenGoesOnlyToANumericLoopbackAddress) {
  std::string mine = MakeDir(0700);
  DaemonOptions d;
  d.control_token_file = mine + "/control.token";
  absl::StatusOr<std::unique_ptr<ControlServer>> s = ControlServer::Start("127.0.0.1:0", d);
  ASSERT_TRUE(s.ok()) << s.status();
  std::string port = (*s)->address().substr((*s)->address().rfind(':') + 1);

  Subprocess fake;
  ASSERT_TRUE(fake.Start(AsNobody({"/usr/bin/python3", "-c",
                                   "import socket, sys, time\n"
                                   "s = socket.socket(socket.AF_INET6)\n"
                                   "s.bind(('::1', int(sys.argv[1]))); s.listen(5); s.settimeout(3)\n"
                                   "print('ready', flush=True)\n"
                                   "try:\n"
                                   "  c, _ = s.accept(); c.settimeout(2)\n"
                                   "  c.sendall(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))  # HTTP/2 SETTINGS\n"
                                   "  got = b''\n"
                                   "  try:\n"
                                   "    while b'Bearer' not in got:\n"
                                   "      d = c.recv(65536)\n"
                                   "      if not d: break\n"
                                   "      got += d\n"
                                   "  except socket.timeout: pass\n"
                                   "  print('token' if b'Bearer' in got else 'no token', flush=True)\n"
                                   "except socket.timeout:\n"
                                   "  print('no connection', flush=True)\n",
                                   port}))
                  .ok());
  ASSERT_TRUE(fake.WaitForLine("ready", kTimeout).ok()) << fake.err();

  ClientOptions c;
  c.address = absl::StrCat("localhost:", port);
  c.token_file = d.control_token_file;
  c.timeout = absl::Seconds(2);
  absl::Status called = CallMethod(c, "GetStats", "{}", [](const std::string&) {});
  EXPECT_EQ(called.code(), absl::StatusCode::kInvalidArgument) << called;
  EXPECT_TRUE(absl::StrContains(called.message(), "nothing was sent")) << called;
  EXPECT_EQ(fake.Wait(kTimeout), 0) << fake.err();
  EXPECT_TRUE(absl::StrContains(fake.out(), "no connection")) << fake.out();
  // The numeric address is the daemon's.
  c.address = (*s)->address();
  EXPECT_TRUE(CallMethod(c, "GetStats", "{}", [](const std::string&) {}).ok());
  (*s)->Shutdown();

  // Nor does the daemon offer a name to call it by.
  d.control_token_file = mine + "/other.token";
  absl::StatusOr<std::unique_ptr<ControlServer>> named = ControlServer::Start("localhost:0", d);
  EXPECT_EQ(named.status().code(), absl::StatusCode::kInvalidArgument) << named.status();
  EXPECT_FALSE(Exists(d.control_token_file));
  if (named.ok()) (*named)->Shutdown();
  EXPECT_EQ(rmdir(mine.c_str()), 0);
}

// --------------------------------------------- Listen path= / CloseListener

TEST(ListenPathTest, CloseListenerUnlinksOnlyTheSocketItBound) {
  absl::StatusOr<std::unique_ptr<Controller>> c = Controller::Create(ControllerOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  v1::CreateContextRequest ctx;
  ctx.add_cert(Chain("server-rsa"));
  ctx.add_key(Key("server-rsa"));
  absl::StatusOr<v1::CreateContextResponse> made = (*c)->CreateContext(ctx);
  ASSERT_TRUE(made.ok()) << made.status();

  // The attacker's directory; the victim's file, where they would like the
  // daemon to unlink.
  std::string theirs = MakeDir(0755, kNobody);
  std::string victim_dir = MakeDir(0755);
  std::string victim = victim_dir + "/s.sock";
  WriteFile(victim, "precious");
  auto listen_close = [&](const std::string& sub, const std::string& swap) {
    Nobody(absl::StrCat("mkdir ", theirs, "/", sub));
    v1::ListenRequest l;
    l.set_context_id(made->context_id());
    l.set_path(absl::StrCat(theirs, "/", sub, "/s.sock"));
    absl::StatusOr<v1::ListenResponse> listening = (*c)->Listen(l);
    ASSERT_TRUE(listening.ok()) << listening.status();
    Nobody(swap);
    v1::CloseListenerRequest close;
    close.set_listener_id(listening->listener_id());
    absl::StatusOr<v1::CloseListenerResponse> closed = (*c)->CloseListener(close);
    ASSERT_TRUE(closed.ok()) << closed.status();
  };
  // The directory swapped for a symlink to the victim's.
  ASSERT_NO_FATAL_FAILURE(listen_close(
      "a", absl::StrCat("cd ", theirs, " && mv a a.old && ln -s ", victim_dir, " a")));
  EXPECT_EQ(ReadAll(victim), "precious");
  EXPECT_FALSE(Exists(theirs + "/a.old/s.sock"));  // the socket it bound is gone
  // The socket's name given to another file.
  ASSERT_NO_FATAL_FAILURE(listen_close("b", absl::StrCat("cd ", theirs, "/b && mv s.sock moved && echo x > s.sock")));
  EXPECT_EQ(ReadAll(theirs + "/b/s.sock"), "x\n");

  (*c)->Shutdown();
  Nobody(absl::StrCat("rm -rf ", theirs, "/a ", theirs, "/a.old ", theirs, "/b"));
  EXPECT_EQ(rmdir(theirs.c_str()), 0);
  EXPECT_EQ(unlink(victim.c_str()), 0);
  EXPECT_EQ(rmdir(victim_dir.c_str()), 0);
}

// ------------------------------------------------- what CreateContext reads

TEST(CreateContextFilesTest, FilesAndBytesReadPerRequestAreCapped) {
  absl::StatusOr<std::unique_ptr<Controller>> c = Controller::Create(ControllerOptions());
  ASSERT_TRUE(c.ok()) << c.status();
  std::string dir = MakeDir(0700);
  std::string mib = dir + "/1mib";
  WriteFile(mib, std::string(1 << 20, 'A'));
  std::string ca = dir + "/ca.pem";
  WriteFile(ca, Cert("ca1"));

  // The report's request: one 1 MiB file named 1,500 times (it took a daemon
  // to 3.1 GB). Refused before anything is read.
  v1::CreateContextRequest many;
  for (int i = 0; i < 1500; ++i) many.add_key_file(mib);
  absl::StatusOr<v1::CreateContextResponse> r = (*c)->CreateContext(many);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_EQ(NodeCode(r.status()), "ERR_TLS_CONTROL_LIMIT");
  EXPECT_TRUE(absl::StrContains(r.status().message(), "CreateContext names 1500 files (limit 64)")) << r.status();

  // 64 names are allowed, but not 64 MiB: the fifth MiB is not read.
  v1::CreateContextRequest big;
  for (int i = 0; i < 64; ++i) big.add_cert_file(mib);
  r = (*c)->CreateContext(big);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_EQ(NodeCode(r.status()), "ERR_TLS_CONTROL_LIMIT");
  EXPECT_TRUE(absl::StrContains(r.status().message(), "certFile[4]: ")) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "more bytes than one request may read from files (limit 4194304)")) << r.status();

  // The limits count every *File field together.
  v1::CreateContextRequest mixed;
  for (int i = 0; i < 32; ++i) mixed.add_ca_file(ca);
  for (int i = 0; i < 32; ++i) mixed.add_crl_file(ca);
  mixed.set_dhparam_file(ca);
  r = (*c)->CreateContext(mixed);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "names 65 files")) << r.status();

  // At the limit, small files are fine.
  v1::CreateContextRequest ok;
  for (int i = 0; i < 64; ++i) ok.add_ca_file(ca);
  r = (*c)->CreateContext(ok);
  ASSERT_TRUE(r.ok()) << r.status();

  // A file past one field's bound is refused from its size (a sparse 1 GiB
  // file is not read), and a FIFO without waiting for a writer.
  std::string huge = dir + "/huge";
  int fd = open(huge.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, int64_t{1} << 30), 0);
  close(fd);
  std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& path : {huge, fifo}) {
    v1::CreateContextRequest one;
    one.add_ca_file(path);
    r = (*c)->CreateContext(one);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    EXPECT_EQ(NodeCode(r.status()), "ERR_INVALID_ARG_VALUE");
    EXPECT_TRUE(absl::StrContains(r.status().message(),
                                  path == huge ? "is larger than 1048576 bytes" : "is not a regular file"))
        << r.status();
  }
  (*c)->Shutdown();
  for (const std::string& f : {mib, ca, huge, fifo}) EXPECT_EQ(unlink(f.c_str()), 0);
  EXPECT_EQ(rmdir(dir.c_str()), 0);
}

}  // namespace
}  // namespace control
}  // namespace tlsengine

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

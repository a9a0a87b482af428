// tlsctl: the library on the command line, modelled on Node's tls module.
//
//   tlsctl serve                       # TLS echo server on 127.0.0.1:8000
//   tlsctl connect --port 8000 --insecure --send hello
//   tlsctl ciphers
//   tlsctl daemon --control unix:/tmp/ctl.sock      # the gRPC control service
//   tlsctl call --control unix:/tmp/ctl.sock GetStats '{}'
//
// One JSON object per line on stdout; progress and diagnostics on stderr.
#include <cstdio>
#include <string>
#include <vector>

#include "core/secure_context.h"
#include "examples/tlsctl/commands.h"
#include "examples/tlsctl/flags.h"
#include "examples/tlsctl/output.h"

namespace {

using namespace tlsengine::tlsctl;

// --help (kCancelled) prints `help` and exits 0; other errors one line, 2.
template <typename T>
bool Parsed(const absl::StatusOr<T>& r, const std::string& help, int* code) {
  if (r.ok()) return true;
  if (absl::IsCancelled(r.status())) {
    std::fputs(help.c_str(), stdout);
    *code = 0;
  } else {
    Note(r.status().message());
    *code = 2;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::fputs(MainHelp().c_str(), stderr);
    return 2;
  }
  std::string cmd = args[0];
  args.erase(args.begin());
  int code = 0;
  if (cmd == "serve") {
    absl::StatusOr<ServeFlags> f = ParseServeFlags(args);
    return Parsed(f, ServeHelp(), &code) ? RunServe(*f) : code;
  }
  if (cmd == "connect") {
    absl::StatusOr<ConnectFlags> f = ParseConnectFlags(args);
    return Parsed(f, ConnectHelp(), &code) ? RunConnect(*f) : code;
  }
  if (cmd == "daemon") {
    absl::StatusOr<DaemonFlags> f = ParseDaemonFlags(args);
    return Parsed(f, DaemonHelp(), &code) ? RunDaemon(*f) : code;
  }
  if (cmd == "call") {
    for (const std::string& a : args) {
      if (a == "--help" || a == "-h") {
        std::fputs(CallHelp().c_str(), stdout);
        return 0;
      }
    }
    // argv[1] is "call": RunCall's argv[0].
    return RunCall(argc - 1, argv + 1);
  }
  if (cmd == "ciphers") {
    absl::Status s = ParseCiphersFlags(args);
    if (!Parsed(absl::StatusOr<bool>(s.ok() ? absl::StatusOr<bool>(true) : absl::StatusOr<bool>(s)), CiphersHelp(),
                &code)) {
      return code;
    }
    for (const std::string& name : tlsengine::GetCiphers()) std::printf("%s\n", name.c_str());
    return 0;
  }
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(MainHelp().c_str(), stdout);
    return 0;
  }
  Note("unknown command '" + cmd + "' (serve, connect, ciphers, daemon, call; see tlsctl --help)");
  return 2;
}

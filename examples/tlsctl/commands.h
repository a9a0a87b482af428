// tlsctl's subcommands; each returns the process exit status (0 success,
// 1 failure reported as a JSON `error` line, 2 bad flag or file).
#ifndef TLSENGINE_EXAMPLES_TLSCTL_COMMANDS_H_
#define TLSENGINE_EXAMPLES_TLSCTL_COMMANDS_H_

#include "examples/tlsctl/flags.h"

namespace tlsengine {
namespace tlsctl {

// Serves until SIGINT or SIGTERM, then closes every connection gracefully.
// With --control, through the control service (serve.cc).
int RunServe(const ServeFlags& flags);
// Runs the gRPC control service alone until SIGINT or SIGTERM.
int RunDaemon(const DaemonFlags& flags);
// One connection: handshake, send, end, print what comes back.
int RunConnect(const ConnectFlags& flags);
// `call [--control ADDRESS] [--control-cert F --control-key F --control-ca F]
// [--control-token-file F] [--servername NAME] (--list | METHOD [JSON])`,
// argv[0] being "call": one request to the control service (call.cc).
// Prints replies to stdout, errors to stderr ("error: CODE: message");
// returns 0, 2 for usage errors, or 1 for a failed call.
int RunCall(int argc, char** argv);

}  // namespace tlsctl
}  // namespace tlsengine

#endif  // TLSENGINE_EXAMPLES_TLSCTL_COMMANDS_H_

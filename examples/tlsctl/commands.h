// tlsctl's subcommands; each returns the process exit status (0 success,
// 1 failure reported as a JSON `error` line, 2 bad flag or file).
#ifndef TLSENGINE_EXAMPLES_TLSCTL_COMMANDS_H_
#define TLSENGINE_EXAMPLES_TLSCTL_COMMANDS_H_

#include "examples/tlsctl/flags.h"

namespace tlsengine {
namespace tlsctl {

// Serves until SIGINT or SIGTERM, then closes every connection gracefully.
int RunServe(const ServeFlags& flags);
// One connection: handshake, send, end, print what comes back.
int RunConnect(const ConnectFlags& flags);

}  // namespace tlsctl
}  // namespace tlsengine

#endif  // TLSENGINE_EXAMPLES_TLSCTL_COMMANDS_H_

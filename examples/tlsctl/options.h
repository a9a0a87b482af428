// From tlsctl's flags to the library's options: reads every file a flag
// names and builds the SecureContexts once, so a bad file is reported
// before anything listens or connects.
//
//   absl::StatusOr<ServerSetup> s = BuildServer(flags, LocalhostIdentity);
//   if (!s.ok()) { /* one line naming the flag; exit 2 */ }
//   conn_opts = s->connection;  // per accepted connection
#ifndef TLSENGINE_EXAMPLES_TLSCTL_OPTIONS_H_
#define TLSENGINE_EXAMPLES_TLSCTL_OPTIONS_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/secure_context.h"
#include "core/self_signed.h"
#include "core/tls_connection.h"
#include "examples/tlsctl/flags.h"

namespace tlsengine {
namespace tlsctl {

// Reads `path` for `--flag`. A relative path is taken from where the user
// ran the command (BUILD_WORKING_DIRECTORY under `bazel run`).
// kInvalidArgument "--flag: cannot read 'path': <strerror>".
absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path);
// The path as ReadFlagFile would open it (for files tlsctl writes).
std::string ResolvePath(const std::string& path);

struct ServerSetup {
  SecureContextOptions context_options;  // of the default context
  ConnectionOptions connection;          // for each accepted connection
  std::string ocsp_response;             // DER to staple; "" for none
  std::string keylog_path;               // --keylog or $SSLKEYLOGFILE; "" for none
  // The --sni contexts by name, in flag order, for Server::AddContext
  // (connection.sni_contexts holds the same, checked, for engine users).
  std::vector<std::pair<std::string, std::shared_ptr<const SecureContext>>> sni;
};

// The identity used when no --key/--cert/--pfx is given.
using DefaultIdentity = std::function<absl::StatusOr<GeneratedIdentity>()>;

// kInvalidArgument naming the flag for an unreadable file or an option the
// library refuses (bad PEM, wrong passphrase, unknown cipher, ...).
absl::StatusOr<ServerSetup> BuildServer(const ServeFlags& flags, const DefaultIdentity& default_identity);

struct ClientSetup {
  ConnectionOptions connection;
  std::string keylog_path;
  std::string session_out_path;  // resolved; "" for none
};
absl::StatusOr<ClientSetup> BuildClient(const ConnectFlags& flags);

}  // namespace tlsctl
}  // namespace tlsengine

#endif  // TLSENGINE_EXAMPLES_TLSCTL_OPTIONS_H_

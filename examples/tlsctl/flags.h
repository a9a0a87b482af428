// tlsctl's command line: one table of flags per subcommand, from which both
// the parser and the complete --help are made, so they cannot disagree.
//
//   absl::StatusOr<ServeFlags> f = ParseServeFlags({"--port", "0", "--mode", "http"});
//   if (!f.ok()) { std::cerr << "tlsctl: " << f.status().message() << "\n"; return 2; }
#ifndef TLSENGINE_EXAMPLES_TLSCTL_FLAGS_H_
#define TLSENGINE_EXAMPLES_TLSCTL_FLAGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tlsengine {
namespace tlsctl {

// Flags that name files keep the path; option building (options.h) reads them.
struct TlsFlags {
  std::vector<std::string> key, cert, ca;
  std::string pfx, passphrase, crl;
  std::string ciphers, ciphersuites, ecdh_curve, dhparam;
  std::string min_version, max_version;  // "" = the library's defaults
  std::vector<std::string> alpn, npn;
  std::string keylog;  // file to append NSS key-log lines to
};

struct SniFlag {
  std::string name, key, cert;
};

// kHold (with --control only): plaintext is kept for the service's Read/Write.
enum class ServeMode { kEcho, kHttp, kHold };

// The gRPC control service's address and TLS (adapters/grpc/daemon.h).
struct ControlFlags {
  std::string address;  // "" = the library's default (a mode-0600 unix socket)
  std::string cert, key, ca;  // TLS with client certificates: all three or none
  std::string token_file;     // TCP without TLS: where the service writes its token
};

// serve's idle timeout when --idle-timeout is not given (nginx's
// keepalive_timeout).
constexpr int64_t kDefaultIdleTimeoutMs = 75000;

struct ServeFlags {
  TlsFlags tls;
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string unix_path;
  bool honor_cipher_order = false;
  bool request_cert = false;
  bool reject_unauthorized = false;
  std::vector<SniFlag> sni;
  int64_t handshake_timeout_ms = 120000;
  int64_t session_timeout_s = 300;
  std::string ticket_keys;  // file: one or more 48-byte keys
  std::string session_id_context;
  std::string ocsp_response;  // file: DER
  int64_t max_connections = 0;  // 0: no limit
  // Handshaked connections silent this long are ended; 0: never. Unset:
  // kDefaultIdleTimeoutMs (not available with --control).
  std::optional<int64_t> idle_timeout_ms;
  int64_t max_body_size = 1 << 20;  // --mode http: larger request bodies get 413
  std::optional<int64_t> reneg_limit;  // set: client renegotiation allowed
  int64_t reneg_window_s = 600;
  ServeMode mode = ServeMode::kEcho;
  int64_t loops = 1;
  // --control: the listener is made through the control service, which
  // runs alongside (its ListConnections, ReplaceContext, ... see it).
  bool controlled = false;
  ControlFlags control;
};

struct DaemonFlags {
  ControlFlags control;
};

struct ConnectFlags {
  TlsFlags tls;
  std::string host = "127.0.0.1";
  int port = 0;  // required unless unix_path
  std::string unix_path;
  std::string servername;
  bool insecure = false;
  std::string session_in, session_out;
  bool request_ocsp = false;
  std::optional<std::string> send;
  bool read_stdin = false;
  bool renegotiate = false;
  bool key_update = false;
  int64_t max_send_fragment = 0;  // 0: the default (16384)
  int64_t handshake_timeout_ms = 120000;
  int64_t close_timeout_ms = 5000;  // silence allowed after our close_notify
  bool allow_truncation = false;    // a TCP EOF without close_notify is not an error
};

// Each parser takes the arguments after the subcommand. kInvalidArgument
// with a one-line message naming the flag for an unknown flag, a missing or
// malformed value, or a conflict. kCancelled when --help was given (the
// caller prints the help text and exits 0).
absl::StatusOr<ServeFlags> ParseServeFlags(const std::vector<std::string>& args);
absl::StatusOr<ConnectFlags> ParseConnectFlags(const std::vector<std::string>& args);
absl::Status ParseCiphersFlags(const std::vector<std::string>& args);
absl::StatusOr<DaemonFlags> ParseDaemonFlags(const std::vector<std::string>& args);

// Complete help, one line per flag.
std::string ServeHelp();
std::string ConnectHelp();
std::string CiphersHelp();
std::string DaemonHelp();
// `tlsctl call`'s flags are parsed by RunCall (call.cc).
std::string CallHelp();
std::string MainHelp();

}  // namespace tlsctl
}  // namespace tlsengine

#endif  // TLSENGINE_EXAMPLES_TLSCTL_FLAGS_H_

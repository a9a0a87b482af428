#include "examples/tlsctl/flags.h"

#include <functional>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace tlsengine {
namespace tlsctl {
namespace {

// One flag: `--name VALUE` or `--name=VALUE` (a boolean takes no value).
template <typename T>
struct Flag {
  const char* name;
  const char* metavar;  // nullptr: boolean
  const char* help;
  std::function<absl::Status(T&, const std::string&)> set;
};

absl::Status Bad(absl::string_view flag, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
}

absl::StatusOr<int64_t> ParseInt(absl::string_view flag, const std::string& v, int64_t min, int64_t max) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(v, &n)) return Bad(flag, absl::StrCat("'", v, "' is not a whole number"));
  if (n < min || n > max) return Bad(flag, absl::StrCat(n, " is out of range (", min, "..", max, ")"));
  return n;
}

// Versions as Node spells them (minVersion / maxVersion).
absl::Status CheckVersion(absl::string_view flag, const std::string& v) {
  for (const char* ok : {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"}) {
    if (v == ok) return absl::OkStatus();
  }
  return Bad(flag, absl::StrCat("'", v, "' is not one of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3"));
}

absl::StatusOr<std::vector<std::string>> ParseList(absl::string_view flag, const std::string& v) {
  std::vector<std::string> out = absl::StrSplit(v, ',');
  for (const std::string& p : out) {
    if (p.empty() || p.size() > 255) return Bad(flag, absl::StrCat("'", v, "' is not a comma list of protocol names"));
  }
  return out;
}

#define TLS_FLAGS(T)                                                                                      \
  Flag<T>{"key", "FILE", "private key (PEM); repeat for an RSA+ECDSA pair",                              \
          [](T& f, const std::string& v) { f.tls.key.push_back(v); return absl::OkStatus(); }},          \
      Flag<T>{"cert", "FILE", "certificate chain (PEM), leaf first; repeat to match each --key",          \
              [](T& f, const std::string& v) { f.tls.cert.push_back(v); return absl::OkStatus(); }},     \
      Flag<T>{"pfx", "FILE", "PKCS#12 bundle (key, certificate, CAs) instead of --key/--cert",            \
              [](T& f, const std::string& v) { f.tls.pfx = v; return absl::OkStatus(); }},               \
      Flag<T>{"passphrase", "TEXT", "decrypts an encrypted --key or the --pfx",                           \
              [](T& f, const std::string& v) { f.tls.passphrase = v; return absl::OkStatus(); }},        \
      Flag<T>{"ca", "FILE", "trusted CA certificates (PEM); repeatable; default: the system store",       \
              [](T& f, const std::string& v) { f.tls.ca.push_back(v); return absl::OkStatus(); }},       \
      Flag<T>{"ciphers", "LIST", "OpenSSL cipher list for TLS 1.2 and below",                             \
              [](T& f, const std::string& v) { f.tls.ciphers = v; return absl::OkStatus(); }},           \
      Flag<T>{"ciphersuites", "LIST", "TLS 1.3 suites, colon separated",                                  \
              [](T& f, const std::string& v) { f.tls.ciphersuites = v; return absl::OkStatus(); }},      \
      Flag<T>{"ecdh-curve", "LIST", "key-exchange groups, colon separated, or 'auto'",                   \
              [](T& f, const std::string& v) { f.tls.ecdh_curve = v; return absl::OkStatus(); }},        \
      Flag<T>{"min-version", "V", "lowest version: TLSv1, TLSv1.1, TLSv1.2 (default), TLSv1.3",           \
              [](T& f, const std::string& v) {                                                            \
                f.tls.min_version = v;                                                                    \
                return CheckVersion("min-version", v);                                                    \
              }},                                                                                         \
      Flag<T>{"max-version", "V", "highest version: TLSv1 .. TLSv1.3 (default)",                          \
              [](T& f, const std::string& v) {                                                            \
                f.tls.max_version = v;                                                                    \
                return CheckVersion("max-version", v);                                                    \
              }},                                                                                         \
      Flag<T>{"alpn", "a,b", "ALPN protocols, in order of preference",                                    \
              [](T& f, const std::string& v) {                                                            \
                auto l = ParseList("alpn", v);                                                            \
                if (!l.ok()) return l.status();                                                           \
                f.tls.alpn = *l;                                                                          \
                return absl::OkStatus();                                                                  \
              }},                                                                                         \
      Flag<T>{"npn", "a,b", "NPN protocols (TLS 1.2), in order of preference",                            \
              [](T& f, const std::string& v) {                                                            \
                auto l = ParseList("npn", v);                                                             \
                if (!l.ok()) return l.status();                                                           \
                f.tls.npn = *l;                                                                           \
                return absl::OkStatus();                                                                  \
              }},                                                                                         \
      Flag<T>{"keylog", "FILE", "append NSS key-log lines (as SSLKEYLOGFILE, which is also honoured)",    \
              [](T& f, const std::string& v) { f.tls.keylog = v; return absl::OkStatus(); }}

#define ENDPOINT_FLAGS(T)                                                                               \
  Flag<T>{"host", "H", "address (default 127.0.0.1)",                                                   \
          [](T& f, const std::string& v) { f.host = v; return absl::OkStatus(); }},                     \
      Flag<T>{"port", "P", "TCP port",                                                                  \
              [](T& f, const std::string& v) {                                                          \
                auto n = ParseInt("port", v, 0, 65535);                                                 \
                if (!n.ok()) return n.status();                                                         \
                f.port = static_cast<int>(*n);                                                          \
                return absl::OkStatus();                                                                \
              }},                                                                                       \
      Flag<T>{"unix", "PATH", "unix socket instead of TCP (wins over --port, as in Node)",              \
              [](T& f, const std::string& v) { f.unix_path = v; return absl::OkStatus(); }}

#define CONTROL_FLAGS(T, ADDRESS_HELP)                                                                 \
  Flag<T>{"control", "ADDRESS", ADDRESS_HELP,                                                           \
          [](T& f, const std::string& v) { return SetControl(f, &f.control.address, v); }},             \
      Flag<T>{"control-cert", "FILE", "TLS on the control channel: the service's certificate (PEM)",    \
              [](T& f, const std::string& v) { return SetControl(f, &f.control.cert, v); }},            \
      Flag<T>{"control-key", "FILE", "TLS on the control channel: the service's key (PEM)",             \
              [](T& f, const std::string& v) { return SetControl(f, &f.control.key, v); }},             \
      Flag<T>{"control-ca", "FILE", "TLS on the control channel: CA that client certificates must chain to", \
              [](T& f, const std::string& v) { return SetControl(f, &f.control.ca, v); }},             \
      Flag<T>{"control-token-file", "FILE",                                                             \
              "TCP control without TLS: write a fresh token here (mode 0600) and answer only calls "    \
              "carrying it (tlsctl call --control-token-file FILE)",                                    \
              [](T& f, const std::string& v) { return SetControl(f, &f.control.token_file, v); }}

template <typename T>
absl::Status SetControl(T& f, std::string* field, const std::string& v) {
  if constexpr (std::is_same_v<T, ServeFlags>) f.controlled = true;
  *field = v;
  return absl::OkStatus();
}

// `field` is an int64_t or a std::optional<int64_t> (set: given).
template <typename T, typename Field>
absl::Status IntFlag(T& f, Field T::*field, absl::string_view name, const std::string& v, int64_t min,
                     int64_t max) {
  auto n = ParseInt(name, v, min, max);
  if (!n.ok()) return n.status();
  f.*field = *n;
  return absl::OkStatus();
}

const std::vector<Flag<ServeFlags>>& ServeTable() {
  using T = ServeFlags;
  static const auto* table = new std::vector<Flag<T>>{
      ENDPOINT_FLAGS(T),
      TLS_FLAGS(T),
      Flag<T>{"crl", "FILE", "certificate revocation list(s) (PEM) for client certificates",
              [](T& f, const std::string& v) { f.tls.crl = v; return absl::OkStatus(); }},
      Flag<T>{"dhparam", "FILE", "DH parameters (PEM, >= 2048 bits) to enable DHE suites",
              [](T& f, const std::string& v) { f.tls.dhparam = v; return absl::OkStatus(); }},
      Flag<T>{"honor-cipher-order", nullptr, "choose by our cipher order, not the client's",
              [](T& f, const std::string&) { f.honor_cipher_order = true; return absl::OkStatus(); }},
      Flag<T>{"request-cert", nullptr, "ask clients for a certificate (reported in secureConnection)",
              [](T& f, const std::string&) { f.request_cert = true; return absl::OkStatus(); }},
      Flag<T>{"reject-unauthorized", nullptr, "with --request-cert: fail clients whose certificate does not verify",
              [](T& f, const std::string&) { f.reject_unauthorized = true; return absl::OkStatus(); }},
      Flag<T>{"sni", "NAME=KEY:CERT", "serve NAME (or *.domain) with this key and certificate; repeatable",
              [](T& f, const std::string& v) {
                std::pair<std::string, std::string> nv = absl::StrSplit(v, absl::MaxSplits('=', 1));
                std::pair<std::string, std::string> kc = absl::StrSplit(nv.second, absl::MaxSplits(':', 1));
                if (nv.first.empty() || kc.first.empty() || kc.second.empty()) {
                  return Bad("sni", absl::StrCat("'", v, "' is not NAME=KEY:CERT"));
                }
                f.sni.push_back({nv.first, kc.first, kc.second});
                return absl::OkStatus();
              }},
      Flag<T>{"handshake-timeout", "MS", "handshakes must finish within MS milliseconds (default 120000)",
              [](T& f, const std::string& v) {
                return IntFlag(f, &T::handshake_timeout_ms, "handshake-timeout", v, 1, 86400000);
              }},
      Flag<T>{"session-timeout", "S", "session and ticket lifetime in seconds (default 300)",
              [](T& f, const std::string& v) {
                return IntFlag(f, &T::session_timeout_s, "session-timeout", v, 1, 86400 * 7);
              }},
      Flag<T>{"ticket-keys", "FILE", "session ticket keys: 48 bytes each (Node's layout); the first encrypts",
              [](T& f, const std::string& v) { f.ticket_keys = v; return absl::OkStatus(); }},
      Flag<T>{"session-id-context", "TEXT", "session id context, at most 32 bytes",
              [](T& f, const std::string& v) {
                if (v.empty() || v.size() > 32) return Bad("session-id-context", "must be 1 to 32 bytes");
                f.session_id_context = v;
                return absl::OkStatus();
              }},
      Flag<T>{"ocsp-response", "FILE", "staple this DER OCSP response when a client asks",
              [](T& f, const std::string& v) { f.ocsp_response = v; return absl::OkStatus(); }},
      Flag<T>{"max-connections", "N", "close connections past N at accept (default: no limit)",
              [](T& f, const std::string& v) {
                return IntFlag(f, &T::max_connections, "max-connections", v, 1, 10000000);
              }},
      Flag<T>{"idle-timeout", "MS",
              "end handshaked connections idle (no byte in or out) for MS milliseconds; 0: never (default 75000)",
              [](T& f, const std::string& v) {
                return IntFlag(f, &T::idle_timeout_ms, "idle-timeout", v, 0, 86400000);
              }},
      Flag<T>{"max-body-size", "BYTES", "--mode http: answer 413 to a request body above BYTES (default 1048576)",
              [](T& f, const std::string& v) {
                return IntFlag(f, &T::max_body_size, "max-body-size", v, 0, int64_t{1} << 50);
              }},
      Flag<T>{"reneg-limit", "N", "allow client renegotiation, N times per window (Node's CLIENT_RENEG_LIMIT)",
              [](T& f, const std::string& v) {
                return IntFlag(f, &T::reneg_limit, "reneg-limit", v, 0, 1000000);
              }},
      Flag<T>{"reneg-window", "S", "renegotiation window in seconds (default 600)",
              [](T& f, const std::string& v) {
                return IntFlag(f, &T::reneg_window_s, "reneg-window", v, 1, 86400 * 7);
              }},
      Flag<T>{"mode", "echo|http|hold",
              "echo data back (default), answer HTTP requests with the connection's JSON, or (with --control) "
              "hold plaintext for the service's Read/Write",
              [](T& f, const std::string& v) {
                if (v == "echo") {
                  f.mode = ServeMode::kEcho;
                } else if (v == "http") {
                  f.mode = ServeMode::kHttp;
                } else if (v == "hold") {
                  f.mode = ServeMode::kHold;
                } else {
                  return Bad("mode", absl::StrCat("'", v, "' is not echo, http or hold"));
                }
                return absl::OkStatus();
              }},
      Flag<T>{"loops", "N", "event loops on N threads (one acceptor deals connections out), sharing contexts, ticket keys and sessions",
              [](T& f, const std::string& v) { return IntFlag(f, &T::loops, "loops", v, 1, 256); }},
      CONTROL_FLAGS(T, "also run the control service at ADDRESS (unix:PATH, PATH or loopback host:port with a token; "
                       "--control= for the default), managing this listener"),
  };
  return *table;
}

const std::vector<Flag<ConnectFlags>>& ConnectTable() {
  using T = ConnectFlags;
  static const auto* table = new std::vector<Flag<T>>{
      ENDPOINT_FLAGS(T),
      Flag<T>{"servername", "NAME", "SNI name and the name the certificate must carry (default: --host)",
              [](T& f, const std::string& v) { f.servername = v; return absl::OkStatus(); }},
      TLS_FLAGS(T),
      Flag<T>{"insecure", nullptr, "do not reject a server that fails verification (still reported)",
              [](T& f, const std::string&) { f.insecure = true; return absl::OkStatus(); }},
      Flag<T>{"session-in", "FILE", "resume the session saved in FILE by --session-out",
              [](T& f, const std::string& v) { f.session_in = v; return absl::OkStatus(); }},
      Flag<T>{"session-out", "FILE", "save the newest session to FILE (DER)",
              [](T& f, const std::string& v) { f.session_out = v; return absl::OkStatus(); }},
      Flag<T>{"request-ocsp", nullptr, "ask for a stapled OCSP response (OCSPResponse event)",
              [](T& f, const std::string&) { f.request_ocsp = true; return absl::OkStatus(); }},
      Flag<T>{"send", "TEXT", "send TEXT after the handshake, then end and print what comes back",
              [](T& f, const std::string& v) { f.send = v; return absl::OkStatus(); }},
      Flag<T>{"stdin", nullptr, "send standard input until its end, then end",
              [](T& f, const std::string&) { f.read_stdin = true; return absl::OkStatus(); }},
      Flag<T>{"renegotiate", nullptr, "renegotiate once after the handshake (TLS 1.2)",
              [](T& f, const std::string&) { f.renegotiate = true; return absl::OkStatus(); }},
      Flag<T>{"key-update", nullptr, "send a KeyUpdate asking for the server's after the handshake (TLS 1.3)",
              [](T& f, const std::string&) { f.key_update = true; return absl::OkStatus(); }},
      Flag<T>{"max-send-fragment", "N", "records carry at most N plaintext bytes (512..16384)",
              [](T& f, const std::string& v) {
                return IntFlag(f, &T::max_send_fragment, "max-send-fragment", v, 512, 16384);
              }},
      Flag<T>{"handshake-timeout", "MS", "the handshake must finish within MS milliseconds (default 120000)",
              [](T& f, const std::string& v) {
                return IntFlag(f, &T::handshake_timeout_ms, "handshake-timeout", v, 1, 86400000);
              }},
      Flag<T>{"close-timeout", "MS",
              "after ending, how long the server may be silent before its close_notify (default 5000)",
              [](T& f, const std::string& v) {
                return IntFlag(f, &T::close_timeout_ms, "close-timeout", v, 1, 86400000);
              }},
      Flag<T>{"allow-truncation", nullptr,
              "a TCP close without close_notify is no error (SSL_OP_IGNORE_UNEXPECTED_EOF)",
              [](T& f, const std::string&) { f.allow_truncation = true; return absl::OkStatus(); }},
  };
  return *table;
}

const std::vector<Flag<DaemonFlags>>& DaemonTable() {
  using T = DaemonFlags;
  static const auto* table = new std::vector<Flag<T>>{
      CONTROL_FLAGS(T, "unix:PATH, PATH or host:port (TCP needs --control-cert/-key/-ca, or loopback and "
                       "--control-token-file); default: unix:$XDG_RUNTIME_DIR/tlsctl.sock, else "
                       "unix:${TMPDIR:-/tmp}/tlsctl-$UID/control.sock"),
  };
  return *table;
}

absl::Status CheckControl(const ControlFlags& c) {
  int given = !c.cert.empty() + !c.key.empty() + !c.ca.empty();
  if (given != 0 && given != 3) {
    return absl::InvalidArgumentError("--control-cert/--control-key/--control-ca: give all three or none");
  }
  return absl::OkStatus();
}

#undef CONTROL_FLAGS
#undef TLS_FLAGS
#undef ENDPOINT_FLAGS

template <typename T>
absl::Status ParseInto(const std::vector<Flag<T>>& table, const std::vector<std::string>& args, T& out) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") return absl::CancelledError("help");
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "' (see --help)"));
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const Flag<T>* flag = nullptr;
    for (const Flag<T>& f : table) {
      if (name == f.name) flag = &f;
    }
    if (flag == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " (see --help)"));
    if (flag->metavar == nullptr) {
      if (value) return Bad(name, "takes no value");
      value = "";
    } else if (!value) {
      if (i + 1 >= args.size()) return Bad(name, absl::StrCat("needs a value (", flag->metavar, ")"));
      value = args[++i];
    }
    absl::Status s = flag->set(out, *value);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

template <typename T>
std::string HelpFor(absl::string_view usage, absl::string_view about, const std::vector<Flag<T>>& table) {
  std::string out = absl::StrCat("usage: ", usage, "\n\n", about, "\n\nflags:\n");
  for (const Flag<T>& f : table) {
    std::string left = absl::StrCat("  --", f.name, f.metavar ? absl::StrCat(" ", f.metavar) : "");
    if (left.size() < 30) left.resize(30, ' ');
    else left += "\n" + std::string(30, ' ');
    absl::StrAppend(&out, left, f.help, "\n");
  }
  absl::StrAppend(&out, "  --help                      this text\n");
  return out;
}

absl::Status CheckTls(const TlsFlags& tls) {
  if (!tls.pfx.empty() && (!tls.key.empty() || !tls.cert.empty())) {
    return absl::InvalidArgumentError("--pfx: give either --pfx or --key/--cert, not both");
  }
  if (tls.key.size() != tls.cert.size()) {
    return absl::InvalidArgumentError(absl::StrCat("--key/--cert: ", tls.key.size(), " key(s) but ",
                                                   tls.cert.size(), " certificate(s); give them in pairs"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServeFlags> ParseServeFlags(const std::vector<std::string>& args) {
  ServeFlags f;
  absl::Status s = ParseInto(ServeTable(), args, f);
  if (s.ok()) s = CheckTls(f.tls);
  if (!s.ok()) return s;
  if (f.reject_unauthorized && !f.request_cert) {
    return absl::InvalidArgumentError("--reject-unauthorized: only means something with --request-cert");
  }
  if (!f.unix_path.empty() && f.loops > 1) {
    return absl::InvalidArgumentError("--loops: a unix socket is served by one loop");
  }
  if (!f.controlled) {
    if (f.mode == ServeMode::kHold) return absl::InvalidArgumentError("--mode: hold needs --control");
    return f;
  }
  if (s = CheckControl(f.control); !s.ok()) return s;
  // The service's listener (ListenRequest) has no such options.
  if (f.mode == ServeMode::kHttp) return absl::InvalidArgumentError("--mode: http is not served with --control (echo or hold)");
  if (f.loops > 1) return absl::InvalidArgumentError("--loops: the control service serves on one loop");
  if (!f.tls.keylog.empty()) return absl::InvalidArgumentError("--keylog: not available with --control");
  if (f.idle_timeout_ms) return absl::InvalidArgumentError("--idle-timeout: not available with --control");
  if (f.reneg_limit && *f.reneg_limit == 0) {
    return absl::InvalidArgumentError("--reneg-limit: 0 is not available with --control (1 or more)");
  }
  return f;
}

absl::StatusOr<ConnectFlags> ParseConnectFlags(const std::vector<std::string>& args) {
  ConnectFlags f;
  bool port_given = false;
  for (const std::string& a : args) {
    if (a == "--port" || a.rfind("--port=", 0) == 0) port_given = true;
  }
  absl::Status s = ParseInto(ConnectTable(), args, f);
  if (s.ok()) s = CheckTls(f.tls);
  if (!s.ok()) return s;
  if (f.unix_path.empty() && (!port_given || f.port == 0)) {
    return absl::InvalidArgumentError("--port: required (1..65535) unless --unix is given");
  }
  if (f.send && f.read_stdin) return absl::InvalidArgumentError("--stdin: give either --send or --stdin, not both");
  return f;
}

absl::Status ParseCiphersFlags(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") return absl::CancelledError("help");
    return absl::InvalidArgumentError(absl::StrCat("ciphers takes no arguments, got '", a, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<DaemonFlags> ParseDaemonFlags(const std::vector<std::string>& args) {
  DaemonFlags f;
  absl::Status s = ParseInto(DaemonTable(), args, f);
  if (s.ok()) s = CheckControl(f.control);
  if (!s.ok()) return s;
  return f;
}

std::string ServeHelp() {
  return HelpFor(
      "tlsctl serve [flags]",
      "A TLS server (Node's tls.createServer). Without --key/--cert/--pfx it uses a certificate for\n"
      "localhost made on first use and cached (its path and fingerprint go to stderr). Prints one\n"
      "JSON object per line on stdout: listening {address, port, family}, secureConnection {id,\n"
      "remoteAddress, remotePort, protocol, cipher, authorized, authorizationError, servername,\n"
      "alpnProtocol, npnProtocol, sessionReused, peerCertificate}, clientError {code, message},\n"
      "timeout {id} (--idle-timeout), close {id, bytesRead, bytesWritten}. --mode echo sends every\n"
      "byte back; --mode http answers each request with the connection's JSON, like openssl s_server\n"
      "-www (bodies are discarded; chunked ones get 501). --port 0 picks a free port (listening\n"
      "says which). Sessions are kept in memory for session-id resumption.\n"
      "With --control ADDRESS the listener is made through the gRPC control service, which runs\n"
      "alongside at ADDRESS (as tlsctl daemon): it is listener l1 with context ctx1 (SNI contexts\n"
      "follow) in ListConnections, GetStats, ReplaceContext, RotateTicketKeys ...; stdout has the\n"
      "listening line, and connection events come from `tlsctl call WatchEvents '{}'`. With\n"
      "--control: --mode echo or hold, one loop, no --keylog, no --idle-timeout.\n"
      "Exit status: 0 after SIGINT/SIGTERM, 1 when serving fails, 2 for a bad flag or file.",
      ServeTable());
}

std::string DaemonHelp() {
  return HelpFor(
      "tlsctl daemon [--control ADDRESS] [--control-cert F --control-key F --control-ca F]\n"
      "              [--control-token-file F]",
      "Runs the gRPC control service (tlsengine.control.v1.TlsControl, adapters/grpc/control.proto)\n"
      "alone until SIGINT/SIGTERM: contexts, listeners and connections are made through it, e.g.\n"
      "with tlsctl call. Whoever it answers acts with its rights (reads the files they name, binds\n"
      "where they say). A unix socket is made mode 0600 (only its user can connect); every local\n"
      "user reaches a TCP address, loopback too, so TCP needs TLS with client certificates, or a\n"
      "loopback host and --control-token-file.\n"
      "Prints \"control: listening on ADDRESS\" to stderr.\n"
      "Exit status: 0 after SIGINT/SIGTERM, 1 when the service cannot start, 2 for a bad flag.",
      DaemonTable());
}

std::string CallHelp() {
  return "usage: tlsctl call [--control ADDRESS] [--control-cert F --control-key F --control-ca F]\n"
         "                  [--control-token-file F] [--servername NAME] (--list | METHOD ['JSON'])\n\n"
         "Sends one request to the control service (tlsctl daemon, tlsctl serve --control) in\n"
         "protobuf's JSON mapping (default '{}') and prints each reply as one JSON line; streaming\n"
         "methods (Read, WatchEvents) print one line per message. --list prints the methods, from\n"
         "server reflection. METHOD is GetStats, TlsControl.GetStats or\n"
         "tlsengine.control.v1.TlsControl/GetStats.\n"
         "Over a unix socket, nothing is sent unless the service runs as you or root (SO_PEERCRED).\n"
         "Errors go to stderr as \"error: CODE: message\".\n"
         "Exit status: 0 on success, 1 for a failed call, 2 for a bad flag.\n\n"
         "flags:\n"
         "  --control ADDRESS           the service (default: as tlsctl daemon)\n"
         "  --control-cert FILE         client certificate (PEM) for a TLS control channel\n"
         "  --control-key FILE          its key (PEM)\n"
         "  --control-ca FILE           CA the service's certificate must chain to\n"
         "  --control-token-file FILE   the token tlsctl daemon --control-token-file wrote\n"
         "  --servername NAME           name the service's certificate is checked against\n"
         "  --list                      list the methods\n"
         "  --help                      this text\n";
}

std::string ConnectHelp() {
  return HelpFor(
      "tlsctl connect [--host H] --port P | --unix PATH [flags]",
      "A TLS client (Node's tls.connect). Prints one JSON object per line on stdout:\n"
      "secureConnect (the fields of serve's secureConnection), OCSPResponse {response: base64 DER},\n"
      "session {session}, data {data}, end {truncated}, error {code, message}, close {bytesRead,\n"
      "bytesWritten}.\n"
      "After the handshake it sends --send or standard input, ends (close_notify) and prints what\n"
      "arrives until the server closes. The server's certificate is verified against --ca (default:\n"
      "the system store) and the name in --servername or --host. A server that closes TCP without\n"
      "close_notify (end {truncated: true}) is an ECONNRESET error unless --allow-truncation.\n"
      "Exit status: 0 on success, 1 with an error line (DEPTH_ZERO_SELF_SIGNED_CERT,\n"
      "ERR_TLS_CERT_ALTNAME_INVALID, ECONNREFUSED, ERR_TLS_HANDSHAKE_TIMEOUT, ...), 2 for a bad\n"
      "flag or file.",
      ConnectTable());
}

std::string CiphersHelp() {
  return "usage: tlsctl ciphers\n\nPrints the supported cipher names (Node's tls.getCiphers()), one per line.\n";
}

std::string MainHelp() {
  return "usage: tlsctl <command> [flags]\n\n"
         "commands:\n"
         "  serve      a TLS server (echo or http); with no flags: 127.0.0.1:8000, certificate for localhost\n"
         "  connect    a TLS client\n"
         "  ciphers    the supported cipher names, one per line\n"
         "  daemon     the gRPC control service alone (serve --control adds it to a server)\n"
         "  call       one request to the control service, replies as JSON lines\n\n"
         "tlsctl <command> --help describes each. JSON goes to stdout, progress to stderr.\n";
}

}  // namespace tlsctl
}  // namespace tlsengine

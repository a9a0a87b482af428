// SecureContext: Node's tls.createSecureContext(). Keys, certificates, trust,
// ciphers and protocol limits, parsed and checked once, then shared read-only
// by any number of connections on any number of threads.
//
//   SecureContextOptions opts;
//   opts.key = {key_pem};
//   opts.cert = {cert_pem};
//   absl::StatusOr<std::shared_ptr<const SecureContext>> ctx =
//       SecureContext::Create(opts);
#ifndef TLSENGINE_CORE_SECURE_CONTEXT_H_
#define TLSENGINE_CORE_SECURE_CONTEXT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <map>
#include <mutex>

#include "absl/status/statusor.h"

namespace tlsengine {
namespace internal {
struct ContextAccess;  // secure_context.cc: what core/openssl_interop.h and the engine reach
}  // namespace internal

// Our default TLS 1.2 cipher list: AEAD and forward secret only. Node's
// io.js default also allowed CBC and, in the spec, RC4; see the README.
inline constexpr char kDefaultCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
// TLS 1.3 suites (all AEAD, all forward secret).
inline constexpr char kDefaultCipherSuites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// Session ticket keys (48 bytes each, Node's layout: 16 name, 16
// HMAC-SHA256, 16 AES-128-CBC; the first encrypts, every one decrypts) that
// contexts read at every ticket they issue or decrypt. Set() changes them in
// place for every context made with this set (as HAProxy's `set ssl
// tls-key`): the next ticket uses the new keys, and no SSL_CTX is rebuilt.
// Thread-safe; the keys appear in no message.
class TicketKeys {
 public:
  // kInvalidArgument (ERR_INVALID_ARG_VALUE) when a key is not 48 bytes.
  // No keys: one random key (kInternal when RAND_bytes fails).
  static absl::StatusOr<std::shared_ptr<TicketKeys>> Create(std::vector<std::string> keys);
  // Replaces the keys; connections mid-handshake finish with whichever set
  // they read. kInvalidArgument for no keys or a key not 48 bytes (nothing
  // changes then).
  absl::Status Set(std::vector<std::string> keys);
  // The keys now: a snapshot that later Set() calls do not change.
  std::shared_ptr<const std::vector<std::string>> Get() const;

 private:
  TicketKeys() = default;
  mutable std::mutex mu_;
  std::shared_ptr<const std::vector<std::string>> keys_;  // guarded by mu_; never empty
};

// The options of tls.createSecureContext(), under Node's names (snake_case).
// Every text option is PEM unless said otherwise.
struct SecureContextOptions {
  // Private keys; each must match one certificate in `cert`. An RSA and an
  // ECDSA identity may be given together: OpenSSL picks per handshake.
  std::vector<std::string> key;
  // Certificates; each string is a leaf followed by its intermediates. A
  // leaf given alone is sent with the intermediates that `ca` holds for it
  // (as OpenSSL's auto-chain does for Node), found once at Create().
  std::vector<std::string> cert;
  // Decrypts encrypted keys and the PFX.
  std::string passphrase;
  // PKCS#12 (DER bytes): key, certificate and CA certificates, which, as in
  // Node, join both the sent chain and the trusted set.
  std::string pfx;
  // Trusted CAs; each string may hold several certificates. nullopt: the
  // system trust store, read on demand from its hashed directory
  // (SSL_CERT_DIR, else OpenSSL's default), plus the bundle SSL_CERT_FILE
  // names when that is set. An empty vector: trust nothing (as Node's
  // `ca: []`).
  std::optional<std::vector<std::string>> ca;
  // CRLs; giving any turns on revocation checks for the whole chain.
  std::vector<std::string> crl;
  // OpenSSL cipher list for TLS 1.2 and below; TLS 1.3 suite names
  // (TLS_AES_128_GCM_SHA256) may be mixed in, as in Node. "": defaults.
  std::string ciphers;
  // TLS 1.3 suites, colon separated. "": defaults (or those in `ciphers`).
  std::string ciphersuites;
  // Server: choose by our cipher order instead of the client's.
  bool honor_cipher_order = false;
  // Key-exchange groups, colon separated ("P-256:X25519"), or "auto".
  std::string ecdh_curve = "auto";
  // DH parameters (PEM) to enable DHE suites; at least 2048 bits.
  std::string dhparam;
  // "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3". Defaults: 1.2 and 1.3.
  std::string min_version = "TLSv1.2";
  std::string max_version = "TLSv1.3";
  // Node's legacy switch, e.g. "TLSv1_2_method"; overrides the two above.
  std::string secure_protocol;
  // Server: lifetime of sessions and tickets, seconds (Node: 300), counted
  // on the engine's clock (the `now` its calls take) from when the session
  // was made: a session offered at or after made + timeout is not resumed.
  int64_t session_timeout = 300;
  // Server: session id context, at most 32 bytes.
  std::string session_id_context = "tlsengine";
  // Server: session ticket keys, each 48 bytes in Node's layout (16 name,
  // 16 HMAC-SHA256, 16 AES-128-CBC). The first encrypts new tickets; every
  // one decrypts (rotation: put the new key first, keep the old after it).
  // Empty: random keys made at Create(), private to this context. With
  // SNI, the context that serves the handshake (the SNI-chosen one, else
  // the default) issues and accepts tickets with its own keys; Node uses
  // the server's (default) keys for all of them.
  std::vector<std::string> ticket_keys;
  // Server: a shared, changeable key set instead of `ticket_keys` (which
  // must then be empty): the context reads it at every ticket, so
  // TicketKeys::Set reaches every context made with it at once. A Server
  // gives its own to every context it serves (Server::SetTicketKeys).
  std::shared_ptr<TicketKeys> ticket_key_set;
  // Raw OpenSSL SSL_OP_* flags to set (Node's secureOptions), e.g.
  // SSL_OP_NO_TICKET.
  uint64_t secure_options = 0;
  // NPN (Node's NPNProtocols), in priority order: a server advertises
  // them, a client picks from the server's list. TLS 1.2 and below. Here,
  // not per connection, because OpenSSL decides per context whether a
  // client offers NPN at all.
  std::vector<std::string> npn_protocols;
};

class SecureContext;

// Node's server.addContext(hostname, context) table: exact names and
// "*.example.com" patterns (one label) mapped to contexts. Thread-safe.
class SniContexts {
 public:
  // kInvalidArgument (ERR_TLS_REQUIRED_SERVER_NAME) for an empty name, or a
  // `*` anywhere but as the whole first label.
  absl::Status Add(const std::string& hostname, std::shared_ptr<const SecureContext> context);
  // The context for `servername`: exact match first, then wildcard; nullptr
  // when none matches. Case-insensitive.
  std::shared_ptr<const SecureContext> Find(const std::string& servername) const;
  // Removes the entry Add(hostname, ...) made (the same spelling rules:
  // case-insensitive, a trailing dot ignored, "*.example.com" names the
  // pattern). Returns whether there was one.
  bool Remove(const std::string& hostname);
  // Every entry, as (name, context): exact names first, then patterns as
  // "*.example.com", each group in name order; names lower-case.
  std::vector<std::pair<std::string, std::shared_ptr<const SecureContext>>> Entries() const;

 private:
  // std::mutex rather than absl::Mutex: ThreadSanitizer sees pthread
  // locking, and Debian's Abseil is not instrumented.
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const SecureContext>> exact_;     // guarded by mu_
  std::map<std::string, std::shared_ptr<const SecureContext>> wildcard_;  // guarded by mu_
};

class SecureContext {
 public:
  // Parses and checks everything. kInvalidArgument, with code
  // ERR_INVALID_ARG_VALUE (or Node's own where it has one) and a message
  // that names the option and the cause, for any bad input.
  static absl::StatusOr<std::shared_ptr<const SecureContext>> Create(
      const SecureContextOptions& options);

  ~SecureContext();
  SecureContext(const SecureContext&) = delete;
  SecureContext& operator=(const SecureContext&) = delete;

  const SecureContextOptions& options() const { return options_; }
  // Things worth knowing that are not errors (e.g. TLS 1.0 enabled), which
  // Node would print as warnings.
  const std::vector<std::string>& warnings() const { return warnings_; }
  // The ticket keys this context issues and decrypts tickets with: those
  // of options().ticket_key_set, else a set of its own made at Create()
  // from options().ticket_keys (random when empty). Set() on it rekeys the
  // context in place; options().ticket_keys keeps what Create() was given.
  const std::shared_ptr<TicketKeys>& ticket_key_set() const;
  // The OpenSSL objects behind it: core/openssl_interop.h (NativeHandle,
  // KeylogNativeHandle), the one header that names OpenSSL types.

 private:
  friend struct internal::ContextAccess;
  struct Native;  // the SSL_CTX, its BIO method, callback data, key-log twin
  SecureContext();
  // Create(); with `keylog_of`, the key-log twin of the context whose
  // native state that is (same ticket keys).
  static absl::StatusOr<std::shared_ptr<const SecureContext>> Build(const SecureContextOptions& options,
                                                                    const Native* keylog_of);

  SecureContextOptions options_;
  std::unique_ptr<Native> native_;
  std::vector<std::string> warnings_;
};

// Node's tls.getCiphers(): the supported cipher names, lower case, sorted.
std::vector<std::string> GetCiphers();

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_SECURE_CONTEXT_H_

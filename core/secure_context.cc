#include "core/secure_context.h"

#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/errors.h"
#include "core/internal/connection_impl.h"
#include "core/internal/openssl_util.h"
#include "core/internal/pkcs12.h"
#include "core/internal/status_macros.h"

namespace tlsengine {

using internal::DrainErrors;
using internal::MemoryBio;
using internal::OpenSslPtr;

void SecureContext::CtxDeleter::operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
void SecureContext::BioMethodDeleter::operator()(BIO_METHOD* method) const { BIO_meth_free(method); }

SecureContext::~SecureContext() {
  ctx_.reset();  // before data_, which its callbacks read
}

namespace {

absl::Status BadOption(absl::string_view option, absl::string_view cause) {
  std::string why = DrainErrors();
  return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                   absl::StrCat(option, ": ", cause, why.empty() ? "" : " (", why,
                                why.empty() ? "" : ")"));
}

int PassphraseCallback(char* buf, int size, int /*rwflag*/, void* userdata) {
  const std::string* passphrase = static_cast<const std::string*>(userdata);
  if (passphrase->empty() || passphrase->size() > static_cast<size_t>(size)) return -1;
  std::memcpy(buf, passphrase->data(), passphrase->size());
  return static_cast<int>(passphrase->size());
}

// Every certificate in a PEM text. kInvalidArgument when there is none or
// one is malformed.
absl::StatusOr<std::vector<OpenSslPtr<X509>>> ReadCertificates(absl::string_view option,
                                                             absl::string_view pem) {
  OpenSslPtr<BIO> bio = MemoryBio(pem);
  std::vector<OpenSslPtr<X509>> out;
  while (true) {
    OpenSslPtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    out.push_back(std::move(cert));
  }
  // Reading stops at the end of input (PEM_R_NO_START_LINE) or at a bad block.
  if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE) ERR_clear_error();
  if (ERR_peek_error() != 0) return BadOption(option, "malformed PEM certificate");
  if (out.empty()) return BadOption(option, "no PEM certificate found");
  // OpenSSL decodes a certificate's extensions into a cache on first use
  // (under the certificate's lock, but its flags are read outside it), so
  // threads sharing this context would race to fill it: fill it now, before
  // the certificate is shared. A bad extension is judged at verification,
  // as before; nothing is reported here.
  for (const OpenSslPtr<X509>& cert : out) X509_check_purpose(cert.get(), -1, 0);
  ERR_clear_error();
  return out;
}

absl::StatusOr<OpenSslPtr<EVP_PKEY>> ReadKey(absl::string_view pem, const std::string& passphrase) {
  OpenSslPtr<BIO> bio = MemoryBio(pem);
  OpenSslPtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(
      bio.get(), nullptr, PassphraseCallback, const_cast<std::string*>(&passphrase)));
  if (key) return key;
  int reason = internal::PeekErrorReason();
  if (absl::StrContains(pem, "ENCRYPTED")) {
    if (passphrase.empty()) return BadOption("key", "encrypted private key and no passphrase given");
    if (reason == EVP_R_BAD_DECRYPT || reason == PEM_R_BAD_DECRYPT || reason == PEM_R_BAD_PASSWORD_READ) {
      return BadOption("key", "bad decrypt (wrong passphrase?)");
    }
    return BadOption("key", "cannot decrypt the private key (wrong passphrase?)");
  }
  return BadOption("key", "not a PEM private key");
}

absl::StatusOr<int> ParseVersion(absl::string_view option, absl::string_view name) {
  if (name == "TLSv1") return TLS1_VERSION;
  if (name == "TLSv1.1") return TLS1_1_VERSION;
  if (name == "TLSv1.2") return TLS1_2_VERSION;
  if (name == "TLSv1.3") return TLS1_3_VERSION;
  return MakeError(absl::StatusCode::kInvalidArgument, "ERR_TLS_INVALID_PROTOCOL_VERSION",
                   absl::StrCat(option, ": '", name,
                                "' is not a TLS version (TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)"));
}

// Node's secureProtocol names: "TLSv1_2_method", "TLSv1_2_server_method",
// "TLS_method", "SSLv23_method", ... (and TLSv1_3_*, which Node lacks), with
// Node's messages: "Unknown method: NAME", "SSLv3 methods disabled".
absl::Status ApplySecureProtocol(absl::string_view name, int* min, int* max) {
  auto bad = [](absl::string_view message) {
    return MakeError(absl::StatusCode::kInvalidArgument, "ERR_TLS_INVALID_PROTOCOL_METHOD",
                     absl::StrCat("secure_protocol: ", message));
  };
  absl::string_view base = name;
  bool method = false;
  for (absl::string_view suffix : {"_server_method", "_client_method", "_method"}) {
    if ((method = absl::ConsumeSuffix(&base, suffix))) break;
  }
  if (!method) return bad(absl::StrCat("Unknown method: ", name));
  if (base == "TLS" || base == "SSLv23") return absl::OkStatus();
  if (base == "SSLv2" || base == "SSLv3") return bad(absl::StrCat(base, " methods disabled"));
  static const std::pair<const char*, int> kMethods[] = {
      {"TLSv1", TLS1_VERSION}, {"TLSv1_1", TLS1_1_VERSION},
      {"TLSv1_2", TLS1_2_VERSION}, {"TLSv1_3", TLS1_3_VERSION}};
  for (const auto& [method_name, version] : kMethods) {
    if (base == method_name) {
      *min = *max = version;
      return absl::OkStatus();
    }
  }
  return bad(absl::StrCat("Unknown method: ", name));
}

// Splits Node's `ciphers` into the TLS 1.2 list and TLS 1.3 suite names, and
// refuses any element that selects no cipher at all, so a typo is an error
// at creation rather than a handshake failure later.
constexpr char kLegacyCbcCiphers[] =
    "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA";

absl::Status ApplyCiphers(SSL_CTX* ctx, const SecureContextOptions& o, int min_version) {
  std::vector<std::string> legacy, suites;
  OpenSslPtr<SSL_CTX> scratch;  // one, made on demand: SSL_CTX_new is costly
  for (absl::string_view element : absl::StrSplit(o.ciphers, absl::ByAnyChar(": ,"), absl::SkipEmpty())) {
    if (absl::StartsWith(element, "TLS_")) {
      suites.emplace_back(element);
      continue;
    }
    legacy.emplace_back(element);
    absl::string_view name = element;
    if (absl::StartsWith(name, "@") || absl::StartsWith(name, "!") || absl::StartsWith(name, "-")) continue;
    absl::ConsumePrefix(&name, "+");
    if (!scratch) scratch.reset(SSL_CTX_new(TLS_method()));
    if (!scratch || SSL_CTX_set_cipher_list(scratch.get(), std::string(name).c_str()) != 1) {
      return BadOption("ciphers", absl::StrCat("no cipher match for '", element, "'"));
    }
  }
  std::string legacy_list = legacy.empty() ? kDefaultCiphers : absl::StrJoin(legacy, ":");
  if (legacy.empty() && min_version < TLS1_2_VERSION) {
    // TLS 1.0/1.1 have no AEAD suites: whoever enables them gets the
    // forward-secret CBC suites too, or no handshake could use them.
    absl::StrAppend(&legacy_list, ":", kLegacyCbcCiphers);
  }
  if (SSL_CTX_set_cipher_list(ctx, legacy_list.c_str()) != 1) {
    return BadOption("ciphers", absl::StrCat("no cipher match in '", o.ciphers, "'"));
  }
  std::string suite_list = !o.ciphersuites.empty() ? o.ciphersuites
                           : suites.empty()        ? kDefaultCipherSuites
                                                   : absl::StrJoin(suites, ":");
  if (SSL_CTX_set_ciphersuites(ctx, suite_list.c_str()) != 1) {
    return BadOption(o.ciphersuites.empty() ? "ciphers" : "ciphersuites",
                     absl::StrCat("unknown TLS 1.3 cipher suite in '", suite_list, "'"));
  }
  return absl::OkStatus();
}

absl::Status ApplyDhParam(SSL_CTX* ctx, const std::string& pem) {
  OpenSslPtr<BIO> bio = MemoryBio(pem);
  OpenSslPtr<EVP_PKEY> dh(PEM_read_bio_Parameters(bio.get(), nullptr));
  if (!dh || EVP_PKEY_get_base_id(dh.get()) != EVP_PKEY_DH) {
    return BadOption("dhparam", "not PEM DH parameters");
  }
  // Node refuses < 1024 bits and warns below 2048; Debian's OpenSSL
  // (security level 2) refuses below 2048, so that is the floor here.
  int bits = EVP_PKEY_get_bits(dh.get());
  if (bits < 2048) {
    return MakeError(absl::StatusCode::kInvalidArgument, "ERR_TLS_DH_PARAM_SIZE",
                     absl::StrCat("dhparam: DH parameter is less than 2048 bits (", bits, ")"));
  }
  // set0 takes ownership on success only.
  if (SSL_CTX_set0_tmp_dh_pkey(ctx, dh.get()) != 1) return BadOption("dhparam", "rejected by OpenSSL");
  dh.release();
  return absl::OkStatus();
}

absl::Status ApplyTrust(SSL_CTX* ctx, const SecureContextOptions& o) {
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);  // borrowed
  if (!o.ca.has_value()) {
    // The system trust store, looked up on demand: OpenSSL's hashed
    // directory (SSL_CERT_DIR, else /etc/ssl/certs) reads a CA only when a
    // verification or chain build asks for its subject, and keeps it. The
    // whole bundle (X509_STORE_set_default_paths: ~144 certificates,
    // ~0.8 MB, ~190 ms) is loaded only when SSL_CERT_FILE names one
    // explicitly; a server that never verifies reads nothing.
    X509_LOOKUP* dir = X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir());  // owned by the store
    if (dir == nullptr || X509_LOOKUP_add_dir(dir, nullptr, X509_FILETYPE_DEFAULT) != 1) {
      return BadOption("ca", "cannot use the system trust store");
    }
    if (std::getenv(X509_get_default_cert_file_env()) != nullptr) {
      X509_LOOKUP* file = X509_STORE_add_lookup(store, X509_LOOKUP_file());  // owned by the store
      if (file == nullptr || X509_LOOKUP_load_file(file, nullptr, X509_FILETYPE_DEFAULT) != 1) {
        return BadOption("ca", "cannot load the trust store named by SSL_CERT_FILE");
      }
    }
  } else {
    for (const std::string& pem : *o.ca) {
      TLSENGINE_ASSIGN_OR_RETURN(std::vector<OpenSslPtr<X509>> certs, ReadCertificates("ca", pem));
      for (auto& cert : certs) {
        X509_STORE_add_cert(store, cert.get());  // the store takes its own reference
        ERR_clear_error();                       // duplicates are harmless
      }
    }
  }
  for (const std::string& pem : o.crl) {
    OpenSslPtr<BIO> bio = MemoryBio(pem);
    int count = 0;
    while (OpenSslPtr<X509_CRL> crl{PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)}) {
      X509_STORE_add_crl(store, crl.get());
      ++count;
    }
    if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE) ERR_clear_error();
    if (ERR_peek_error() != 0) return BadOption("crl", "malformed PEM CRL");
    if (count == 0) return BadOption("crl", "no PEM CRL found");
  }
  if (!o.crl.empty()) X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  return absl::OkStatus();
}

std::string Describe(X509* cert) {
  char buf[256];
  X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof(buf));
  return buf;
}

// A leaf given without its intermediates: as Node (OpenSSL's auto-chain)
// does, send the chain that the context's trust store (`ca`) makes for it,
// built here once rather than on every handshake. The explicit chain we give
// SSL_CTX_use_cert_and_key, even empty, turns OpenSSL's auto-chain off.
// Best effort, as auto-chain is: whatever part of the path the store knows
// (an intermediate alone, without its root, too) is sent; the root is not
// (RFC 8446 §4.4.2 lets it be omitted, and the peer must have it anyway).
// `leaf` must be the context's current certificate (SSL_CTX_use_cert_and_key
// makes the one it adds current).
void BuildChainFromTrust(SSL_CTX* ctx, X509* leaf, std::vector<std::string>& warnings) {
  constexpr int kFlags = SSL_BUILD_CHAIN_FLAG_NO_ROOT | SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
                         SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR;
  if (SSL_CTX_build_cert_chain(ctx, kFlags) == 0) {
    // Only a CA below the security level gets here; the leaf alone is sent.
    warnings.push_back(absl::StrCat("cert: cannot send the chain of ", Describe(leaf), " built from ca (",
                                    DrainErrors(), ")"));
  }
}

// Pairs each certificate chain with the key that matches it.
absl::Status ApplyIdentities(SSL_CTX* ctx, const SecureContextOptions& o, std::vector<std::string>& warnings) {
  std::vector<OpenSslPtr<EVP_PKEY>> keys;
  for (const std::string& pem : o.key) {
    TLSENGINE_ASSIGN_OR_RETURN(OpenSslPtr<EVP_PKEY> key, ReadKey(pem, o.passphrase));
    keys.push_back(std::move(key));
  }
  std::vector<bool> used(keys.size(), false);
  for (const std::string& pem : o.cert) {
    TLSENGINE_ASSIGN_OR_RETURN(std::vector<OpenSslPtr<X509>> certs, ReadCertificates("cert", pem));
    size_t match = keys.size();
    for (size_t i = 0; i < keys.size() && match == keys.size(); ++i) {
      if (X509_check_private_key(certs[0].get(), keys[i].get()) == 1) match = i;
    }
    ERR_clear_error();
    if (match == keys.size()) {
      return MakeError(absl::StatusCode::kInvalidArgument, "ERR_TLS_KEY_MISMATCH",
                       absl::StrCat("key: no private key matches the certificate ", Describe(certs[0].get()),
                                    keys.empty() ? " (no key given)" : " (key values mismatch)"));
    }
    used[match] = true;
    OpenSslPtr<STACK_OF(X509)> chain(sk_X509_new_null());
    for (size_t i = 1; i < certs.size(); ++i) sk_X509_push(chain.get(), X509_dup(certs[i].get()));
    if (SSL_CTX_use_cert_and_key(ctx, certs[0].get(), keys[match].get(), chain.get(), 1) != 1) {
      return BadOption("cert", absl::StrCat("cannot use certificate ", Describe(certs[0].get())));
    }
    if (certs.size() == 1) BuildChainFromTrust(ctx, certs[0].get(), warnings);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!used[i]) {
      return MakeError(absl::StatusCode::kInvalidArgument, "ERR_TLS_KEY_MISMATCH",
                       absl::StrCat("key: key #", i + 1, " matches no certificate in 'cert'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyPfx(SSL_CTX* ctx, const SecureContextOptions& o) {
  TLSENGINE_ASSIGN_OR_RETURN(internal::ParsedPkcs12 pfx, internal::ParsePkcs12(o.pfx, o.passphrase));
  const OpenSslPtr<EVP_PKEY>& key = pfx.key;
  const OpenSslPtr<X509>& cert = pfx.cert;
  const OpenSslPtr<STACK_OF(X509)>& ca = pfx.ca;
  if (!key || !cert) return BadOption("pfx", "PKCS#12 holds no key and certificate");
  if (SSL_CTX_use_cert_and_key(ctx, cert.get(), key.get(), ca.get(), 1) != 1) {
    return BadOption("pfx", "key does not match the certificate");
  }
  // As Node does, the PFX's CA certificates are trusted too.
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);  // borrowed
  for (int i = 0; ca && i < sk_X509_num(ca.get()); ++i) {
    X509_STORE_add_cert(store, sk_X509_value(ca.get(), i));
  }
  ERR_clear_error();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const SecureContext>> SecureContext::Create(
    const SecureContextOptions& options) {
  return Build(options, nullptr);
}

absl::StatusOr<SSL_CTX*> SecureContext::KeylogNativeHandle() const {
  // Built on first use, once, whichever thread asks first; read-only after.
  std::call_once(keylog_once_, [this] {
    absl::StatusOr<std::shared_ptr<const SecureContext>> twin = Build(options_, data_.get());
    if (twin.ok()) {
      keylog_twin_ = *std::move(twin);
    } else {
      keylog_status_ = twin.status();
    }
  });
  if (!keylog_status_.ok()) return keylog_status_;
  return keylog_twin_->native_handle();
}

absl::StatusOr<std::shared_ptr<const SecureContext>> SecureContext::Build(const SecureContextOptions& options,
                                                                          const internal::ContextData* keylog_of) {
  ERR_clear_error();
  // Some failure paths report without draining the queue (their message
  // says more than OpenSSL's): whatever is left goes when Create returns.
  internal::ErrorQueueCleaner clean_errors_on_exit;
  std::shared_ptr<SecureContext> result(new SecureContext());
  result->options_ = options;
  result->ctx_.reset(SSL_CTX_new(TLS_method()));
  result->bio_method_.reset(internal::NewEngineBioMethod().release());
  result->data_ = std::make_unique<internal::ContextData>();
  if (!result->ctx_ || !result->bio_method_) {
    return MakeError(absl::StatusCode::kInternal, kErrInternal,
                     absl::StrCat("SSL_CTX_new failed: ", DrainErrors()));
  }
  SSL_CTX* ctx = result->ctx_.get();
  std::vector<std::string>& warnings = result->warnings_;

  int min = 0, max = 0;
  TLSENGINE_ASSIGN_OR_RETURN(min, ParseVersion("min_version", options.min_version));
  TLSENGINE_ASSIGN_OR_RETURN(max, ParseVersion("max_version", options.max_version));
  if (!options.secure_protocol.empty()) {
    TLSENGINE_RETURN_IF_ERROR(ApplySecureProtocol(options.secure_protocol, &min, &max));
  }
  if (min > max) {
    return MakeError(absl::StatusCode::kInvalidArgument, "ERR_TLS_PROTOCOL_VERSION_CONFLICT",
                     absl::StrCat("min_version: ", options.min_version,
                                  " is above max_version ", options.max_version));
  }
  if (min < TLS1_2_VERSION) {
    // TLS 1.0/1.1 sign with SHA-1/MD5, which security level 1 refuses.
    SSL_CTX_set_security_level(ctx, 0);
    warnings.push_back("TLS versions below 1.2 are enabled; they are deprecated (RFC 8996)");
  }
  SSL_CTX_set_min_proto_version(ctx, min);
  SSL_CTX_set_max_proto_version(ctx, max);

  // A renegotiation is a full handshake (it may ask for a certificate
  // that the resumed session never had).
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION);
  if (options.honor_cipher_order) SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  // SSL_MODE_AUTO_RETRY stays on (OpenSSL's default): over the engine's
  // non-blocking BIO it only means that a non-data record (a TLS 1.3 ticket)
  // does not end SSL_read while more input is buffered.

  TLSENGINE_RETURN_IF_ERROR(ApplyCiphers(ctx, options, min));

  if (options.ecdh_curve.empty()) return BadOption("ecdh_curve", "empty; use \"auto\" or a list of curves");
  if (options.ecdh_curve != "auto" &&
      SSL_CTX_set1_groups_list(ctx, options.ecdh_curve.c_str()) != 1) {
    return MakeError(absl::StatusCode::kInvalidArgument, "ERR_CRYPTO_INVALID_CURVE",
                     absl::StrCat("ecdh_curve: unknown curve in '", options.ecdh_curve, "'"));
  }
  if (!options.dhparam.empty()) {
    TLSENGINE_RETURN_IF_ERROR(ApplyDhParam(ctx, options.dhparam));
  }

  TLSENGINE_RETURN_IF_ERROR(ApplyTrust(ctx, options));
  if (!options.pfx.empty()) TLSENGINE_RETURN_IF_ERROR(ApplyPfx(ctx, options));
  TLSENGINE_RETURN_IF_ERROR(ApplyIdentities(ctx, options, warnings));

  if (keylog_of != nullptr) {
    result->data_->ticket_keys = keylog_of->ticket_keys;  // the twin shares its original's keys
  } else if (options.ticket_key_set != nullptr) {
    if (!options.ticket_keys.empty()) {
      return BadOption("ticket_keys", "must be empty when ticket_key_set is given");
    }
    result->data_->ticket_keys = options.ticket_key_set;
  } else {
    // As OpenSSL does in SSL_CTX_new, random keys when none are given,
    // private to this context: every context has keys of its own, because
    // the one that serves a handshake (SNI may switch) issues and decrypts
    // its tickets.
    TLSENGINE_ASSIGN_OR_RETURN(result->data_->ticket_keys, TicketKeys::Create(options.ticket_keys));
  }
  result->data_->session_timeout = options.session_timeout;
  result->data_->no_tickets = (options.secure_options & SSL_OP_NO_TICKET) != 0;
  TLSENGINE_ASSIGN_OR_RETURN(result->data_->npn_wire,
                             internal::ProtocolListWire("npn_protocols", options.npn_protocols));
  if (options.secure_options != 0) SSL_CTX_set_options(ctx, options.secure_options);
  internal::InstallEngineCallbacks(ctx, result->data_.get());
  // OpenSSL formats key log lines (hundreds of sprintf per handshake) for
  // any context with a callback, so only the twin that connections with
  // `keylog` use has one (KeylogNativeHandle).
  if (keylog_of != nullptr) internal::InstallKeylogCallback(ctx);

  if (options.session_timeout <= 0) {
    return BadOption("session_timeout", absl::StrCat("must be positive, got ", options.session_timeout));
  }
  SSL_CTX_set_timeout(ctx, static_cast<long>(options.session_timeout));
  if (options.session_id_context.size() > SSL_MAX_SID_CTX_LENGTH) {
    return BadOption("session_id_context",
                     absl::StrCat("longer than ", SSL_MAX_SID_CTX_LENGTH, " bytes"));
  }
  SSL_CTX_set_session_id_context(
      ctx, reinterpret_cast<const unsigned char*>(options.session_id_context.data()),
      static_cast<unsigned int>(options.session_id_context.size()));
  return std::shared_ptr<const SecureContext>(std::move(result));
}

const std::shared_ptr<TicketKeys>& SecureContext::ticket_key_set() const { return data_->ticket_keys; }

// Every key is 48 bytes.
static absl::Status CheckTicketKeys(const std::vector<std::string>& keys) {
  for (const std::string& key : keys) {
    if (key.size() != 48) {
      return BadOption("ticket_keys", absl::StrCat("Ticket keys length must be 48 bytes, got ", key.size()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<TicketKeys>> TicketKeys::Create(std::vector<std::string> keys) {
  TLSENGINE_RETURN_IF_ERROR(CheckTicketKeys(keys));
  if (keys.empty()) {
    std::string key(48, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1) {
      return MakeError(absl::StatusCode::kInternal, kErrInternal,
                       absl::StrCat("ticket_keys: RAND_bytes failed: ", DrainErrors()));
    }
    keys.push_back(std::move(key));
  }
  std::shared_ptr<TicketKeys> set(new TicketKeys());
  set->keys_ = std::make_shared<const std::vector<std::string>>(std::move(keys));
  return set;
}

absl::Status TicketKeys::Set(std::vector<std::string> keys) {
  if (keys.empty()) return BadOption("ticket_keys", "at least one key is needed");
  TLSENGINE_RETURN_IF_ERROR(CheckTicketKeys(keys));
  auto next = std::make_shared<const std::vector<std::string>>(std::move(keys));
  std::lock_guard<std::mutex> lock(mu_);
  keys_.swap(next);  // the old snapshot is freed outside the lock (with `next`)
  return absl::OkStatus();
}

std::shared_ptr<const std::vector<std::string>> TicketKeys::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return keys_;
}

// SNI names compare case-insensitively, and "example.com." is "example.com".
static std::string SniName(const std::string& hostname) {
  std::string name = absl::AsciiStrToLower(hostname);
  if (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

absl::Status SniContexts::Add(const std::string& hostname, std::shared_ptr<const SecureContext> context) {
  std::string name = SniName(hostname);
  if (name.empty() || !context) {
    return MakeError(absl::StatusCode::kInvalidArgument, "ERR_TLS_REQUIRED_SERVER_NAME",
                     "\"servername\" is required parameter for Server.addContext");
  }
  bool wildcard = absl::StartsWith(name, "*.");
  if (absl::StrContains(wildcard ? name.substr(2) : name, '*')) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     absl::StrCat("addContext: '", hostname, "': a wildcard must be the whole first label"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  (wildcard ? wildcard_[name.substr(2)] : exact_[name]) = std::move(context);
  return absl::OkStatus();
}

std::shared_ptr<const SecureContext> SniContexts::Find(const std::string& servername) const {
  std::string name = SniName(servername);
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = exact_.find(name); it != exact_.end()) return it->second;
  size_t dot = name.find('.');
  if (dot == std::string::npos || dot == 0) return nullptr;
  if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) return it->second;
  return nullptr;
}

bool SniContexts::Remove(const std::string& hostname) {
  std::string name = SniName(hostname);
  std::lock_guard<std::mutex> lock(mu_);
  if (absl::StartsWith(name, "*.")) return wildcard_.erase(name.substr(2)) > 0;
  return exact_.erase(name) > 0;
}

std::vector<std::pair<std::string, std::shared_ptr<const SecureContext>>> SniContexts::Entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<std::string, std::shared_ptr<const SecureContext>>> out(exact_.begin(), exact_.end());
  for (const auto& [suffix, context] : wildcard_) out.emplace_back(absl::StrCat("*.", suffix), context);
  return out;
}

std::vector<std::string> GetCiphers() {
  std::vector<std::string> out;
  OpenSslPtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return out;
  OpenSslPtr<SSL> ssl(SSL_new(ctx.get()));
  if (!ssl) return out;
  STACK_OF(SSL_CIPHER)* ciphers = SSL_get_ciphers(ssl.get());  // borrowed
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    out.push_back(absl::AsciiStrToLower(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(ciphers, i))));
  }
  // Node's tls.getCiphers() is sorted (and OpenSSL's order is a preference).
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace tlsengine

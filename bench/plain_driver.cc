// The baseline: the same work done with OpenSSL alone, as a careful
// application would. Two SSL objects joined by a BIO pair, the same
// certificates, X25519, the client verifying the chain and the host name
// (SSL_VERIFY_PEER + SSL_set1_host), OpenSSL's default tickets. The server
// keeps no internal session cache, as the engine's contexts do not.
#include <openssl/err.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "bench/ossl.h"
#include "bench/pair.h"
#include "core/secure_context.h"  // only for tlsengine's default cipher lists

namespace tlsengine {
namespace bench {
namespace {

// Room in each direction of the BIO pair: as much as the engine's buffers.
constexpr size_t kPairBuffer = 64 * 1024;

absl::Status OpenSslError(absl::string_view what) {
  char buf[256] = "";
  unsigned long e = ERR_get_error();
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return absl::InternalError(absl::StrCat("plain: ", what, e != 0 ? ": " : "", buf));
}

// Whether `ret` from an SSL call only means "call again after the peer ran".
bool WouldBlock(SSL* ssl, int ret) {
  int err = SSL_get_error(ssl, ret);
  return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
}

class PlainPair : public Pair {
 public:
  PlainPair(SslPtr client, SslPtr server) : client_(std::move(client)), server_(std::move(server)) {}
  ~PlainPair() override { DropClient(); }

  absl::Status Handshake() override {
    bool client_done = false, server_done = false;
    for (int turn = 0; turn < 16 && !(client_done && server_done); ++turn) {
      if (!client_done) {
        int r = SSL_do_handshake(client_.get());
        if (r == 1) client_done = true;
        else if (!WouldBlock(client_.get(), r)) return OpenSslError("client handshake");
      }
      if (!server_done) {
        int r = SSL_do_handshake(server_.get());
        if (r == 1) server_done = true;
        else if (!WouldBlock(server_.get(), r)) return OpenSslError("server handshake");
      }
    }
    if (!client_done || !server_done) return absl::InternalError("plain: handshake did not complete");
    // The client reads what followed the handshake (TLS 1.3 tickets).
    size_t n = 0;
    int r = SSL_read_ex(client_.get(), buf_, sizeof(buf_), &n);
    if (r != 1 && !WouldBlock(client_.get(), r)) return OpenSslError("client ticket read");
    return absl::OkStatus();
  }

  absl::Status Send(bool from_client, absl::Span<const uint8_t> data) override {
    SSL* from = from_client ? client_.get() : server_.get();
    SSL* to = from_client ? server_.get() : client_.get();
    size_t sent = 0, got = 0;
    for (int stalls = 0; got < data.size() && stalls < 3;) {
      size_t w = 0, r = 0;
      if (sent < data.size()) {
        int ok = SSL_write_ex(from, data.data() + sent, data.size() - sent, &w);
        if (ok != 1 && !WouldBlock(from, ok)) return OpenSslError("write");
        sent += w;
      }
      int ok = SSL_read_ex(to, buf_, sizeof(buf_), &r);
      if (ok != 1 && !WouldBlock(to, ok)) return OpenSslError("read");
      got += r;
      stalls = w > 0 || r > 0 ? 0 : stalls + 1;
    }
    if (got < data.size()) return absl::InternalError("plain: data did not arrive");
    return absl::OkStatus();
  }

  std::string Negotiated() const override {
    const SSL_CIPHER* cipher = SSL_get_current_cipher(client_.get());  // static
    const char* name = cipher != nullptr ? SSL_CIPHER_standard_name(cipher) : nullptr;
    return absl::StrCat(SSL_get_version(client_.get()), " ", name != nullptr ? name : "?", " ",
                        SSL_session_reused(client_.get()) == 1 ? "resumed" : "full");
  }

  void DropClient() override {
    if (!client_) return;
    // Freed without close_notify, an SSL marks its session not resumable
    // (ssl_clear_bad_session); this flag says the session is good, as the
    // engine's serialized kSession stays good when the engine goes.
    SSL_set_shutdown(client_.get(), SSL_SENT_SHUTDOWN);
    client_.reset();  // frees its half of the BIO pair
    // The server's half stands for the socket (kernel memory in real life),
    // so it goes too: what is left is the SSL object alone.
    SSL_set_bio(server_.get(), nullptr, nullptr);
  }

  bool ReleaseServerBuffers() override { return SSL_free_buffers(server_.get()) == 1; }

  SSL* client() const { return client_.get(); }

 private:
  SslPtr client_;
  SslPtr server_;
  uint8_t buf_[16384];
};

class PlainStack : public Stack {
 public:
  PlainStack(SslCtxPtr server, SslCtxPtr client) : server_(std::move(server)), client_(std::move(client)) {}

  absl::StatusOr<std::unique_ptr<Pair>> NewPair(bool resume) override {
    SslPtr server(SSL_new(server_.get()));
    SslPtr client(SSL_new(client_.get()));
    BIO* client_io = nullptr;
    BIO* server_io = nullptr;
    if (!server || !client || BIO_new_bio_pair(&client_io, kPairBuffer, &server_io, kPairBuffer) != 1) {
      return OpenSslError("SSL_new / BIO_new_bio_pair");
    }
    // Each SSL takes ownership of its half (one reference for both directions).
    SSL_set_bio(client.get(), client_io, client_io);
    SSL_set_bio(server.get(), server_io, server_io);
    SSL_set_accept_state(server.get());
    SSL_set_connect_state(client.get());
    if (SSL_set_tlsext_host_name(client.get(), "localhost") != 1 || SSL_set1_host(client.get(), "localhost") != 1) {
      return OpenSslError("client host name");
    }
    if (resume && SSL_set_session(client.get(), session_.get()) != 1) {  // takes its own reference
      return OpenSslError("SSL_set_session");
    }
    return std::unique_ptr<Pair>(new PlainPair(std::move(client), std::move(server)));
  }

  absl::Status Remember(Pair& pair) override {
    session_.reset(SSL_get1_session(static_cast<PlainPair&>(pair).client()));  // this stack made it
    if (!session_) return absl::InternalError("plain: the client got no session");
    return absl::OkStatus();
  }

 private:
  SslCtxPtr server_;
  SslCtxPtr client_;
  SslSessionPtr session_;
};

int ParseVersion(const std::string& version) {
  return version == "TLSv1.2" ? TLS1_2_VERSION : TLS1_3_VERSION;
}

// What both contexts share: versions, X25519, the cipher lists.
absl::Status Configure(SSL_CTX* ctx, const Config& config) {
  int version = ParseVersion(config.version);
  std::string ciphers = config.ciphers.empty() ? kDefaultCiphers : config.ciphers;
  std::string suites = config.ciphersuites.empty() ? kDefaultCipherSuites : config.ciphersuites;
  if (SSL_CTX_set_min_proto_version(ctx, version) != 1 || SSL_CTX_set_max_proto_version(ctx, version) != 1 ||
      SSL_CTX_set1_groups_list(ctx, "X25519:P-256") != 1 || SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1) {
    return OpenSslError("context configuration");
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Stack>> MakePlainStack(const Config& config) {
  const std::string dir = config.certs_dir + "/";
  SslCtxPtr server(SSL_CTX_new(TLS_server_method()));
  SslCtxPtr client(SSL_CTX_new(TLS_client_method()));
  if (!server || !client) return OpenSslError("SSL_CTX_new");
  if (absl::Status s = Configure(server.get(), config); !s.ok()) return s;
  if (absl::Status s = Configure(client.get(), config); !s.ok()) return s;
  const std::string chain = dir + config.identity + "-chain.pem";
  const std::string key = dir + config.identity + "-key.pem";
  if (SSL_CTX_use_certificate_chain_file(server.get(), chain.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(server.get(), key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(server.get()) != 1) {
    return OpenSslError(absl::StrCat("server identity ", config.identity));
  }
  // Tickets as OpenSSL issues them by default; no internal cache (as the
  // engine's contexts), the same session id context.
  SSL_CTX_set_session_cache_mode(server.get(), SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
  static const unsigned char kSidCtx[] = "tlsengine";
  SSL_CTX_set_session_id_context(server.get(), kSidCtx, sizeof(kSidCtx) - 1);
  if (SSL_CTX_load_verify_locations(client.get(), (dir + "ca1.pem").c_str(), nullptr) != 1) {
    return OpenSslError("client trust (ca1.pem)");
  }
  SSL_CTX_set_verify(client.get(), SSL_VERIFY_PEER, nullptr);
  return std::unique_ptr<Stack>(new PlainStack(std::move(server), std::move(client)));
}

}  // namespace bench
}  // namespace tlsengine

#include "fuzz/common.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/internal/openssl_util.h"
#include "core/openssl_interop.h"

namespace tlsengine {
namespace fuzz {
namespace {

// ---- Deterministic randomness: splitmix64 per stream ----

constexpr int kStreams = 3;
uint64_t g_state[kStreams];
int g_stream = 0;
absl::Time g_now;
uint64_t g_digest = 0;
// The "application's" session store of AnswerSuspension, emptied per input.
std::map<std::string, std::string> g_sessions;
std::set<const TlsConnection*> g_ended;  // connections that returned kError or kClosed
// The contexts (see Context()), made once, and the RSA keys they started
// with, of which each input gets a fresh copy.
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CachedContext {
  std::shared_ptr<const SecureContext> context;
  std::unique_ptr<EVP_PKEY, KeyFree> pristine_rsa_key;  // null unless RSA
};
std::map<Fixture, CachedContext> g_contexts;
std::shared_ptr<SniContexts> g_sni;

// RSA blinding keeps random state inside the key object and refreshes it
// from the random stream every 32 private operations, so a key shared by
// inputs makes the same input draw different numbers on different runs.
// EVP_PKEY_dup copies the key but not that state: each input signs with a
// fresh copy. (Rebuilding the contexts per input also works, as OpenSSL's
// own fuzzers do, but costs 16 times the executions per second here.)
void FreshKeys() {
  for (auto& [fixture, cached] : g_contexts) {
    if (!cached.pristine_rsa_key) continue;
    // The context and its key-log twin, which connections with `keylog`
    // use (each takes its own reference; fuzzing is single-threaded).
    absl::StatusOr<SSL_CTX*> twin = KeylogNativeHandle(*cached.context);
    if (!twin.ok()) std::abort();
    for (SSL_CTX* ctx : {NativeHandle(*cached.context), *twin}) {
      std::unique_ptr<EVP_PKEY, KeyFree> copy(EVP_PKEY_dup(cached.pristine_rsa_key.get()));
      if (!copy || SSL_CTX_use_PrivateKey(ctx, copy.get()) != 1) std::abort();
    }
  }
}
std::function<void(const Event&)> g_observer;

uint64_t NextRandom() {
  uint64_t z = (g_state[g_stream] += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int RandomBytes(unsigned char* buf, int num) {
  for (int i = 0; i < num; i += 8) {
    uint64_t r = NextRandom();
    for (int j = 0; j < 8 && i + j < num; ++j) buf[i + j] = static_cast<unsigned char>(r >> (8 * j));
  }
  return 1;
}

int RandomStatus() { return 1; }

const RAND_METHOD kDeterministicRandom = {
    nullptr, RandomBytes, nullptr, nullptr, RandomBytes, RandomStatus,
};

void InstallOnce() {
  static const bool installed = [] {
    RAND_set_rand_method(&kDeterministicRandom);
    return true;
  }();
  (void)installed;
}

absl::Time Epoch() { return absl::FromUnixSeconds(1906502400); }  // 2030-06-01, as TestNow()

}  // namespace

void UseStream(Stream stream) {
  InstallOnce();
  g_stream = static_cast<int>(stream);
}

void ResetDeterminism() {
  InstallOnce();
  for (int i = 0; i < kStreams; ++i) g_state[i] = 0x1234567890ABCDEFull * (i + 1);
  g_stream = 0;
  g_now = Epoch();
  g_digest = 1469598103934665603ull;
  g_sessions.clear();
  g_ended.clear();
  FreshKeys();
}

absl::Time Now() { return g_now == absl::Time() ? Epoch() : g_now; }
void Advance(absl::Duration d) { g_now = Now() + d; }

void RecordOutput(absl::Span<const uint8_t> bytes) {
  for (uint8_t b : bytes) g_digest = (g_digest ^ b) * 1099511628211ull;  // FNV-1a
}

uint64_t OutputDigest() { return g_digest; }

// ---- Input ----

uint8_t Input::Byte() { return empty() ? 0 : data_[pos_++]; }

uint16_t Input::U16() {
  uint16_t hi = Byte();
  return static_cast<uint16_t>((hi << 8) | Byte());
}

absl::string_view Input::Bytes(size_t n) {
  n = std::min(n, remaining());
  absl::string_view out(reinterpret_cast<const char*>(data_ + pos_), n);
  pos_ += n;
  return out;
}

void AppendChunk(std::string* out, absl::string_view chunk) {
  for (size_t at = 0; at < chunk.size() || (at == 0 && chunk.empty()); at += 65535) {
    size_t n = std::min<size_t>(65535, chunk.size() - at);
    out->push_back(static_cast<char>(n >> 8));
    out->push_back(static_cast<char>(n & 0xff));
    out->append(chunk.data() + at, n);
    if (chunk.empty()) break;
  }
}

// ---- Fixtures ----

std::string ReadCert(const std::string& name) {
  static std::map<std::string, std::string>* cache = new std::map<std::string, std::string>();
  auto it = cache->find(name);
  if (it != cache->end()) return it->second;
  const char* dir = std::getenv("TLSENGINE_CERTS");
  std::ifstream in(std::string(dir != nullptr ? dir : "tests/certs") + "/" + name, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fuzz: cannot read test certificate %s (set TLSENGINE_CERTS)\n", name.c_str());
    std::abort();
  }
  std::ostringstream s;
  s << in.rdbuf();
  return (*cache)[name] = s.str();
}

std::shared_ptr<const SecureContext> Context(Fixture fixture) {
  auto it = g_contexts.find(fixture);
  if (it != g_contexts.end()) return it->second.context;
  static const struct {
    const char* identity;
    const char* version;
  } kFixtures[] = {
      {"server-rsa", ""}, {"server-ecdsa", ""}, {"server-rsa", "TLSv1.2"}, {"other-name", ""},
      {"wildcard", ""},   {"", ""},             {"client", ""},             {"", "TLSv1.2"},
  };
  const auto& f = kFixtures[static_cast<int>(fixture)];
  SecureContextOptions o;
  if (*f.identity != '\0') {
    o.key = {ReadCert(std::string(f.identity) + "-key.pem")};
    o.cert = {ReadCert(std::string(f.identity) + "-chain.pem")};
  }
  o.ca = std::vector<std::string>{ReadCert("ca1.pem")};
  if (*f.version != '\0') o.min_version = o.max_version = f.version;
  o.npn_protocols = {"http/1.1"};
  // Each fixture from its own seed: the same keys whatever the order.
  int saved_stream = g_stream;
  uint64_t saved_setup = g_state[0];
  g_stream = 0;
  g_state[0] = 0xC0FFEEull + static_cast<uint64_t>(fixture);
  auto ctx = SecureContext::Create(o);
  // Its key-log twin is built on first use: here, from the same seed, so
  // that it does not depend on which input asks first.
  if (ctx.ok() && !KeylogNativeHandle(**ctx).ok()) std::abort();
  g_state[0] = saved_setup;
  g_stream = saved_stream;
  if (!ctx.ok()) {
    std::fprintf(stderr, "fuzz: %s\n", ctx.status().ToString().c_str());
    std::abort();
  }
  CachedContext& cached = g_contexts[fixture];
  cached.context = *ctx;
  EVP_PKEY* key = SSL_CTX_get0_privatekey(NativeHandle(**ctx));  // borrowed
  if (key != nullptr && EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
    cached.pristine_rsa_key.reset(EVP_PKEY_dup(key));
    // The first input must not sign with the original either: it has not
    // been used yet, but only a copy behaves like every later input's key.
    FreshKeys();
  }
  return cached.context;
}

std::shared_ptr<SniContexts> SniTable() {
  if (!g_sni) {
    g_sni = std::make_shared<SniContexts>();
    g_sni->Add("other.example.com", Context(Fixture::kOtherName)).IgnoreError();
    g_sni->Add("*.example.com", Context(Fixture::kWildcard)).IgnoreError();
  }
  return g_sni;
}

ServerConfig MakeServerConfig(uint8_t a, uint8_t b) {
  ServerConfig c;
  ConnectionOptions& o = c.options;
  o.is_server = true;
  o.secure_context = Context((a & 3) == 1   ? Fixture::kServerTls12
                             : (a & 3) == 2 ? Fixture::kServerEcdsa
                                            : Fixture::kServerRsa);
  if (a & 4) o.alpn_protocols = {"h2", "http/1.1"};
  if (a & 8) o.sni_contexts = SniTable();
  o.sni_callback = (a & 16) != 0;
  o.request_cert = (a & 32) != 0;
  o.session_cache = (a & 64) != 0;
  o.ocsp_request = (a & 128) != 0;
  c.async_answers = (b & 1) != 0;
  o.reject_unauthorized = (b & 2) != 0;
  o.keylog = (b & 4) != 0;
  o.allow_client_renegotiation = (b & 8) != 0;
  o.client_reneg_limit = (b >> 4) & 3;
  return c;
}

ClientConfig MakeClientConfig(uint8_t a, uint8_t b) {
  ClientConfig c;
  ConnectionOptions& o = c.options;
  o.secure_context = Context((a & 3) == 1   ? Fixture::kClientTls12
                             : (a & 3) == 2 ? Fixture::kClientWithCert
                                            : Fixture::kClient);
  static const char* const kNames[] = {"localhost", "other.example.com", "", "a.example.com"};
  o.servername = kNames[(a >> 2) & 3];
  if (o.servername.empty()) o.host = "127.0.0.1";
  if (a & 16) o.alpn_protocols = {"http/1.1", "h2"};
  o.request_ocsp = (a & 32) != 0;
  o.reject_unauthorized = (a & 64) != 0;
  o.keylog = (a & 128) != 0;
  o.post_handshake_auth = (b & 1) != 0;
  return c;
}

void AnswerSuspension(TlsConnection& conn, const Event& event) {
  std::map<std::string, std::string>* sessions = &g_sessions;
  switch (event.type) {
    case EventType::kSniRequest:
      conn.AnswerSni(SniTable()->Find(event.servername)).IgnoreError();
      break;
    case EventType::kResumeSession: {
      auto it = sessions->find(event.session_id);
      conn.AnswerResumeSession(it == sessions->end() ? "" : it->second).IgnoreError();
      break;
    }
    case EventType::kNewSession:
      if (sessions->size() < 64) (*sessions)[event.session_id] = event.session;
      conn.AckNewSession().IgnoreError();
      break;
    case EventType::kOcspRequest: {
      static const std::string* response = new std::string(ReadCert("server-rsa-ocsp.der"));
      conn.AnswerOcspRequest(*response).IgnoreError();
      break;
    }
    default:
      break;
  }
}

std::string FeedAndPoll(TlsConnection& conn, absl::string_view bytes, std::vector<Event>* pending) {
  std::string out;
  while (!bytes.empty() && !conn.finished()) {
    absl::Span<uint8_t> space = conn.InputSpace();
    size_t n = std::min(space.size(), bytes.size());
    if (n == 0) break;  // backpressure: the engine needs polling first
    std::memcpy(space.data(), bytes.data(), n);
    if (!conn.CommitInput(n).ok()) break;
    bytes.remove_prefix(n);
    out += PollAndDrain(conn, pending);
  }
  return out;
}

X509_STORE* TrustStore() {
  static X509_STORE* store = [] {
    X509_STORE* s = X509_STORE_new();  // lives for the process
    const std::string pem = ReadCert("ca1.pem");  // outlives the BIO over it
    internal::OpenSslPtr<BIO> bio = internal::MemoryBio(pem);
    internal::OpenSslPtr<X509> ca(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (s == nullptr || !ca || X509_STORE_add_cert(s, ca.get()) != 1) {
      std::fprintf(stderr, "fuzz: cannot make the trust store: %s\n", internal::DrainErrors().c_str());
      std::abort();
    }
    return s;
  }();
  return store;
}

std::string IdentityHost(const ConnectionOptions& client) {
  if (!client.servername.empty()) return client.servername;
  return client.host.empty() ? "localhost" : client.host;
}

bool AuthorizedImpliesOracle(const TlsConnection& client, X509_STORE* trust, const std::string& host,
                             absl::Time now) {
  if (!client.authorized()) return true;
  std::optional<CertificateInfo> peer = client.GetPeerCertificate(/*detailed=*/true);
  if (!peer) return false;  // authorized, with no certificate
  auto parse = [](const std::string& der) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    return internal::OpenSslPtr<X509>(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  };
  internal::OpenSslPtr<X509> leaf = parse(peer->raw);
  internal::OpenSslPtr<STACK_OF(X509)> chain(sk_X509_new_null());
  for (auto issuer = peer->issuer_certificate; issuer != nullptr; issuer = issuer->issuer_certificate) {
    internal::OpenSslPtr<X509> cert = parse(issuer->raw);
    if (cert && sk_X509_push(chain.get(), cert.get()) > 0) cert.release();  // the stack owns it
  }
  internal::OpenSslPtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!leaf || !ctx || X509_STORE_CTX_init(ctx.get(), trust, leaf.get(), chain.get()) != 1) return false;
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), absl::ToTimeT(now));
  const bool chain_ok = X509_verify_cert(ctx.get()) == 1;
  std::string bare = host;
  if (bare.size() >= 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
  internal::OpenSslPtr<ASN1_OCTET_STRING> ip(a2i_IPADDRESS(bare.c_str()));
  std::string name = host;
  if (!name.empty() && name.back() == '.') name.pop_back();  // RFC 6125 ignores it; OpenSSL does not
  const bool host_ok =
      ip ? X509_check_ip_asc(leaf.get(), bare.c_str(), 0) == 1
         : X509_check_host(leaf.get(), name.data(), name.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
  ERR_clear_error();
  return chain_ok && host_ok;
}

void SetEventObserver(std::function<void(const Event&)> observer) { g_observer = std::move(observer); }

std::string PollAndDrain(TlsConnection& conn, std::vector<Event>* pending) {
  while (std::optional<Event> ev = conn.NextEvent(Now())) {
    if (g_ended.count(&conn) > 0) std::abort();  // nothing after the end
    if (ev->type == EventType::kError || ev->type == EventType::kClosed) g_ended.insert(&conn);
    if (g_observer) g_observer(*ev);
    bool suspension = ev->type == EventType::kSniRequest || ev->type == EventType::kResumeSession ||
                      ev->type == EventType::kNewSession || ev->type == EventType::kOcspRequest;
    if (suspension && pending != nullptr) {
      Event copy = *ev;
      copy.data = {};
      pending->push_back(std::move(copy));
    } else if (suspension) {
      AnswerSuspension(conn, *ev);
    }
  }
  std::string out;
  for (;;) {
    const bool announced = conn.interest().write;
    auto span = conn.Output();
    if (span.empty()) {
      if (conn.interest().write) std::abort();  // would make an adapter spin
      break;
    }
    if (!announced) std::abort();  // an adapter would never have asked
    size_t taken = 0;  // every span, as a writev would
    for (absl::Span<const uint8_t> piece : span) {
      RecordOutput(piece);
      out.append(reinterpret_cast<const char*>(piece.data()), piece.size());
      taken += piece.size();
    }
    if (!conn.ConsumeOutput(taken).ok()) std::abort();
  }
  return out;
}

}  // namespace fuzz
}  // namespace tlsengine

// OpenSSL's own clock, for reproducible session times and ticket ages (as
// OpenSSL's fuzz/server.c does). Linked only into fuzz binaries.
extern "C" time_t time(time_t* t) {
  time_t now = absl::ToTimeT(tlsengine::fuzz::Now());
  if (t != nullptr) *t = now;
  return now;
}

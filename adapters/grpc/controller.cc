// The controller's state lives on one epoll loop (LoopGroup of 1): every
// map below is touched only there, through Run(). Blocking waits (Connect's
// handshake, Read, WatchEvents) happen on the caller's thread, on small
// mutex + condvar mailboxes the loop fills; the loop never waits for a
// caller, so there is no lock-order cycle.
#include "adapters/grpc/controller.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "adapters/epoll/server.h"
#include "adapters/epoll/session_store.h"
#include "adapters/epoll/socket.h"
#include "core/certificate.h"
#include "core/errors.h"
#include "core/ocsp.h"
#include "core/pkcs12.h"
#include "core/secure_context.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace control {
namespace {

using epoll::Server;
using epoll::TlsSocket;

constexpr char kLimitCode[] = "ERR_TLS_CONTROL_LIMIT";
constexpr size_t kTicketKeyBytes = 48;
constexpr size_t kMaxIdBytes = 64;
constexpr size_t kMaxNameBytes = 253;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, absl::StrCat(field, ": ", what));
}
absl::Status NotFound(absl::string_view field, absl::string_view id) {
  return MakeError(absl::StatusCode::kNotFound, "ERR_TLS_CONTROL_NOT_FOUND",
                   absl::StrCat(field, ": no such id \"", absl::CHexEscape(id), "\""));
}
absl::Status Precondition(absl::string_view code, absl::string_view what) {
  return MakeError(absl::StatusCode::kFailedPrecondition, code, what);
}
absl::Status Limit(absl::string_view what, size_t limit) {
  return MakeError(absl::StatusCode::kResourceExhausted, kLimitCode, absl::StrCat(what, " (limit ", limit, ")"));
}
// An error from core or the adapter, with the field it came from in front.
absl::Status Prefixed(absl::string_view field, const absl::Status& s) {
  absl::Status out(s.code(), absl::StrCat(field, ": ", s.message()));
  s.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

absl::Status CheckId(absl::string_view field, const std::string& id) {
  if (id.empty()) return Invalid(field, "required");
  if (id.size() > kMaxIdBytes) return Invalid(field, "longer than 64 bytes");
  return absl::OkStatus();
}

absl::Status CheckText(absl::string_view field, const std::string& s, size_t max) {
  if (s.size() > max) return Invalid(field, absl::StrCat("longer than ", max, " bytes"));
  return absl::OkStatus();
}

// ALPN or NPN names: at most 32, each 1..255 bytes (one length byte on
// the wire).
absl::Status CheckProtocols(absl::string_view field, const google::protobuf::RepeatedPtrField<std::string>& names) {
  if (names.size() > 32) return Invalid(field, "more than 32 entries");
  for (int i = 0; i < names.size(); ++i) {
    if (names[i].empty() || names[i].size() > 255) return Invalid(absl::StrCat(field, "[", i, "]"), "must be 1..255 bytes");
  }
  return absl::OkStatus();
}

// Node's ticketKeys: 48 bytes per key, at most 16 keys, split into keys.
absl::StatusOr<std::vector<std::string>> SplitTicketKeys(const std::string& keys) {
  if (keys.size() % kTicketKeyBytes != 0 || keys.size() > kTicketKeyBytes * 16) {
    return Invalid("ticketKeys",
                   absl::StrCat("must be 48 bytes per key (at most 16 keys), not ", keys.size(), " bytes"));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < keys.size(); i += kTicketKeyBytes) out.push_back(keys.substr(i, kTicketKeyBytes));
  return out;
}

// Where Listen binds or Connect goes: a unix path, or host and port.
absl::Status CheckEndpoint(const std::string& path, const std::string& host, int port) {
  if (!path.empty() && (!host.empty() || port != 0)) return Invalid("path", "give path, or host and port, not both");
  if (path.size() > 107) return Invalid("path", "longer than a unix socket path can be (107 bytes)");
  if (port < 0 || port > 65535) return Invalid("port", "must be 0..65535");
  return CheckText("host", host, kMaxNameBytes);
}

// What one request may still make the daemon read from files it names.
struct FileBudget {
  size_t bytes_left;
  size_t bytes_limit;
};

// Reads a file the request names, with the daemon's rights: a regular file
// of at most `max` bytes, and at most what `budget` (may be null) has left.
// Never reads past the bound, never blocks on a FIFO or device.
absl::StatusOr<std::string> ReadFileField(absl::string_view field, const std::string& path, size_t max,
                                          FileBudget* budget = nullptr) {
  if (path.empty()) return Invalid(field, "empty path");
  if (path.size() > 4096 || path.find('\0') != std::string::npos) return Invalid(field, "bad path");
  int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return Invalid(field, absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  absl::Cleanup closer = [fd] { close(fd); };
  struct stat st {};
  if (fstat(fd, &st) != 0) return Invalid(field, absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) return Invalid(field, absl::StrCat(path, " is not a regular file"));
  auto too_big = [&] { return Invalid(field, absl::StrCat(path, " is larger than ", max, " bytes")); };
  auto over_budget = [&] {
    return Limit(absl::StrCat(field, ": ", path, ": more bytes than one request may read from files"),
                 budget->bytes_limit);
  };
  size_t cap = budget != nullptr ? std::min(max, budget->bytes_left) : max;
  size_t size = static_cast<size_t>(st.st_size);
  if (size > max) return too_big();
  if (size > cap) return over_budget();
  std::string data;
  data.reserve(size);
  char chunk[16384];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Invalid(field, absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
    if (n == 0) break;
    if (data.size() + static_cast<size_t>(n) > cap) return data.size() + n > max ? too_big() : over_budget();
    data.append(chunk, static_cast<size_t>(n));
  }
  if (data.empty()) return Invalid(field, absl::StrCat(path, " is empty"));
  if (budget != nullptr) budget->bytes_left -= data.size();
  return data;
}

// One value given inline or as a file the daemon reads (not both); "" when
// neither.
absl::StatusOr<std::string> InlineOrFile(absl::string_view inline_name, const std::string& inline_value,
                                         absl::string_view file_name, const std::string& file, size_t max,
                                         FileBudget* budget = nullptr) {
  if (!inline_value.empty() && !file.empty()) {
    return Invalid(file_name, absl::StrCat("give ", inline_name, " or ", file_name, ", not both"));
  }
  if (absl::Status s = CheckText(inline_name, inline_value, max); !s.ok()) return s;
  if (file.empty()) return inline_value;
  return ReadFileField(file_name, file, max, budget);
}

// Inline values, then the files' contents, each checked for size.
absl::StatusOr<std::vector<std::string>> Gather(absl::string_view inline_name,
                                                const google::protobuf::RepeatedPtrField<std::string>& inline_values,
                                                absl::string_view file_name,
                                                const google::protobuf::RepeatedPtrField<std::string>& files,
                                                size_t max, FileBudget* budget) {
  std::vector<std::string> out;
  for (int i = 0; i < inline_values.size(); ++i) {
    std::string field = absl::StrCat(inline_name, "[", i, "]");
    if (inline_values[i].empty()) return Invalid(field, "empty");
    if (absl::Status s = CheckText(field, inline_values[i], max); !s.ok()) return s;
    out.push_back(inline_values[i]);
  }
  for (int i = 0; i < files.size(); ++i) {
    absl::StatusOr<std::string> data = ReadFileField(absl::StrCat(file_name, "[", i, "]"), files[i], max, budget);
    if (!data.ok()) return data.status();
    out.push_back(*std::move(data));
  }
  return out;
}

std::string Lower(std::string s) {
  absl::AsciiStrToLower(&s);
  return s;
}

// "example.com" or "*.example.com": the SniContexts rules, checked by a
// throwaway table so that a bad name changes nothing.
absl::Status CheckServername(absl::string_view field, const std::string& name,
                             const std::shared_ptr<const SecureContext>& any) {
  if (name.size() > kMaxNameBytes) return Invalid(field, "longer than 253 bytes");
  SniContexts probe;
  if (absl::Status s = probe.Add(name, any); !s.ok()) return Prefixed(field, s);
  return absl::OkStatus();
}

struct OcspInfo {
  std::string der;
  std::string next_update;  // "" when absent
};

// A DER OCSPResponse core accepts for stapling (status "successful").
absl::StatusOr<OcspInfo> ParseOcsp(absl::string_view field, const std::string& der) {
  absl::StatusOr<OcspResponseInfo> parsed = ParseOcspResponse(der);
  if (!parsed.ok()) return Prefixed(field, parsed.status());
  return OcspInfo{der, parsed->next_update};
}

// The certificates a context serves: each `cert` string's leaf, or the
// PFX's certificate.
std::vector<CertificateInfo> ServedCertificates(const SecureContextOptions& o) {
  std::vector<CertificateInfo> out;
  for (const std::string& pem : o.cert) {
    absl::StatusOr<CertificateInfo> info = CertificateInfo::FromPem(pem);
    if (info.ok()) out.push_back(*std::move(info));
  }
  if (!o.pfx.empty()) {
    absl::StatusOr<Pkcs12Contents> pfx = ReadPkcs12(o.pfx, o.passphrase);
    if (pfx.ok()) out.push_back(std::move(pfx->certificate));
  }
  return out;
}

void FillSummary(const CertificateInfo& c, absl::Time now, v1::CertificateSummary* out) {
  out->set_subject(c.subject.ToString());
  for (const std::string& d : c.DnsNames()) out->add_subjectaltname(absl::StrCat("DNS:", d));
  for (const std::string& ip : c.IpAddresses()) out->add_subjectaltname(absl::StrCat("IP Address:", ip));
  out->set_issuer(c.issuer.ToString());
  out->set_serial_number(c.serial_number);
  out->set_fingerprint256(c.fingerprint256);
  out->set_valid_from(c.valid_from);
  out->set_valid_to(c.valid_to);
  int64_t secs = c.valid_to_unix - absl::ToUnixSeconds(now);
  // Envoy's days_until_expiration: whole days, rounded down (negative once
  // expired).
  out->set_days_until_expiration(secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400));
}

void FillAddress(const epoll::SocketAddress& a, v1::SocketAddress* out) {
  out->set_address(a.address);
  out->set_family(a.family);
  out->set_port(a.port);
}

// What the loop tells a waiting caller.
template <typename T>
struct Mailbox {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  T value;
  void Set(T v) {
    std::lock_guard<std::mutex> l(mu);
    if (done) return;
    done = true;
    value = std::move(v);
    cv.notify_all();
  }
  // False on timeout.
  bool Wait(absl::Duration d) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, absl::ToChronoMilliseconds(d), [&] { return done; });
  }
};

// Plaintext held for Read.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> chunks;
  size_t bytes = 0;
  bool ended = false;   // peer ended
  bool closed = false;  // socket closed
  std::string error;    // Node code it closed with
  bool reader = false;  // a Read is running
};

struct TicketKey {
  std::string key;
  absl::Time retire = absl::InfiniteFuture();  // the first (encrypting) never retires
};

struct Stats {
  uint64_t total = 0;
  std::map<std::string, uint64_t> handshakes, protocols, ciphers;
  uint64_t resumed = 0;
  uint64_t bytes_in = 0, bytes_out = 0;  // of closed connections
};

struct Listener {
  std::string id;
  std::string context_id;
  std::string mode;
  std::unique_ptr<Server> server;
  std::map<std::string, std::string> sni;  // lower-case name or pattern -> context id
  std::map<std::string, OcspInfo> ocsp;    // "" (default) or sni key -> response
  std::vector<TicketKey> keys;
  absl::Duration session_timeout = absl::Seconds(300);
  std::shared_ptr<epoll::MemorySessionStore> store;  // null: no session cache
  Stats stats;
  bool closing = false;
  std::shared_ptr<Mailbox<bool>> closed = std::make_shared<Mailbox<bool>>();
};

struct Conn {
  std::string id;
  uint64_t number = 0;
  std::string listener_id;  // "" for clients
  std::string mode;         // "echo" or "hold"
  std::shared_ptr<TlsSocket> socket;
  std::shared_ptr<Inbox> inbox = std::make_shared<Inbox>();
  absl::Time created;
  bool closed = false;
  bool paused = false;
  std::string session;  // client: the latest
  absl::Status close_status;
};

struct Watcher {
  std::string listener_id;
  std::vector<std::string> types;
  std::deque<v1::ControlEvent> queue;
  uint64_t dropped = 0;
  bool stopped = false;
};

}  // namespace

class Controller::State {
 public:
  explicit State(ControllerOptions o) : options_(std::move(o)), limits_(options_.limits) {
    if (!options_.clock) options_.clock = [] { return absl::Now(); };
  }

  absl::Status Start() {
    absl::StatusOr<std::unique_ptr<epoll::LoopGroup>> g = epoll::LoopGroup::Start(1);
    if (!g.ok()) return g.status();
    group_ = *std::move(g);
    loop_ = group_->loops()[0];
    return absl::OkStatus();
  }

  // Runs `fn` on the loop and waits. kUnavailable once shut down.
  absl::Status Run(const std::function<void()>& fn) {
    std::lock_guard<std::mutex> l(run_mu_);
    if (stopped_) return MakeError(absl::StatusCode::kUnavailable, "ERR_SERVER_NOT_RUNNING", "the controller is shut down");
    // A loop whose Run() failed runs nothing more: say why instead of
    // waiting for it.
    if (absl::Status dead = group_->status(); !dead.ok()) return dead;
    group_->RunOn(0, fn);
    return absl::OkStatus();
  }
  template <typename T>
  absl::StatusOr<T> RunFor(const std::function<absl::StatusOr<T>()>& fn) {
    absl::StatusOr<T> out = absl::InternalError("not run");
    absl::Status ran = Run([&] { out = fn(); });
    if (!ran.ok()) return ran;
    return out;
  }

  void Shutdown() {
    {
      std::lock_guard<std::mutex> l(run_mu_);
      if (stopped_ || group_ == nullptr) return;
    }
    // Close everything, then wait (bounded) for the sockets to report close.
    Run([&] {
      for (auto& [id, l] : listeners_) {
        if (!l->closing) {
          l->closing = true;
          auto closed = l->closed;
          if (!l->server->Close([closed] { closed->Set(true); }).ok()) closed->Set(true);
        }
      }
      for (auto& [id, c] : conns_) {
        if (!c->closed) c->socket->Destroy();
      }
    }).IgnoreError();
    absl::Time until = absl::Now() + absl::Seconds(5);
    for (;;) {
      bool all = true;
      Run([&] {
        for (auto& [id, c] : conns_) all = all && c->closed;
        for (auto& [id, l] : listeners_) all = all && l->closed->done;
      }).IgnoreError();
      if (all || absl::Now() > until) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    Run([&] {
      conns_.clear();
      listeners_.clear();
      closed_order_.clear();
    }).IgnoreError();
    {
      std::lock_guard<std::mutex> w(watch_mu_);
      stopped_watching_ = true;
      for (auto& wt : watchers_) wt->stopped = true;
      watch_cv_.notify_all();
    }
    std::lock_guard<std::mutex> l(run_mu_);
    stopped_ = true;
    // The service is going away: a loop that had failed has answered
    // every call since with its error (Run); nobody is left to tell.
    group_->Stop().IgnoreError();
  }

  absl::StatusOr<v1::GetCiphersResponse> GetCiphers(const v1::GetCiphersRequest&) {
    v1::GetCiphersResponse resp;
    for (const std::string& c : tlsengine::GetCiphers()) resp.add_ciphers(c);
    return resp;
  }

  // ---------------------------------------------------------------- events
  void Publish(v1::ControlEvent ev) {
    ev.set_time(absl::ToUnixMillis(options_.clock()));
    std::lock_guard<std::mutex> l(watch_mu_);
    for (auto& w : watchers_) {
      if (!w->listener_id.empty() && w->listener_id != ev.listener_id()) continue;
      if (!w->types.empty() && std::find(w->types.begin(), w->types.end(), ev.type()) == w->types.end()) continue;
      if (w->queue.size() >= limits_.watcher_queue) {
        ++w->dropped;
        continue;
      }
      w->queue.push_back(ev);
    }
    watch_cv_.notify_all();
  }
  void PublishChange(const v1::ChangeResponse& change) {
    v1::ControlEvent ev;
    ev.set_type("change");
    ev.set_listener_id(change.listener_id());
    ev.set_servername(change.servername());
    ev.set_message(change.description());
    *ev.mutable_change() = change;
    Publish(std::move(ev));
  }

  absl::Status WatchEvents(const v1::WatchEventsRequest& req, const std::function<bool(const v1::ControlEvent&)>& emit,
                           const std::function<bool()>& cancelled, const std::function<void()>& ready) {
    if (!req.listener_id().empty()) {
      if (absl::Status s = CheckId("listenerId", req.listener_id()); !s.ok()) return s;
    }
    static const char* kTypes[] = {"secureConnection", "secureConnect", "clientError", "newSession", "session",
                                   "OCSPRequest", "OCSPResponse", "close", "change"};
    if (req.types_size() > 16) return Invalid("types", "more than 16 entries");
    for (int i = 0; i < req.types_size(); ++i) {
      if (std::find(std::begin(kTypes), std::end(kTypes), req.types(i)) == std::end(kTypes)) {
        return Invalid(absl::StrCat("types[", i, "]"),
                       absl::StrCat("unknown event \"", absl::CHexEscape(req.types(i)), "\"; one of ",
                                    absl::StrJoin(kTypes, ", ")));
      }
    }
    auto w = std::make_shared<Watcher>();
    w->listener_id = req.listener_id();
    w->types.assign(req.types().begin(), req.types().end());
    {
      std::lock_guard<std::mutex> l(watch_mu_);
      if (static_cast<int>(watchers_.size()) >= limits_.max_watchers) {
        return Limit("too many WatchEvents streams", limits_.max_watchers);
      }
      if (stopped_watching_) return MakeError(absl::StatusCode::kUnavailable, "", "shut down");
      watchers_.push_back(w);
    }
    if (ready) ready();
    absl::Status result;
    std::unique_lock<std::mutex> l(watch_mu_);
    for (;;) {
      watch_cv_.wait_for(l, std::chrono::milliseconds(50), [&] { return !w->queue.empty() || w->stopped; });
      if (w->stopped) break;
      if (cancelled && cancelled()) break;
      if (w->queue.empty()) continue;
      v1::ControlEvent ev = std::move(w->queue.front());
      w->queue.pop_front();
      ev.set_dropped(w->dropped);
      w->dropped = 0;
      l.unlock();
      bool more = emit(ev);
      l.lock();
      if (!more) break;
    }
    watchers_.erase(std::remove(watchers_.begin(), watchers_.end(), w), watchers_.end());
    return result;
  }

  // -------------------------------------------------------------- contexts
  absl::StatusOr<v1::CreateContextResponse> CreateContext(const v1::CreateContextRequest& r) {
    const size_t max = limits_.max_field_bytes;
    // Every file is counted before any is opened; what they hold is
    // counted as they are read.
    int files = r.key_file_size() + r.cert_file_size() + r.ca_file_size() + r.crl_file_size() +
                !r.pfx_file().empty() + !r.dhparam_file().empty();
    if (files > limits_.max_files_per_request) {
      return Limit(absl::StrCat("CreateContext names ", files, " files"), limits_.max_files_per_request);
    }
    FileBudget budget{limits_.max_file_bytes_per_request, limits_.max_file_bytes_per_request};
    SecureContextOptions o;
    absl::StatusOr<std::vector<std::string>> v = Gather("key", r.key(), "keyFile", r.key_file(), max, &budget);
    if (!v.ok()) return v.status();
    o.key = *std::move(v);
    v = Gather("cert", r.cert(), "certFile", r.cert_file(), max, &budget);
    if (!v.ok()) return v.status();
    o.cert = *std::move(v);
    v = Gather("ca", r.ca(), "caFile", r.ca_file(), max, &budget);
    if (!v.ok()) return v.status();
    if (!v->empty() && r.ca_empty()) return Invalid("caEmpty", "cannot be set together with ca or caFile");
    if (!v->empty() || r.ca_empty()) o.ca = *std::move(v);
    v = Gather("crl", r.crl(), "crlFile", r.crl_file(), max, &budget);
    if (!v.ok()) return v.status();
    o.crl = *std::move(v);
    if (absl::Status s = CheckText("passphrase", r.passphrase(), 1024); !s.ok()) return s;
    o.passphrase = r.passphrase();
    absl::StatusOr<std::string> one = InlineOrFile("pfx", r.pfx(), "pfxFile", r.pfx_file(), max, &budget);
    if (!one.ok()) return one.status();
    o.pfx = *std::move(one);
    one = InlineOrFile("dhparam", r.dhparam(), "dhparamFile", r.dhparam_file(), max, &budget);
    if (!one.ok()) return one.status();
    o.dhparam = *std::move(one);
    const std::pair<const char*, const std::string*> texts[] = {
        {"ciphers", &r.ciphers()},          {"ciphersuites", &r.ciphersuites()},
        {"ecdhCurve", &r.ecdh_curve()},     {"minVersion", &r.min_version()},
        {"maxVersion", &r.max_version()},   {"secureProtocol", &r.secure_protocol()},
        {"sessionIdContext", &r.session_id_context()}};
    for (const auto& [name, value] : texts) {
      if (absl::Status s = CheckText(name, *value, 4096); !s.ok()) return s;
    }
    o.ciphers = r.ciphers();
    o.ciphersuites = r.ciphersuites();
    o.honor_cipher_order = r.honor_cipher_order();
    if (!r.ecdh_curve().empty()) o.ecdh_curve = r.ecdh_curve();
    if (!r.min_version().empty()) o.min_version = r.min_version();
    if (!r.max_version().empty()) o.max_version = r.max_version();
    o.secure_protocol = r.secure_protocol();
    if (r.has_session_timeout()) {
      if (r.session_timeout() < 0 || r.session_timeout() > 86400 * 365) {
        return Invalid("sessionTimeout", "must be 0..31536000 seconds");
      }
      o.session_timeout = r.session_timeout();
    }
    if (!r.session_id_context().empty()) o.session_id_context = r.session_id_context();
    absl::StatusOr<std::vector<std::string>> keys = SplitTicketKeys(r.ticket_keys());
    if (!keys.ok()) return keys.status();
    o.ticket_keys = *std::move(keys);
    o.secure_options = r.secure_options();
    if (absl::Status s = CheckProtocols("NPNProtocols", r.npn_protocols()); !s.ok()) return s;
    o.npn_protocols.assign(r.npn_protocols().begin(), r.npn_protocols().end());
    // Parse and check everything before registering anything.
    absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(o);
    if (!ctx.ok()) return ctx.status();
    std::vector<CertificateInfo> certs = ServedCertificates(o);
    absl::Time now = options_.clock();
    return RunFor<v1::CreateContextResponse>([&]() -> absl::StatusOr<v1::CreateContextResponse> {
      if (static_cast<int>(contexts_.size()) >= limits_.max_contexts) {
        return Limit("too many contexts", limits_.max_contexts);
      }
      std::string id = absl::StrCat("ctx", ++next_context_);
      contexts_[id] = *ctx;
      v1::CreateContextResponse resp;
      resp.set_context_id(id);
      for (const std::string& w : (*ctx)->warnings()) resp.add_warnings(w);
      for (const CertificateInfo& c : certs) FillSummary(c, now, resp.add_certificates());
      return resp;
    });
  }

  absl::StatusOr<v1::DeleteContextResponse> DeleteContext(const v1::DeleteContextRequest& r) {
    if (absl::Status s = CheckId("contextId", r.context_id()); !s.ok()) return s;
    return RunFor<v1::DeleteContextResponse>([&]() -> absl::StatusOr<v1::DeleteContextResponse> {
      if (contexts_.count(r.context_id()) == 0) return NotFound("contextId", r.context_id());
      for (auto& [lid, l] : listeners_) {
        bool used = l->context_id == r.context_id();
        for (auto& [name, cid] : l->sni) used = used || cid == r.context_id();
        if (used) {
          return Precondition("ERR_TLS_CONTEXT_IN_USE",
                              absl::StrCat("contextId: ", r.context_id(), " is in use by listener ", lid));
        }
      }
      contexts_.erase(r.context_id());
      return v1::DeleteContextResponse();
    });
  }

  // Loop thread.
  absl::StatusOr<std::shared_ptr<const SecureContext>> FindContext(absl::string_view field, const std::string& id) {
    auto it = contexts_.find(id);
    if (it == contexts_.end()) return NotFound(field, id);
    return it->second;
  }
  absl::StatusOr<Listener*> FindListener(const std::string& id) {
    auto it = listeners_.find(id);
    if (it == listeners_.end() || it->second->closing) return NotFound("listenerId", id);
    return it->second.get();
  }
  absl::StatusOr<Conn*> FindConn(const std::string& id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return NotFound("connectionId", id);
    return it->second.get();
  }
  // A context a listener can serve: it has a certificate (cert or pfx).
  absl::StatusOr<std::shared_ptr<const SecureContext>> FindServingContext(const std::string& id) {
    absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = FindContext("contextId", id);
    if (!ctx.ok()) return ctx;
    if ((*ctx)->options().cert.empty() && (*ctx)->options().pfx.empty()) {
      return Invalid("contextId", absl::StrCat(id, " has no certificate to serve (cert or pfx)"));
    }
    return ctx;
  }
  int OpenConnections() const {
    int n = 0;
    for (auto& [id, c] : conns_) n += c->closed ? 0 : 1;
    return n;
  }

  // ------------------------------------------------------------ listeners
  absl::StatusOr<v1::ListenResponse> Listen(const v1::ListenRequest& r) {
    if (absl::Status s = CheckId("contextId", r.context_id()); !s.ok()) return s;
    if (absl::Status s = CheckEndpoint(r.path(), r.host(), r.port()); !s.ok()) return s;
    std::string mode = r.mode().empty() ? "echo" : r.mode();
    if (mode != "echo" && mode != "hold") return Invalid("mode", "must be \"echo\" or \"hold\"");
    if (r.handshake_timeout() < 0 || r.handshake_timeout() > 3600 * 1000) {
      return Invalid("handshakeTimeout", "must be 0..3600000 milliseconds");
    }
    if (r.max_connections() < 0) return Invalid("maxConnections", "must not be negative");
    absl::StatusOr<std::vector<std::string>> ticket_keys = SplitTicketKeys(r.ticket_keys());
    if (!ticket_keys.ok()) return ticket_keys.status();
    std::string store = r.session_store().empty() ? "memory" : r.session_store();
    if (store != "memory" && store != "none") return Invalid("sessionStore", "must be \"memory\" or \"none\"");
    if (r.session_store_entries() < 0 || r.session_store_entries() > 1000000) {
      return Invalid("sessionStoreEntries", "must be 0..1000000");
    }
    if (r.client_reneg_limit() < 0 || r.client_reneg_limit() > 1000) return Invalid("clientRenegLimit", "must be 0..1000");
    if (r.client_reneg_window() < 0) return Invalid("clientRenegWindow", "must not be negative");
    if (absl::Status s = CheckProtocols("ALPNProtocols", r.alpn_protocols()); !s.ok()) return s;
    if (absl::Status s = CheckProtocols("NPNProtocols", r.npn_protocols()); !s.ok()) return s;
    return RunFor<v1::ListenResponse>([&]() -> absl::StatusOr<v1::ListenResponse> {
      absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = FindServingContext(r.context_id());
      if (!ctx.ok()) return ctx.status();
      if (static_cast<int>(listeners_.size()) >= limits_.max_listeners) {
        return Limit("too many listeners", limits_.max_listeners);
      }
      std::string id = absl::StrCat("l", ++next_listener_);
      auto l = std::make_unique<Listener>();
      l->id = id;
      l->context_id = r.context_id();
      l->mode = mode;
      l->session_timeout = absl::Seconds((*ctx)->options().session_timeout);
      epoll::ServerOptions so;
      so.context = (*ctx)->options();
      if (!ticket_keys->empty()) so.context.ticket_keys = *ticket_keys;
      so.connection.request_cert = r.request_cert();
      so.connection.reject_unauthorized = r.has_reject_unauthorized() ? r.reject_unauthorized() : true;
      so.connection.alpn_protocols.assign(r.alpn_protocols().begin(), r.alpn_protocols().end());
      so.connection.npn_protocols.assign(r.npn_protocols().begin(), r.npn_protocols().end());
      so.connection.allow_client_renegotiation = r.allow_client_renegotiation();
      if (r.client_reneg_limit() > 0) so.connection.client_reneg_limit = r.client_reneg_limit();
      if (r.client_reneg_window() > 0) so.connection.client_reneg_window = absl::Milliseconds(r.client_reneg_window());
      if (r.handshake_timeout() > 0) so.handshake_timeout = absl::Milliseconds(r.handshake_timeout());
      so.max_connections = std::min(r.max_connections() > 0 ? r.max_connections() : limits_.max_connections,
                                    limits_.max_connections);
      so.honour_sslkeylogfile = false;
      so.session_cache = false;  // sessions go through our handlers below
      if (store == "memory") {
        size_t entries = r.session_store_entries() > 0 ? r.session_store_entries() : 20000;
        l->store = std::make_shared<epoll::MemorySessionStore>(entries, 32 << 20);
      }
      absl::StatusOr<std::unique_ptr<Server>> server = Server::Create({loop_}, so, Handlers(id, l->store != nullptr));
      if (!server.ok()) return Prefixed("Listen", server.status());
      absl::Status listened =
          r.path().empty() ? (*server)->Listen(r.port(), r.host()) : (*server)->ListenUnix(r.path());
      if (!listened.ok()) {
        std::string code = NodeCode(listened);
        if (code == "EADDRINUSE") {
          return MakeError(absl::StatusCode::kAlreadyExists, code, absl::StrCat("address in use: ", listened.message()));
        }
        if (listened.code() == absl::StatusCode::kInvalidArgument) return Prefixed(r.path().empty() ? "host" : "path", listened);
        return listened;
      }
      std::string keys = (*server)->GetTicketKeys();
      for (size_t i = 0; i + kTicketKeyBytes <= keys.size(); i += kTicketKeyBytes) {
        l->keys.push_back(TicketKey{keys.substr(i, kTicketKeyBytes)});
      }
      l->server = *std::move(server);
      v1::ListenResponse resp;
      resp.set_listener_id(id);
      absl::StatusOr<epoll::SocketAddress> a = l->server->address();
      if (a.ok()) FillAddress(*a, resp.mutable_address());
      listeners_[id] = std::move(l);
      v1::ChangeResponse change;
      change.set_listener_id(id);
      change.set_change("listen");
      change.set_context_id(r.context_id());
      change.set_description(absl::StrCat("listening on ", resp.address().address(), ":", resp.address().port(),
                                          " (", mode, ")"));
      PublishChange(change);
      return resp;
    });
  }

  // The SNI table entry for `servername` (exact, then "*.rest"); "" when
  // none matches.
  static std::string SniKey(const Listener& l, const std::string& servername) {
    std::string name = Lower(servername);
    if (l.sni.count(name)) return name;
    size_t dot = name.find('.');
    if (dot != std::string::npos) {
      std::string wild = absl::StrCat("*", name.substr(dot));
      if (l.sni.count(wild)) return wild;
    }
    return "";
  }

  epoll::ServerHandlers Handlers(const std::string& lid, bool sessions) {
    epoll::ServerHandlers h;
    h.on_secure_connection = [this, lid](std::shared_ptr<TlsSocket> s) { OnSecureConnection(lid, std::move(s)); };
    h.on_client_error = [this, lid](const absl::Status& e, TlsSocket& s) {
      auto it = listeners_.find(lid);
      std::string code = NodeCode(e).empty() ? std::string(absl::StatusCodeToString(e.code())) : NodeCode(e);
      if (it != listeners_.end()) ++it->second->stats.handshakes[code];
      v1::ControlEvent ev;
      ev.set_type("clientError");
      ev.set_listener_id(lid);
      ev.set_error(code);
      ev.set_message(std::string(e.message()));
      ev.set_servername(s.servername());
      Publish(std::move(ev));
    };
    h.on_ocsp_request = [this, lid](TlsSocket& s, const std::string&, const std::string&,
                                    std::function<void(absl::StatusOr<std::string>)> done) {
      std::string response;
      auto it = listeners_.find(lid);
      if (it != listeners_.end()) {
        auto o = it->second->ocsp.find(SniKey(*it->second, s.servername()));
        if (o != it->second->ocsp.end()) response = o->second.der;
      }
      v1::ControlEvent ev;
      ev.set_type("OCSPRequest");
      ev.set_listener_id(lid);
      ev.set_servername(s.servername());
      ev.set_message(response.empty() ? "no response to staple" : "stapled");
      Publish(std::move(ev));
      done(response);
    };
    if (sessions) {
      h.on_new_session = [this, lid](TlsSocket& s, const std::string& id, const std::string& session,
                                     std::function<void(absl::Status)> done) {
        auto it = listeners_.find(lid);
        absl::Status stored = absl::OkStatus();
        if (it != listeners_.end() && it->second->store) {
          stored = it->second->store->Put(id, session, loop_->Now() + it->second->session_timeout);
        }
        v1::ControlEvent ev;
        ev.set_type("newSession");
        ev.set_listener_id(lid);
        ev.set_session_id(absl::BytesToHexString(id));
        Publish(std::move(ev));
        // A session the store cannot hold is not an error for the client.
        done(absl::OkStatus());
        (void)stored;
      };
      h.on_resume_session = [this, lid](TlsSocket&, const std::string& id,
                                        std::function<void(absl::StatusOr<std::string>)> done) {
        auto it = listeners_.find(lid);
        std::optional<std::string> got;
        if (it != listeners_.end() && it->second->store) got = it->second->store->Get(id, loop_->Now());
        done(got.value_or(""));
      };
    }
    return h;
  }

  // A new connection record for `s` (loop thread); nullptr past the limit.
  Conn* AddConn(const std::shared_ptr<TlsSocket>& s, const std::string& lid, const std::string& mode) {
    if (OpenConnections() >= limits_.max_connections) return nullptr;
    auto c = std::make_unique<Conn>();
    c->number = ++next_conn_;
    c->id = absl::StrCat("c", c->number);
    c->listener_id = lid;
    c->mode = mode;
    c->socket = s;
    c->created = options_.clock();
    Conn* raw = c.get();
    conns_[c->id] = std::move(c);
    TlsSocket* sock = s.get();
    std::string cid = raw->id;
    sock->handlers().on_data = [this, cid, sock](absl::string_view d) {
      Conn* c = conns_.count(cid) ? conns_[cid].get() : nullptr;
      if (c == nullptr) return;
      if (c->mode == "echo") {
        // Backpressure, as a pipe: stop reading while the peer is not
        // reading what we echo; on_drain resumes.
        if (!sock->Write(d) && !c->paused) {
          c->paused = true;
          sock->Pause();
        }
        return;
      }
      size_t held;
      {
        std::lock_guard<std::mutex> l(c->inbox->mu);
        if (c->inbox->bytes == 0 && !d.empty()) holders_.fetch_add(1);
        c->inbox->chunks.emplace_back(d);
        c->inbox->bytes += d.size();
        held = c->inbox->bytes;
        c->inbox->cv.notify_all();
      }
      buffered_.fetch_add(d.size());
      if (!c->paused && MustPause(held, 1)) {
        c->paused = true;
        sock->Pause();
      }
    };
    sock->handlers().on_drain = [this, cid, sock] {
      Conn* c = conns_.count(cid) ? conns_[cid].get() : nullptr;
      if (c == nullptr || c->mode != "echo" || !c->paused) return;
      c->paused = false;
      sock->Resume();
    };
    sock->handlers().on_end = [this, cid, sock] {
      Conn* c = conns_.count(cid) ? conns_[cid].get() : nullptr;
      if (c == nullptr) return;
      std::lock_guard<std::mutex> l(c->inbox->mu);
      c->inbox->ended = true;
      c->inbox->cv.notify_all();
    };
    sock->handlers().on_session = [this, cid](const std::string& session) {
      Conn* c = conns_.count(cid) ? conns_[cid].get() : nullptr;
      if (c == nullptr) return;
      c->session = session;
      v1::ControlEvent ev;
      ev.set_type("session");
      ev.set_connection_id(cid);
      Publish(std::move(ev));
    };
    sock->handlers().on_ocsp_response = [this, cid](const std::string& response) {
      v1::ControlEvent ev;
      ev.set_type("OCSPResponse");
      ev.set_connection_id(cid);
      ev.set_message(response.empty() ? "none stapled" : absl::StrCat(response.size(), " bytes"));
      Publish(std::move(ev));
    };
    sock->handlers().on_close = [this, cid, sock](bool had_error) { OnClose(cid, sock); };
    return raw;
  }

  void OnSecureConnection(const std::string& lid, std::shared_ptr<TlsSocket> s) {
    auto it = listeners_.find(lid);
    if (it == listeners_.end()) {
      s->Destroy();
      return;
    }
    Listener& l = *it->second;
    Conn* c = AddConn(s, lid, l.mode);
    if (c == nullptr) {
      ++l.stats.handshakes[kLimitCode];
      v1::ControlEvent ev;
      ev.set_type("clientError");
      ev.set_listener_id(lid);
      ev.set_error(kLimitCode);
      ev.set_message(absl::StrCat("connection limit ", limits_.max_connections, " reached"));
      Publish(std::move(ev));
      s->Destroy();
      return;
    }
    ++l.stats.handshakes["ok"];
    ++l.stats.protocols[s->protocol()];
    if (auto cipher = s->GetCipher()) ++l.stats.ciphers[cipher->name];
    if (s->is_session_reused()) ++l.stats.resumed;
    v1::ControlEvent ev;
    ev.set_type("secureConnection");
    ev.set_listener_id(lid);
    ev.set_connection_id(c->id);
    ev.set_servername(s->servername());
    ev.set_protocol(s->protocol());
    if (auto cipher = s->GetCipher()) ev.set_cipher(cipher->name);
    ev.set_session_reused(s->is_session_reused());
    Publish(std::move(ev));
  }

  void OnClose(const std::string& cid, TlsSocket* sock) {
    auto it = conns_.find(cid);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    c.closed = true;
    c.close_status = sock->close_status();
    {
      std::lock_guard<std::mutex> l(c.inbox->mu);
      c.inbox->closed = true;
      c.inbox->error = NodeCode(c.close_status);
      c.inbox->cv.notify_all();
    }
    auto l = listeners_.find(c.listener_id);
    if (l != listeners_.end()) {
      l->second->stats.bytes_in += sock->bytes_read();
      l->second->stats.bytes_out += sock->bytes_written();
    }
    v1::ControlEvent ev;
    ev.set_type("close");
    ev.set_listener_id(c.listener_id);
    ev.set_connection_id(cid);
    ev.set_error(NodeCode(c.close_status));
    ev.set_message(std::string(c.close_status.message()));
    Publish(std::move(ev));
    closed_order_.push_back(cid);
    while (closed_order_.size() > limits_.closed_kept) {
      auto old = conns_.find(closed_order_.front());
      closed_order_.pop_front();
      if (old != conns_.end()) {
        ReleaseInbox(*old->second);
        conns_.erase(old);
      }
    }
  }

  // Whether a hold connection holding `held` bytes for Read stops reading
  // from its peer. Past max_connection_buffer it does. Past the service's
  // max_buffered_bytes, only one holding at least its fair share (the
  // budget divided among the connections holding data) does, so the
  // peers nobody Reads cannot starve the others; past twice the budget,
  // any holding max_buffered_bytes / max_connections (16 KiB) or more
  // does, which bounds the total at three budgets plus one read per
  // connection. `slack` 2 asks whether a paused one may resume: under half
  // of each bound, so that it does not stop again at the next chunk.
  bool MustPause(size_t held, size_t slack) const {
    const size_t budget = limits_.max_buffered_bytes;
    const size_t total = buffered_.load();
    if (held * slack >= limits_.max_connection_buffer) return true;
    if (total * slack < budget) return false;
    const size_t share = budget / std::max<size_t>(holders_.load(), 1);
    if (held * slack >= share) return true;
    const size_t floor = budget / static_cast<size_t>(std::max(limits_.max_connections, 1));
    return total >= 2 * budget && held * slack >= floor;
  }

  // Gives back what a connection's inbox counted against the controller.
  void ReleaseInbox(Conn& c) {
    std::lock_guard<std::mutex> l(c.inbox->mu);
    if (c.inbox->bytes > 0) holders_.fetch_sub(1);
    buffered_.fetch_sub(c.inbox->bytes);
    c.inbox->bytes = 0;
    c.inbox->chunks.clear();
  }

  absl::StatusOr<v1::CloseListenerResponse> CloseListener(const v1::CloseListenerRequest& r) {
    if (absl::Status s = CheckId("listenerId", r.listener_id()); !s.ok()) return s;
    if (r.deadline() < 0 || r.deadline() > 600000) return Invalid("deadline", "must be 0..600000 milliseconds");
    absl::Duration deadline = absl::Milliseconds(r.deadline() > 0 ? r.deadline() : 5000);
    std::shared_ptr<Mailbox<bool>> closed;
    v1::CloseListenerResponse resp;
    absl::Status err;
    absl::Status s = Run([&] {
      absl::StatusOr<Listener*> l = FindListener(r.listener_id());
      if (!l.ok()) {
        err = l.status();
        return;
      }
      (*l)->closing = true;
      closed = (*l)->closed;
      if (!(*l)->server->Close([closed] { closed->Set(true); }).ok()) closed->Set(true);
      for (auto& [id, c] : conns_) {
        if (c->listener_id == r.listener_id() && !c->closed) {
          c->socket->End();
          resp.set_ended(resp.ended() + 1);
        }
      }
    });
    if (!s.ok()) return s;
    if (!err.ok()) return err;
    if (closed == nullptr) return NotFound("listenerId", r.listener_id());
    if (!closed->Wait(deadline)) {
      Run([&] {
        for (auto& [id, c] : conns_) {
          if (c->listener_id == r.listener_id() && !c->closed) {
            c->socket->Destroy();
            resp.set_destroyed(resp.destroyed() + 1);
          }
        }
      }).IgnoreError();
      resp.set_ended(resp.ended() - resp.destroyed());
      closed->Wait(absl::Seconds(5));
    }
    Run([&] {
      auto it = listeners_.find(r.listener_id());
      // The Server may be destroyed only once its close callback ran.
      if (it != listeners_.end() && it->second->closed->done) listeners_.erase(it);
    }).IgnoreError();
    v1::ChangeResponse change;
    change.set_listener_id(r.listener_id());
    change.set_change("closeListener");
    change.set_description(absl::StrCat("closed: ", resp.ended(), " ended, ", resp.destroyed(), " destroyed"));
    PublishChange(change);
    return resp;
  }

  // --------------------------------------------------------- live changes
  std::vector<std::string> Fingerprints(const std::string& context_id) {
    std::vector<std::string> out;
    auto it = contexts_.find(context_id);
    if (it == contexts_.end()) return out;
    for (const CertificateInfo& c : ServedCertificates(it->second->options())) out.push_back(c.fingerprint256);
    return out;
  }

  // One live change on a listener: `apply` runs on the loop with the
  // listener and fills in what it did; it changes nothing when it returns
  // an error. The change is then stamped with the listener and its kind
  // and published to the watchers.
  absl::StatusOr<v1::ChangeResponse> ChangeListener(
      const std::string& listener_id, absl::string_view kind,
      const std::function<absl::Status(Listener&, v1::ChangeResponse&)>& apply) {
    if (absl::Status s = CheckId("listenerId", listener_id); !s.ok()) return s;
    return RunFor<v1::ChangeResponse>([&]() -> absl::StatusOr<v1::ChangeResponse> {
      absl::StatusOr<Listener*> l = FindListener(listener_id);
      if (!l.ok()) return l.status();
      v1::ChangeResponse change;
      if (absl::Status s = apply(**l, change); !s.ok()) return s;
      change.set_listener_id(listener_id);
      change.set_change(std::string(kind));
      PublishChange(change);
      return change;
    });
  }
  // The change's context and the certificates it serves (loop thread).
  void ServedBy(const std::string& context_id, v1::ChangeResponse& change) {
    change.set_context_id(context_id);
    for (const std::string& f : Fingerprints(context_id)) change.add_fingerprint256(f);
  }

  // Context `context_id` as listener `listener_id` serves it, with the
  // listener's ticket key set: found on the loop, built (when it is not on
  // that set yet) here on the calling thread, so that the loop and its
  // connections never wait for a context build. The live change then only
  // swaps the pointer in, on the loop.
  absl::StatusOr<std::shared_ptr<const SecureContext>> BuildServed(const std::string& listener_id,
                                                                  const std::string& context_id) {
    if (absl::Status s = CheckId("listenerId", listener_id); !s.ok()) return s;
    std::shared_ptr<const SecureContext> ctx;
    std::shared_ptr<TicketKeys> keys;
    absl::Status lookup;
    absl::Status ran = Run([&] {
      absl::StatusOr<Listener*> l = FindListener(listener_id);
      if (!l.ok()) {
        lookup = l.status();
        return;
      }
      absl::StatusOr<std::shared_ptr<const SecureContext>> c = FindServingContext(context_id);
      if (!c.ok()) {
        lookup = c.status();
        return;
      }
      ctx = *c;
      keys = (*l)->server->ticket_key_set();
    });
    if (!ran.ok()) return ran;
    if (!lookup.ok()) return lookup;
    absl::StatusOr<std::shared_ptr<const SecureContext>> built = epoll::WithTicketKeySet(ctx, keys);
    if (!built.ok()) return Prefixed("contextId", built.status());
    return built;
  }

  absl::StatusOr<v1::ChangeResponse> AddContext(const v1::AddContextRequest& r) {
    if (absl::Status s = CheckId("contextId", r.context_id()); !s.ok()) return s;
    absl::StatusOr<std::shared_ptr<const SecureContext>> served = BuildServed(r.listener_id(), r.context_id());
    if (!served.ok()) return served.status();
    return ChangeListener(r.listener_id(), "addContext", [&](Listener& l, v1::ChangeResponse& change) {
      absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = FindServingContext(r.context_id());
      if (!ctx.ok()) return ctx.status();  // deleted meanwhile
      if (absl::Status s = CheckServername("servername", r.servername(), *ctx); !s.ok()) return s;
      if (l.sni.size() >= 1000) return Limit("too many SNI names on one listener", 1000);
      std::string key = Lower(r.servername());
      // Served with the listener's ticket keys (BuildServed), so that
      // RotateTicketKeys reaches this name too; nothing is built here.
      if (absl::Status s = l.server->AddContext(key, *served); !s.ok()) return Prefixed("servername", s);
      auto old = l.sni.find(key);
      if (old != l.sni.end()) change.set_previous_context_id(old->second);
      l.sni[key] = r.context_id();
      change.set_servername(key);
      ServedBy(r.context_id(), change);
      change.set_description(absl::StrCat("new connections for ", key, " get ", r.context_id()));
      return absl::OkStatus();
    });
  }

  absl::StatusOr<v1::ChangeResponse> RemoveContext(const v1::RemoveContextRequest& r) {
    if (r.servername().empty()) return Invalid("servername", "required");
    if (absl::Status s = CheckText("servername", r.servername(), kMaxNameBytes); !s.ok()) return s;
    return ChangeListener(r.listener_id(), "removeContext", [&](Listener& l, v1::ChangeResponse& change) {
      std::string key = Lower(r.servername());
      auto it = l.sni.find(key);
      if (it == l.sni.end()) return NotFound("servername", r.servername());
      if (absl::Status s = l.server->RemoveContext(key); !s.ok()) return Prefixed("servername", s);
      change.set_previous_context_id(it->second);
      l.sni.erase(it);
      l.ocsp.erase(key);
      change.set_servername(key);
      ServedBy(l.context_id, change);
      change.set_description(absl::StrCat("new connections for ", key, " get the default context"));
      return absl::OkStatus();
    });
  }

  absl::StatusOr<v1::ChangeResponse> ReplaceContext(const v1::ReplaceContextRequest& r) {
    if (absl::Status s = CheckId("contextId", r.context_id()); !s.ok()) return s;
    // The listener keeps its ticket keys, so sessions issued before the
    // replacement still resume.
    absl::StatusOr<std::shared_ptr<const SecureContext>> served = BuildServed(r.listener_id(), r.context_id());
    if (!served.ok()) return served.status();
    return ChangeListener(r.listener_id(), "replaceContext", [&](Listener& l, v1::ChangeResponse& change) {
      absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = FindServingContext(r.context_id());
      if (!ctx.ok()) return ctx.status();  // deleted meanwhile
      if (absl::Status s = l.server->SetSecureContext(*served); !s.ok()) return Prefixed("contextId", s);
      change.set_previous_context_id(l.context_id);
      l.context_id = r.context_id();
      l.ocsp.erase("");  // the stapled response was for the old certificate
      ServedBy(r.context_id(), change);
      change.set_ticket_keys(static_cast<int>(l.keys.size()));
      change.set_description(absl::StrCat("new connections get ", r.context_id(), " (was ",
                                          change.previous_context_id(), "); open connections carry on"));
      return absl::OkStatus();
    });
  }

  std::string JoinKeys(const Listener& l, absl::Time now) {
    std::string keys;
    for (size_t i = 0; i < l.keys.size(); ++i) {
      if (i == 0 || l.keys[i].retire > now) keys += l.keys[i].key;
    }
    return keys;
  }

  // Drops retired keys from `lid` (loop thread; from a timer).
  void RetireKeys(const std::string& lid) {
    auto it = listeners_.find(lid);
    if (it == listeners_.end() || it->second->closing) return;
    Listener& l = *it->second;
    absl::Time now = loop_->Now();
    size_t before = l.keys.size();
    l.keys.erase(std::remove_if(l.keys.begin() + 1, l.keys.end(), [&](const TicketKey& k) { return k.retire <= now; }),
                 l.keys.end());
    if (l.keys.size() == before) return;
    if (l.server->SetTicketKeys(JoinKeys(l, now)).ok()) {
      v1::ChangeResponse change;
      change.set_listener_id(lid);
      change.set_change("retireTicketKeys");
      change.set_ticket_keys(static_cast<int>(l.keys.size()));
      change.set_description(absl::StrCat(before - l.keys.size(), " previous ticket key(s) no longer decrypt"));
      PublishChange(change);
    }
  }

  absl::StatusOr<v1::ChangeResponse> RotateTicketKeys(const v1::RotateTicketKeysRequest& r) {
    if (!r.key().empty() && r.key().size() != kTicketKeyBytes) {
      return Invalid("key", absl::StrCat("must be 48 bytes (16 name, 16 HMAC, 16 AES), not ", r.key().size()));
    }
    if (r.keep_previous() < 0 || r.keep_previous() > 86400LL * 365 * 1000) {
      return Invalid("keepPrevious", "must be 0..31536000000 milliseconds");
    }
    std::string key = r.key();
    if (key.empty()) {
      // A fresh set of one random key (kInternal when RAND_bytes fails).
      absl::StatusOr<std::shared_ptr<TicketKeys>> fresh = TicketKeys::Create({});
      if (!fresh.ok()) return fresh.status();
      key = (*fresh)->Get()->front();
    }
    return ChangeListener(r.listener_id(), "rotateTicketKeys", [&](Listener& l, v1::ChangeResponse& change) {
      // Key lifetimes run on the loop's (real) clock, like the timer that
      // retires them; the injectable clock is for reports only.
      absl::Time now = loop_->Now();
      absl::Duration keep = r.keep_previous() > 0 ? absl::Milliseconds(r.keep_previous()) : l.session_timeout;
      std::vector<TicketKey> keys{TicketKey{key}};
      for (const TicketKey& k : l.keys) {
        if (k.key == key) continue;
        TicketKey old = k;
        old.retire = std::min(old.retire, now + keep);
        if (old.retire > now) keys.push_back(old);
      }
      if (keys.size() > 16) keys.resize(16);
      std::vector<TicketKey> saved = l.keys;
      l.keys = keys;
      if (absl::Status s = l.server->SetTicketKeys(JoinKeys(l, now)); !s.ok()) {
        l.keys = saved;
        return Prefixed("key", s);
      }
      std::string lid = l.id;
      loop_->AddTimer(now + keep, [this, lid] { RetireKeys(lid); });
      change.set_ticket_keys(static_cast<int>(keys.size()));
      change.set_description(absl::StrCat("new tickets use key ", absl::BytesToHexString(key.substr(0, 16)), "; ",
                                          keys.size() - 1, " previous key(s) decrypt for ",
                                          absl::FormatDuration(keep)));
      return absl::OkStatus();
    });
  }

  absl::StatusOr<v1::ChangeResponse> SetOcspResponse(const v1::SetOcspResponseRequest& r) {
    if (absl::Status s = CheckText("servername", r.servername(), kMaxNameBytes); !s.ok()) return s;
    absl::StatusOr<std::string> der =
        InlineOrFile("response", r.response(), "responseFile", r.response_file(), limits_.max_field_bytes);
    if (!der.ok()) return der.status();
    std::optional<OcspInfo> info;
    if (!der->empty()) {
      absl::StatusOr<OcspInfo> parsed = ParseOcsp(r.response_file().empty() ? "response" : "responseFile", *der);
      if (!parsed.ok()) return parsed.status();
      info = *std::move(parsed);
    }
    return ChangeListener(r.listener_id(), "setOcspResponse", [&](Listener& l, v1::ChangeResponse& change) {
      std::string key = Lower(r.servername());
      if (!key.empty() && l.sni.count(key) == 0) return NotFound("servername", r.servername());
      if (info) {
        l.ocsp[key] = *info;
      } else {
        l.ocsp.erase(key);
      }
      change.set_servername(key);
      change.set_context_id(key.empty() ? l.context_id : l.sni[key]);
      change.set_description(info ? absl::StrCat("stapling ", info->der.size(), " bytes, next update ",
                                                 info->next_update.empty() ? "(none)" : info->next_update)
                                  : "stapling nothing");
      return absl::OkStatus();
    });
  }

  absl::StatusOr<v1::ListCertificatesResponse> ListCertificates(const v1::ListCertificatesRequest& r) {
    if (!r.context_id().empty() && (!r.listener_id().empty() || !r.servername().empty())) {
      return Invalid("contextId", "give contextId alone, or listenerId and servername");
    }
    if (absl::Status s = CheckText("listenerId", r.listener_id(), kMaxIdBytes); !s.ok()) return s;
    if (absl::Status s = CheckText("servername", r.servername(), kMaxNameBytes); !s.ok()) return s;
    absl::Time now = options_.clock();
    return RunFor<v1::ListCertificatesResponse>([&]() -> absl::StatusOr<v1::ListCertificatesResponse> {
      v1::ListCertificatesResponse resp;
      auto add = [&](const std::string& lid, const std::string& name, const std::string& cid, const OcspInfo* ocsp) {
        v1::CertificateEntry* e = resp.add_entries();
        e->set_listener_id(lid);
        e->set_servername(name);
        e->set_context_id(cid);
        auto c = contexts_.find(cid);
        if (c == contexts_.end()) return;
        for (const CertificateInfo& info : ServedCertificates(c->second->options())) {
          v1::CertificateSummary* s = e->add_certificates();
          FillSummary(info, now, s);
          if (ocsp != nullptr) {
            s->set_ocsp_stapled(true);
            s->set_ocsp_next_update(ocsp->next_update);
          }
        }
      };
      if (!r.context_id().empty()) {
        if (contexts_.count(r.context_id()) == 0) return NotFound("contextId", r.context_id());
        add("", "", r.context_id(), nullptr);
        return resp;
      }
      if (!r.listener_id().empty()) {
        absl::StatusOr<Listener*> l = FindListener(r.listener_id());
        if (!l.ok()) return l.status();
      }
      for (auto& [lid, l] : listeners_) {
        if (l->closing || (!r.listener_id().empty() && lid != r.listener_id())) continue;
        auto ocsp = [&](const std::string& key) -> const OcspInfo* {
          auto o = l->ocsp.find(key);
          return o == l->ocsp.end() ? nullptr : &o->second;
        };
        if (!r.servername().empty()) {
          std::string key = SniKey(*l, r.servername());
          add(lid, key, key.empty() ? l->context_id : l->sni[key], ocsp(key));
          continue;
        }
        // What the server serves now, in its order (default, exact names,
        // patterns); the context ids are ours.
        for (const epoll::ServedContext& served : l->server->Contexts()) {
          const std::string& name = served.servername;
          auto id = l->sni.find(name);
          add(lid, name, name.empty() ? l->context_id : id != l->sni.end() ? id->second : "", ocsp(name));
        }
      }
      return resp;
    });
  }

  // ----------------------------------------------------------- connections
  void Describe(const Conn& c, v1::ConnectionInfo* out) {
    TlsSocket& s = *c.socket;
    absl::Time now = options_.clock();
    out->set_connection_id(c.id);
    out->set_listener_id(c.listener_id);
    out->set_role(s.is_server() ? "server" : "client");
    out->set_mode(c.mode);
    out->set_state(std::string(epoll::ReadyStateName(s.ready_state())));
    out->set_authorized(s.authorized());
    out->set_authorization_error(s.authorization_error());
    out->set_protocol(s.protocol());
    if (auto cipher = s.GetCipher()) {
      out->mutable_cipher()->set_name(cipher->name);
      out->mutable_cipher()->set_standard_name(cipher->standard_name);
      out->mutable_cipher()->set_version(cipher->version);
    }
    out->set_servername(s.servername());
    out->set_alpn_protocol(s.alpn_protocol());
    out->set_session_reused(s.is_session_reused());
    if (auto peer = s.GetPeerCertificate()) FillSummary(*peer, now, out->mutable_peer_certificate());
    if (auto own = s.GetCertificate()) FillSummary(*own, now, out->mutable_certificate());
    FillAddress(s.address(), out->mutable_local_address());
    out->mutable_remote_address()->set_address(s.remote_address());
    out->mutable_remote_address()->set_family(s.remote_family());
    out->mutable_remote_address()->set_port(s.remote_port());
    out->set_bytes_read(s.bytes_read());
    out->set_bytes_written(s.bytes_written());
    out->set_raw_bytes_read(s.raw_bytes_read());
    out->set_raw_bytes_written(s.raw_bytes_written());
    out->set_age(absl::ToInt64Milliseconds(now - c.created));
    std::string session = c.session.empty() && !s.is_server() ? s.GetSession() : c.session;
    out->set_session(session);
    {
      std::lock_guard<std::mutex> l(c.inbox->mu);
      out->set_buffered(c.inbox->bytes);
    }
    out->set_paused(c.paused);
    out->set_error(NodeCode(c.close_status));
    out->set_error_message(std::string(c.close_status.message()));
  }

  absl::StatusOr<v1::ConnectResponse> Connect(const v1::ConnectRequest& r) {
    if (absl::Status s = CheckEndpoint(r.path(), r.host(), r.port()); !s.ok()) return s;
    if (r.path().empty() && r.port() == 0) return Invalid("port", "must be 1..65535");
    if (absl::Status s = CheckText("servername", r.servername(), kMaxNameBytes); !s.ok()) return s;
    if (absl::Status s = CheckText("session", r.session(), epoll::kMaxSessionBytes); !s.ok()) return s;
    if (absl::Status s = CheckText("contextId", r.context_id(), kMaxIdBytes); !s.ok()) return s;
    if (r.timeout() < 0 || r.timeout() > 600000) return Invalid("timeout", "must be 0..600000 milliseconds");
    if (absl::Status s = CheckProtocols("ALPNProtocols", r.alpn_protocols()); !s.ok()) return s;
    std::shared_ptr<const SecureContext> system_ctx;
    if (r.context_id().empty()) {
      absl::StatusOr<std::shared_ptr<const SecureContext>> made = SecureContext::Create(SecureContextOptions());
      if (!made.ok()) return made.status();
      system_ctx = *made;
    }
    absl::Duration timeout = absl::Milliseconds(r.timeout() > 0 ? r.timeout() : 10000);
    auto outcome = std::make_shared<Mailbox<absl::Status>>();
    std::string cid;
    absl::Status started = Run([&] {
      std::shared_ptr<const SecureContext> ctx = system_ctx;
      if (!r.context_id().empty()) {
        absl::StatusOr<std::shared_ptr<const SecureContext>> found = FindContext("contextId", r.context_id());
        if (!found.ok()) {
          outcome->Set(found.status());
          return;
        }
        ctx = *found;
      }
      if (OpenConnections() >= limits_.max_connections) {
        outcome->Set(Limit("too many connections", limits_.max_connections));
        return;
      }
      epoll::TlsSocketOptions o;
      o.host = r.host().empty() ? "127.0.0.1" : r.host();
      o.port = r.port();
      o.path = r.path();
      o.tls.secure_context = ctx;
      o.tls.servername = r.servername();
      o.tls.reject_unauthorized = r.has_reject_unauthorized() ? r.reject_unauthorized() : true;
      o.tls.alpn_protocols.assign(r.alpn_protocols().begin(), r.alpn_protocols().end());
      o.tls.session = r.session();
      o.tls.request_ocsp = r.request_ocsp();
      o.tls.handshake_timeout = timeout;
      o.honour_sslkeylogfile = false;
      o.allow_half_open = true;  // the controller decides when to End
      absl::StatusOr<std::shared_ptr<TlsSocket>> s = TlsSocket::Connect(loop_, o);
      if (!s.ok()) {
        outcome->Set(s.status());
        return;
      }
      Conn* c = AddConn(*s, "", "hold");
      cid = c->id;
      TlsSocket* sock = s->get();
      sock->handlers().on_secure_connect = [this, outcome, cid, sock] {
        v1::ControlEvent ev;
        ev.set_type("secureConnect");
        ev.set_connection_id(cid);
        ev.set_servername(sock->servername());
        ev.set_protocol(sock->protocol());
        if (auto cipher = sock->GetCipher()) ev.set_cipher(cipher->name);
        ev.set_session_reused(sock->is_session_reused());
        Publish(std::move(ev));
        outcome->Set(absl::OkStatus());
      };
      sock->handlers().on_error = [outcome](const absl::Status& e) { outcome->Set(e); };
      auto on_close = sock->handlers().on_close;
      sock->handlers().on_close = [outcome, on_close](bool had_error) {
        outcome->Set(MakeError(absl::StatusCode::kUnavailable, kErrConnReset, "closed before secureConnect"));
        on_close(had_error);
      };
    });
    if (!started.ok()) return started;
    bool finished = outcome->Wait(timeout + absl::Seconds(2));
    absl::Status result;
    {
      std::lock_guard<std::mutex> l(outcome->mu);
      result = finished ? outcome->value
                        : MakeError(absl::StatusCode::kDeadlineExceeded, kErrHandshakeTimeout, "no secureConnect in time");
    }
    if (!result.ok()) {
      if (!cid.empty()) {
        Run([&] {
          auto it = conns_.find(cid);
          if (it != conns_.end() && !it->second->closed) it->second->socket->Destroy();
        }).IgnoreError();
      }
      return result;
    }
    return RunFor<v1::ConnectResponse>([&]() -> absl::StatusOr<v1::ConnectResponse> {
      absl::StatusOr<Conn*> c = FindConn(cid);
      if (!c.ok()) return c.status();
      v1::ConnectResponse resp;
      resp.set_connection_id(cid);
      Describe(**c, resp.mutable_connection());
      return resp;
    });
  }

  // Runs `fn` on the connection (loop thread) and describes it afterwards.
  absl::StatusOr<v1::ConnectionInfo> OnConn(const std::string& id, const std::function<absl::Status(Conn&)>& fn) {
    if (absl::Status s = CheckId("connectionId", id); !s.ok()) return s;
    return RunFor<v1::ConnectionInfo>([&]() -> absl::StatusOr<v1::ConnectionInfo> {
      absl::StatusOr<Conn*> c = FindConn(id);
      if (!c.ok()) return c.status();
      if (fn) {
        if (absl::Status s = fn(**c); !s.ok()) return s;
      }
      v1::ConnectionInfo info;
      Describe(**c, &info);
      return info;
    });
  }
  static absl::Status RequireOpen(const Conn& c) {
    if (c.closed) return Precondition("ERR_STREAM_DESTROYED", absl::StrCat("connectionId: ", c.id, " is closed"));
    return absl::OkStatus();
  }

  absl::StatusOr<v1::WriteResponse> Write(const v1::WriteRequest& r) {
    if (absl::Status s = CheckId("connectionId", r.connection_id()); !s.ok()) return s;
    if (r.data().size() > limits_.max_write_bytes) {
      return Limit(absl::StrCat("data: ", r.data().size(), " bytes in one Write"), limits_.max_write_bytes);
    }
    v1::WriteResponse resp;
    absl::StatusOr<v1::ConnectionInfo> info = OnConn(r.connection_id(), [&](Conn& c) -> absl::Status {
      if (absl::Status s = RequireOpen(c); !s.ok()) return s;
      if (c.socket->ready_state() == epoll::ReadyState::kReadOnly) {
        return Precondition("ERR_STREAM_WRITE_AFTER_END", absl::StrCat("connectionId: ", c.id, " has ended"));
      }
      // A peer that does not read must not grow our memory: past the
      // per-connection bound, Write is refused (nothing of it is taken)
      // until the queue drains.
      if (!r.data().empty() && c.socket->buffered_writes() >= limits_.max_connection_buffer) {
        return Limit(absl::StrCat("data: connectionId ", c.id, " already has ", c.socket->buffered_writes(),
                                  " bytes waiting for its peer to read"),
                     limits_.max_connection_buffer);
      }
      bool drained = r.data().empty() ? true : c.socket->Write(r.data());
      if (r.end()) c.socket->End();
      resp.set_written(r.data().size());
      resp.set_drained(drained);
      return absl::OkStatus();
    });
    if (!info.ok()) return info.status();
    return resp;
  }

  absl::Status Read(const v1::ReadRequest& r, const std::function<bool(const v1::ReadChunk&)>& emit,
                    const std::function<bool()>& cancelled) {
    if (absl::Status s = CheckId("connectionId", r.connection_id()); !s.ok()) return s;
    if (r.timeout() < 0) return Invalid("timeout", "must not be negative");
    std::shared_ptr<Inbox> inbox;
    absl::Status found;
    absl::Status ran = Run([&] {
      auto it = conns_.find(r.connection_id());
      if (it == conns_.end()) {
        found = NotFound("connectionId", r.connection_id());
      } else if (it->second->mode != "hold") {
        found = Precondition("ERR_TLS_CONTROL_ECHO",
                             absl::StrCat("connectionId: ", r.connection_id(), " is in echo mode; nothing is held"));
      } else {
        inbox = it->second->inbox;
      }
    });
    if (!ran.ok()) return ran;
    if (!found.ok()) return found;
    if (inbox == nullptr) return NotFound("connectionId", r.connection_id());
    {
      std::lock_guard<std::mutex> l(inbox->mu);
      if (inbox->reader) {
        return Precondition("ERR_TLS_CONTROL_BUSY", absl::StrCat("connectionId: ", r.connection_id(),
                                                                 " already has a Read running"));
      }
      inbox->reader = true;
    }
    absl::Time until = r.timeout() > 0 ? absl::Now() + absl::Milliseconds(r.timeout()) : absl::InfiniteFuture();
    uint64_t got = 0;
    std::unique_lock<std::mutex> l(inbox->mu);
    for (;;) {
      inbox->cv.wait_for(l, std::chrono::milliseconds(50),
                         [&] { return !inbox->chunks.empty() || inbox->ended || inbox->closed; });
      if (!inbox->chunks.empty()) {
        v1::ReadChunk chunk;
        std::string& front = inbox->chunks.front();
        size_t take = front.size();
        if (r.max_bytes() > 0) take = std::min<uint64_t>(take, r.max_bytes() - got);
        chunk.set_data(front.substr(0, take));
        if (take == front.size()) {
          inbox->chunks.pop_front();
        } else {
          front.erase(0, take);
        }
        inbox->bytes -= take;
        if (take > 0 && inbox->bytes == 0) holders_.fetch_sub(1);
        buffered_.fetch_sub(take);
        got += take;
        l.unlock();
        ResumeIfDrained(r.connection_id());
        bool more = emit(chunk);
        l.lock();
        if (!more || (r.max_bytes() > 0 && got >= r.max_bytes())) break;
        continue;
      }
      if (inbox->ended || inbox->closed) {
        v1::ReadChunk last;
        last.set_end(true);
        last.set_error(inbox->error);
        l.unlock();
        emit(last);
        l.lock();
        break;
      }
      if ((cancelled && cancelled()) || absl::Now() >= until) break;
    }
    inbox->reader = false;
    return absl::OkStatus();
  }

  void ResumeIfDrained(const std::string& cid) {
    loop_->Post([this, cid] {
      auto it = conns_.find(cid);
      if (it == conns_.end() || !it->second->paused || it->second->closed) return;
      size_t held;
      {
        std::lock_guard<std::mutex> l(it->second->inbox->mu);
        held = it->second->inbox->bytes;
      }
      if (!MustPause(held, 2)) {
        it->second->paused = false;
        it->second->socket->Resume();
      }
    });
  }

  absl::StatusOr<v1::ConnectionInfo> Renegotiate(const v1::RenegotiateRequest& r) {
    if (r.timeout() < 0 || r.timeout() > 600000) return Invalid("timeout", "must be 0..600000 milliseconds");
    auto done = std::make_shared<Mailbox<absl::Status>>();
    absl::StatusOr<v1::ConnectionInfo> started = OnConn(r.connection_id(), [&](Conn& c) -> absl::Status {
      if (absl::Status s = RequireOpen(c); !s.ok()) return s;
      RenegotiateOptions o;
      o.request_cert = r.request_cert();
      o.reject_unauthorized = r.has_reject_unauthorized() ? r.reject_unauthorized() : true;
      return c.socket->Renegotiate(o, [done](const absl::Status& s) { done->Set(s); });
    });
    if (!started.ok()) return started.status();
    if (!done->Wait(absl::Milliseconds(r.timeout() > 0 ? r.timeout() : 10000))) {
      return MakeError(absl::StatusCode::kDeadlineExceeded, kErrHandshakeTimeout, "renegotiation did not finish in time");
    }
    {
      std::lock_guard<std::mutex> l(done->mu);
      if (!done->value.ok()) return done->value;
    }
    return GetConnection(r.connection_id());
  }

  absl::StatusOr<v1::ConnectionInfo> GetConnection(const std::string& id) { return OnConn(id, nullptr); }
  absl::StatusOr<v1::ConnectionInfo> GetConnection(const v1::ConnectionRequest& r) {
    return GetConnection(r.connection_id());
  }
  absl::StatusOr<v1::ConnectionInfo> End(const v1::ConnectionRequest& r) {
    return OnConn(r.connection_id(), [](Conn& c) {
      if (!c.closed) c.socket->End();
      return absl::OkStatus();
    });
  }
  absl::StatusOr<v1::ConnectionInfo> Destroy(const v1::ConnectionRequest& r) {
    return OnConn(r.connection_id(), [](Conn& c) {
      if (!c.closed) c.socket->Destroy();
      return absl::OkStatus();
    });
  }
  absl::StatusOr<v1::ConnectionInfo> KeyUpdate(const v1::KeyUpdateRequest& r) {
    return OnConn(r.connection_id(), [&](Conn& c) -> absl::Status {
      if (absl::Status s = RequireOpen(c); !s.ok()) return s;
      return c.socket->KeyUpdate(r.request_peer());
    });
  }
  absl::StatusOr<v1::ConnectionInfo> SetMaxSendFragment(const v1::SetMaxSendFragmentRequest& r) {
    if (r.size() < 512 || r.size() > 16384) {
      return MakeError(absl::StatusCode::kInvalidArgument, "ERR_OUT_OF_RANGE", "size: must be 512..16384");
    }
    return OnConn(r.connection_id(), [&](Conn& c) -> absl::Status {
      if (absl::Status s = RequireOpen(c); !s.ok()) return s;
      if (!c.socket->SetMaxSendFragment(static_cast<size_t>(r.size()))) {
        return Precondition(kErrInvalidState, "the engine refused the fragment size");
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<v1::ListConnectionsResponse> ListConnections(const v1::ListConnectionsRequest& r) {
    if (absl::Status s = CheckText("listenerId", r.listener_id(), kMaxIdBytes); !s.ok()) return s;
    if (r.page_size() < 0 || r.page_size() > 1000) return Invalid("pageSize", "must be 0..1000");
    uint64_t after = 0;
    if (!r.page_token().empty() && !absl::SimpleAtoi(r.page_token(), &after)) {
      return Invalid("pageToken", "not a token from nextPageToken");
    }
    int size = r.page_size() > 0 ? r.page_size() : 100;
    return RunFor<v1::ListConnectionsResponse>([&]() -> absl::StatusOr<v1::ListConnectionsResponse> {
      if (!r.listener_id().empty() && r.listener_id() != "client" && listeners_.count(r.listener_id()) == 0) {
        return NotFound("listenerId", r.listener_id());
      }
      std::vector<Conn*> all;
      for (auto& [id, c] : conns_) {
        if (c->number <= after) continue;
        if (r.listener_id() == "client" ? !c->listener_id.empty()
                                        : !r.listener_id().empty() && c->listener_id != r.listener_id()) {
          continue;
        }
        all.push_back(c.get());
      }
      std::sort(all.begin(), all.end(), [](Conn* a, Conn* b) { return a->number < b->number; });
      v1::ListConnectionsResponse resp;
      for (size_t i = 0; i < all.size() && static_cast<int>(i) < size; ++i) Describe(*all[i], resp.add_connections());
      if (static_cast<int>(all.size()) > size) resp.set_next_page_token(absl::StrCat(all[size - 1]->number));
      return resp;
    });
  }

  absl::StatusOr<v1::GetStatsResponse> GetStats(const v1::GetStatsRequest& r) {
    if (absl::Status s = CheckText("listenerId", r.listener_id(), kMaxIdBytes); !s.ok()) return s;
    return RunFor<v1::GetStatsResponse>([&]() -> absl::StatusOr<v1::GetStatsResponse> {
      if (!r.listener_id().empty() && listeners_.count(r.listener_id()) == 0) return NotFound("listenerId", r.listener_id());
      v1::GetStatsResponse resp;
      for (auto& [lid, l] : listeners_) {
        if (!r.listener_id().empty() && lid != r.listener_id()) continue;
        v1::ListenerStats* s = resp.add_listeners();
        s->set_listener_id(lid);
        s->set_total(l->server->accepted());
        s->set_refused(l->server->refused());
        for (auto& [k, v] : l->stats.handshakes) (*s->mutable_handshakes())[k] = v;
        for (auto& [k, v] : l->stats.protocols) (*s->mutable_protocols())[k] = v;
        for (auto& [k, v] : l->stats.ciphers) (*s->mutable_ciphers())[k] = v;
        s->set_resumed(l->stats.resumed);
        uint64_t in = l->stats.bytes_in, out = l->stats.bytes_out;
        int active = 0;
        for (auto& [cid, c] : conns_) {
          if (c->listener_id != lid || c->closed) continue;
          ++active;
          in += c->socket->bytes_read();
          out += c->socket->bytes_written();
        }
        s->set_active(active);
        s->set_bytes_in(in);
        s->set_bytes_out(out);
      }
      resp.set_contexts(static_cast<int>(contexts_.size()));
      resp.set_connections(OpenConnections());
      resp.set_buffered(buffered_.load());
      return resp;
    });
  }

  ControllerOptions options_;
  const ControllerLimits limits_;

 private:
  std::unique_ptr<epoll::LoopGroup> group_;
  epoll::Loop* loop_ = nullptr;
  std::mutex run_mu_;
  bool stopped_ = false;  // guarded by run_mu_

  // Loop thread only.
  std::map<std::string, std::shared_ptr<const SecureContext>> contexts_;
  std::map<std::string, std::unique_ptr<Listener>> listeners_;
  std::map<std::string, std::unique_ptr<Conn>> conns_;
  std::deque<std::string> closed_order_;
  uint64_t next_context_ = 0, next_listener_ = 0, next_conn_ = 0;
  std::atomic<size_t> buffered_{0};
  std::atomic<size_t> holders_{0};  // hold connections with bytes in their inbox

  std::mutex watch_mu_;
  std::condition_variable watch_cv_;
  std::vector<std::shared_ptr<Watcher>> watchers_;  // guarded by watch_mu_
  bool stopped_watching_ = false;                   // guarded by watch_mu_
};

absl::StatusOr<std::unique_ptr<Controller>> Controller::Create(ControllerOptions options) {
  auto state = std::make_unique<State>(std::move(options));
  if (absl::Status s = state->Start(); !s.ok()) return s;
  return std::unique_ptr<Controller>(new Controller(std::move(state)));
}

Controller::Controller(std::unique_ptr<State> state) : state_(std::move(state)) {}
Controller::~Controller() { Shutdown(); }
void Controller::Shutdown() { state_->Shutdown(); }

#define TLSCTL_FORWARD(Method, Req, Resp) \
  absl::StatusOr<v1::Resp> Controller::Method(const v1::Req& r) { return state_->Method(r); }
TLSCTL_UNARY_METHODS(TLSCTL_FORWARD)
#undef TLSCTL_FORWARD

absl::Status Controller::Read(const v1::ReadRequest& r, const std::function<bool(const v1::ReadChunk&)>& emit,
                              const std::function<bool()>& cancelled) {
  return state_->Read(r, emit, cancelled);
}
absl::Status Controller::WatchEvents(const v1::WatchEventsRequest& r,
                                     const std::function<bool(const v1::ControlEvent&)>& emit,
                                     const std::function<bool()>& cancelled, const std::function<void()>& ready) {
  return state_->WatchEvents(r, emit, cancelled, ready);
}

}  // namespace control
}  // namespace tlsengine

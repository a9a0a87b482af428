#include "adapters/grpc/connections.h"

#include <algorithm>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "adapters/epoll/echo.h"
#include "adapters/grpc/stats.h"
#include "adapters/grpc/summaries.h"
#include "adapters/grpc/validate.h"
#include "core/errors.h"

namespace tlsengine {
namespace control {
namespace {

using epoll::TlsSocket;

absl::Status RequireOpen(const Conn& c) {
  if (c.closed) return Precondition("ERR_STREAM_DESTROYED", absl::StrCat("connectionId: ", c.id, " is closed"));
  return absl::OkStatus();
}

}  // namespace

Conn* Connections::Add(const std::shared_ptr<TlsSocket>& s, const std::string& lid, const std::string& mode) {
  if (r_.OpenConnections() >= r_.limits().max_connections) return nullptr;
  auto c = std::make_unique<Conn>();
  c->number = ++r_.next_conn;
  c->id = absl::StrCat("c", c->number);
  c->listener_id = lid;
  c->mode = mode;
  c->socket = s;
  c->created = r_.Now();
  Conn* raw = c.get();
  r_.conns[c->id] = std::move(c);
  TlsSocket* sock = s.get();
  std::string cid = raw->id;
  if (mode == "echo") {
    EchoWithBackpressure(*sock);
  } else {
    sock->handlers().on_data = [this, cid, sock](absl::string_view d) {
      Conn* c = r_.ConnOrNull(cid);
      if (c != nullptr && inbox_.Hold(*c, d)) sock->Pause();
    };
  }
  sock->handlers().on_end = [this, cid] {
    Conn* c = r_.ConnOrNull(cid);
    if (c == nullptr) return;
    std::lock_guard<std::mutex> l(c->inbox->mu);
    c->inbox->ended = true;
    c->inbox->cv.notify_all();
  };
  sock->handlers().on_session = [this, cid](const std::string& session) {
    Conn* c = r_.ConnOrNull(cid);
    if (c == nullptr) return;
    c->session = session;
    v1::ControlEvent ev;
    ev.set_type("session");
    ev.set_connection_id(cid);
    events_.Publish(std::move(ev));
  };
  sock->handlers().on_ocsp_response = [this, cid](const std::string& response) {
    v1::ControlEvent ev;
    ev.set_type("OCSPResponse");
    ev.set_connection_id(cid);
    ev.set_message(response.empty() ? "none stapled" : absl::StrCat(response.size(), " bytes"));
    events_.Publish(std::move(ev));
  };
  sock->handlers().on_close = [this, cid, sock](bool) { OnClose(cid, sock); };
  return raw;
}

void Connections::OnClose(const std::string& cid, TlsSocket* sock) {
  Conn* found = r_.ConnOrNull(cid);
  if (found == nullptr) return;
  Conn& c = *found;
  c.closed = true;
  c.close_status = sock->close_status();
  {
    std::lock_guard<std::mutex> l(c.inbox->mu);
    c.inbox->closed = true;
    c.inbox->error = NodeCode(c.close_status);
    c.inbox->cv.notify_all();
  }
  auto l = r_.listeners.find(c.listener_id);
  if (l != r_.listeners.end()) Stats::CountClosed(*l->second, *sock);
  v1::ControlEvent ev;
  ev.set_type("close");
  ev.set_listener_id(c.listener_id);
  ev.set_connection_id(cid);
  ev.set_error(NodeCode(c.close_status));
  ev.set_message(std::string(c.close_status.message()));
  events_.Publish(std::move(ev));
  r_.closed_order.push_back(cid);
  while (r_.closed_order.size() > r_.limits().closed_kept) {
    auto old = r_.conns.find(r_.closed_order.front());
    r_.closed_order.pop_front();
    if (old != r_.conns.end()) {
      inbox_.Release(*old->second);
      r_.conns.erase(old);
    }
  }
}

void Connections::Describe(const Conn& c, v1::ConnectionInfo* out) {
  TlsSocket& s = *c.socket;
  absl::Time now = r_.Now();
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
  out->set_paused(s.paused());
  out->set_error(NodeCode(c.close_status));
  out->set_error_message(std::string(c.close_status.message()));
}

absl::StatusOr<v1::ConnectResponse> Connections::Connect(const v1::ConnectRequest& r) {
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
  absl::Status started = r_.Run([&] {
    std::shared_ptr<const SecureContext> ctx = system_ctx;
    if (!r.context_id().empty()) {
      absl::StatusOr<std::shared_ptr<const SecureContext>> found = r_.FindContext("contextId", r.context_id());
      if (!found.ok()) {
        outcome->Set(found.status());
        return;
      }
      ctx = *found;
    }
    if (r_.OpenConnections() >= r_.limits().max_connections) {
      outcome->Set(Limit("too many connections", r_.limits().max_connections));
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
    absl::StatusOr<std::shared_ptr<TlsSocket>> s = TlsSocket::Connect(r_.loop(), o);
    if (!s.ok()) {
      outcome->Set(s.status());
      return;
    }
    Conn* c = Add(*s, "", "hold");
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
      events_.Publish(std::move(ev));
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
      r_.Run([&] {
          Conn* c = r_.ConnOrNull(cid);
          if (c != nullptr && !c->closed) c->socket->Destroy();
        }).IgnoreError();
    }
    return result;
  }
  return r_.RunFor<v1::ConnectResponse>([&]() -> absl::StatusOr<v1::ConnectResponse> {
    absl::StatusOr<Conn*> c = r_.FindConn(cid);
    if (!c.ok()) return c.status();
    v1::ConnectResponse resp;
    resp.set_connection_id(cid);
    Describe(**c, resp.mutable_connection());
    return resp;
  });
}

absl::StatusOr<v1::ConnectionInfo> Connections::OnConn(const std::string& id,
                                                       const std::function<absl::Status(Conn&)>& fn) {
  if (absl::Status s = CheckId("connectionId", id); !s.ok()) return s;
  return r_.RunFor<v1::ConnectionInfo>([&]() -> absl::StatusOr<v1::ConnectionInfo> {
    absl::StatusOr<Conn*> c = r_.FindConn(id);
    if (!c.ok()) return c.status();
    if (fn) {
      if (absl::Status s = fn(**c); !s.ok()) return s;
    }
    v1::ConnectionInfo info;
    Describe(**c, &info);
    return info;
  });
}

absl::StatusOr<v1::WriteResponse> Connections::Write(const v1::WriteRequest& r) {
  if (absl::Status s = CheckId("connectionId", r.connection_id()); !s.ok()) return s;
  const ControllerLimits& limits = r_.limits();
  if (r.data().size() > limits.max_write_bytes) {
    return Limit(absl::StrCat("data: ", r.data().size(), " bytes in one Write"), limits.max_write_bytes);
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
    if (!r.data().empty() && c.socket->buffered_writes() >= limits.max_connection_buffer) {
      return Limit(absl::StrCat("data: connectionId ", c.id, " already has ", c.socket->buffered_writes(),
                                " bytes waiting for its peer to read"),
                   limits.max_connection_buffer);
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

absl::StatusOr<v1::ConnectionInfo> Connections::Renegotiate(const v1::RenegotiateRequest& r) {
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
  return OnConn(r.connection_id(), nullptr);
}

absl::StatusOr<v1::ConnectionInfo> Connections::GetConnection(const v1::ConnectionRequest& r) {
  return OnConn(r.connection_id(), nullptr);
}

absl::StatusOr<v1::ConnectionInfo> Connections::End(const v1::ConnectionRequest& r) {
  return OnConn(r.connection_id(), [](Conn& c) {
    if (!c.closed) c.socket->End();
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ConnectionInfo> Connections::Destroy(const v1::ConnectionRequest& r) {
  return OnConn(r.connection_id(), [](Conn& c) {
    if (!c.closed) c.socket->Destroy();
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ConnectionInfo> Connections::KeyUpdate(const v1::KeyUpdateRequest& r) {
  return OnConn(r.connection_id(), [&](Conn& c) -> absl::Status {
    if (absl::Status s = RequireOpen(c); !s.ok()) return s;
    return c.socket->KeyUpdate(r.request_peer());
  });
}

absl::StatusOr<v1::ConnectionInfo> Connections::SetMaxSendFragment(const v1::SetMaxSendFragmentRequest& r) {
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

absl::StatusOr<v1::ListConnectionsResponse> Connections::ListConnections(const v1::ListConnectionsRequest& r) {
  if (absl::Status s = CheckText("listenerId", r.listener_id(), kMaxIdBytes); !s.ok()) return s;
  if (r.page_size() < 0 || r.page_size() > 1000) return Invalid("pageSize", "must be 0..1000");
  uint64_t after = 0;
  if (!r.page_token().empty() && !absl::SimpleAtoi(r.page_token(), &after)) {
    return Invalid("pageToken", "not a token from nextPageToken");
  }
  int size = r.page_size() > 0 ? r.page_size() : 100;
  return r_.RunFor<v1::ListConnectionsResponse>([&]() -> absl::StatusOr<v1::ListConnectionsResponse> {
    if (!r.listener_id().empty() && r.listener_id() != "client" && r_.listeners.count(r.listener_id()) == 0) {
      return NotFound("listenerId", r.listener_id());
    }
    std::vector<Conn*> all;
    for (auto& [id, c] : r_.conns) {
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

}  // namespace control
}  // namespace tlsengine

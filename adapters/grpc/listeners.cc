#include "adapters/grpc/listeners.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "adapters/grpc/stats.h"
#include "adapters/grpc/summaries.h"
#include "adapters/grpc/validate.h"
#include "core/errors.h"

namespace tlsengine {
namespace control {

using epoll::Server;
using epoll::TlsSocket;

absl::StatusOr<v1::ListenResponse> Listeners::Listen(const v1::ListenRequest& r) {
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
  return r_.RunFor<v1::ListenResponse>([&]() -> absl::StatusOr<v1::ListenResponse> {
    const ControllerLimits& limits = r_.limits();
    absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = r_.FindServingContext(r.context_id());
    if (!ctx.ok()) return ctx.status();
    if (static_cast<int>(r_.listeners.size()) >= limits.max_listeners) {
      return Limit("too many listeners", limits.max_listeners);
    }
    std::string id = absl::StrCat("l", ++r_.next_listener);
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
    so.max_connections =
        std::min(r.max_connections() > 0 ? r.max_connections() : limits.max_connections, limits.max_connections);
    so.honour_sslkeylogfile = false;
    so.session_cache = false;  // sessions go through our handlers below
    if (store == "memory") {
      size_t entries = r.session_store_entries() > 0 ? r.session_store_entries() : 20000;
      l->store = std::make_shared<epoll::MemorySessionStore>(entries, 32 << 20);
    }
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Create({r_.loop()}, so, Handlers(id, l->store != nullptr));
    if (!server.ok()) return Prefixed("Listen", server.status());
    absl::Status listened = r.path().empty() ? (*server)->Listen(r.port(), r.host()) : (*server)->ListenUnix(r.path());
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
    r_.listeners[id] = std::move(l);
    v1::ChangeResponse change;
    change.set_listener_id(id);
    change.set_change("listen");
    change.set_context_id(r.context_id());
    change.set_description(
        absl::StrCat("listening on ", resp.address().address(), ":", resp.address().port(), " (", mode, ")"));
    events_.PublishChange(change);
    return resp;
  });
}

epoll::ServerHandlers Listeners::Handlers(const std::string& lid, bool sessions) {
  epoll::ServerHandlers h;
  h.on_secure_connection = [this, lid](std::shared_ptr<TlsSocket> s) { OnSecureConnection(lid, std::move(s)); };
  h.on_client_error = [this, lid](const absl::Status& e, TlsSocket& s) {
    auto it = r_.listeners.find(lid);
    std::string code = NodeCode(e).empty() ? std::string(absl::StatusCodeToString(e.code())) : NodeCode(e);
    if (it != r_.listeners.end()) Stats::CountHandshake(*it->second, code);
    v1::ControlEvent ev;
    ev.set_type("clientError");
    ev.set_listener_id(lid);
    ev.set_error(code);
    ev.set_message(std::string(e.message()));
    ev.set_servername(s.servername());
    events_.Publish(std::move(ev));
  };
  h.on_ocsp_request = [this, lid](TlsSocket& s, const std::string&, const std::string&,
                                  std::function<void(absl::StatusOr<std::string>)> done) {
    std::string response;
    auto it = r_.listeners.find(lid);
    if (it != r_.listeners.end()) {
      auto o = it->second->ocsp.find(Registry::SniKey(*it->second, s.servername()));
      if (o != it->second->ocsp.end()) response = o->second.der;
    }
    v1::ControlEvent ev;
    ev.set_type("OCSPRequest");
    ev.set_listener_id(lid);
    ev.set_servername(s.servername());
    ev.set_message(response.empty() ? "no response to staple" : "stapled");
    events_.Publish(std::move(ev));
    done(response);
  };
  if (!sessions) return h;
  h.on_new_session = [this, lid](TlsSocket&, const std::string& id, const std::string& session,
                                 std::function<void(absl::Status)> done) {
    auto it = r_.listeners.find(lid);
    if (it != r_.listeners.end() && it->second->store) {
      // A session the store cannot hold is not an error for the client.
      it->second->store->Put(id, session, r_.loop()->Now() + it->second->session_timeout).IgnoreError();
    }
    v1::ControlEvent ev;
    ev.set_type("newSession");
    ev.set_listener_id(lid);
    ev.set_session_id(absl::BytesToHexString(id));
    events_.Publish(std::move(ev));
    done(absl::OkStatus());
  };
  h.on_resume_session = [this, lid](TlsSocket&, const std::string& id,
                                    std::function<void(absl::StatusOr<std::string>)> done) {
    auto it = r_.listeners.find(lid);
    std::optional<std::string> got;
    if (it != r_.listeners.end() && it->second->store) got = it->second->store->Get(id, r_.loop()->Now());
    done(got.value_or(""));
  };
  return h;
}

void Listeners::OnSecureConnection(const std::string& lid, std::shared_ptr<TlsSocket> s) {
  auto it = r_.listeners.find(lid);
  if (it == r_.listeners.end()) {
    s->Destroy();
    return;
  }
  Listener& l = *it->second;
  Conn* c = conns_.Add(s, lid, l.mode);
  if (c == nullptr) {
    Stats::CountHandshake(l, kLimitCode);
    v1::ControlEvent ev;
    ev.set_type("clientError");
    ev.set_listener_id(lid);
    ev.set_error(kLimitCode);
    ev.set_message(absl::StrCat("connection limit ", r_.limits().max_connections, " reached"));
    events_.Publish(std::move(ev));
    s->Destroy();
    return;
  }
  Stats::CountSecure(l, *s);
  v1::ControlEvent ev;
  ev.set_type("secureConnection");
  ev.set_listener_id(lid);
  ev.set_connection_id(c->id);
  ev.set_servername(s->servername());
  ev.set_protocol(s->protocol());
  if (auto cipher = s->GetCipher()) ev.set_cipher(cipher->name);
  ev.set_session_reused(s->is_session_reused());
  events_.Publish(std::move(ev));
}

absl::StatusOr<v1::CloseListenerResponse> Listeners::CloseListener(const v1::CloseListenerRequest& r) {
  if (absl::Status s = CheckId("listenerId", r.listener_id()); !s.ok()) return s;
  if (r.deadline() < 0 || r.deadline() > 600000) return Invalid("deadline", "must be 0..600000 milliseconds");
  absl::Duration deadline = absl::Milliseconds(r.deadline() > 0 ? r.deadline() : 5000);
  std::shared_ptr<Mailbox<bool>> closed;
  v1::CloseListenerResponse resp;
  absl::Status err;
  absl::Status s = r_.Run([&] {
    absl::StatusOr<Listener*> l = r_.FindListener(r.listener_id());
    if (!l.ok()) {
      err = l.status();
      return;
    }
    (*l)->closing = true;
    closed = (*l)->closed;
    if (!(*l)->server->Close([closed] { closed->Set(true); }).ok()) closed->Set(true);
    for (auto& [id, c] : r_.conns) {
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
    r_.Run([&] {
        for (auto& [id, c] : r_.conns) {
          if (c->listener_id == r.listener_id() && !c->closed) {
            c->socket->Destroy();
            resp.set_destroyed(resp.destroyed() + 1);
          }
        }
      }).IgnoreError();
    resp.set_ended(resp.ended() - resp.destroyed());
    closed->Wait(absl::Seconds(5));
  }
  r_.Run([&] {
      auto it = r_.listeners.find(r.listener_id());
      // The Server may be destroyed only once its close callback ran.
      if (it != r_.listeners.end() && it->second->closed->done) r_.listeners.erase(it);
    }).IgnoreError();
  v1::ChangeResponse change;
  change.set_listener_id(r.listener_id());
  change.set_change("closeListener");
  change.set_description(absl::StrCat("closed: ", resp.ended(), " ended, ", resp.destroyed(), " destroyed"));
  events_.PublishChange(change);
  return resp;
}

}  // namespace control
}  // namespace tlsengine

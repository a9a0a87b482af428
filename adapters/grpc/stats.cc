#include "adapters/grpc/stats.h"

#include "adapters/grpc/validate.h"

namespace tlsengine {
namespace control {

void Stats::CountHandshake(Listener& l, const std::string& code) { ++l.stats.handshakes[code]; }

void Stats::CountSecure(Listener& l, epoll::TlsSocket& s) {
  ++l.stats.handshakes["ok"];
  ++l.stats.protocols[s.protocol()];
  if (auto cipher = s.GetCipher()) ++l.stats.ciphers[cipher->name];
  if (s.is_session_reused()) ++l.stats.resumed;
}

void Stats::CountClosed(Listener& l, const epoll::TlsSocket& s) {
  l.stats.bytes_in += s.bytes_read();
  l.stats.bytes_out += s.bytes_written();
}

absl::StatusOr<v1::GetStatsResponse> Stats::GetStats(const v1::GetStatsRequest& r) {
  if (absl::Status s = CheckText("listenerId", r.listener_id(), kMaxIdBytes); !s.ok()) return s;
  return r_.RunFor<v1::GetStatsResponse>([&]() -> absl::StatusOr<v1::GetStatsResponse> {
    if (!r.listener_id().empty() && r_.listeners.count(r.listener_id()) == 0) {
      return NotFound("listenerId", r.listener_id());
    }
    v1::GetStatsResponse resp;
    for (auto& [lid, l] : r_.listeners) {
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
      for (auto& [cid, c] : r_.conns) {
        if (c->listener_id != lid || c->closed) continue;
        ++active;
        in += c->socket->bytes_read();
        out += c->socket->bytes_written();
      }
      s->set_active(active);
      s->set_bytes_in(in);
      s->set_bytes_out(out);
    }
    resp.set_contexts(static_cast<int>(r_.contexts.size()));
    resp.set_connections(r_.OpenConnections());
    resp.set_buffered(inbox_.buffered());
    return resp;
  });
}

}  // namespace control
}  // namespace tlsengine

#include "adapters/grpc/live.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "adapters/grpc/request_files.h"
#include "adapters/grpc/summaries.h"
#include "adapters/grpc/validate.h"
#include "core/ocsp.h"

namespace tlsengine {
namespace control {
namespace {

// The keys a listener's Server gets: the encrypting one, then those not
// retired at `now`.
std::string JoinKeys(const Listener& l, absl::Time now) {
  std::string keys;
  for (size_t i = 0; i < l.keys.size(); ++i) {
    if (i == 0 || l.keys[i].retire > now) keys += l.keys[i].key;
  }
  return keys;
}

}  // namespace

absl::StatusOr<v1::ChangeResponse> LiveChanges::ChangeListener(
    const std::string& listener_id, absl::string_view kind,
    const std::function<absl::Status(Listener&, v1::ChangeResponse&)>& apply) {
  if (absl::Status s = CheckId("listenerId", listener_id); !s.ok()) return s;
  return r_.RunFor<v1::ChangeResponse>([&]() -> absl::StatusOr<v1::ChangeResponse> {
    absl::StatusOr<Listener*> l = r_.FindListener(listener_id);
    if (!l.ok()) return l.status();
    v1::ChangeResponse change;
    if (absl::Status s = apply(**l, change); !s.ok()) return s;
    change.set_listener_id(listener_id);
    change.set_change(std::string(kind));
    events_.PublishChange(change);
    return change;
  });
}

void LiveChanges::ServedBy(const std::string& context_id, v1::ChangeResponse& change) {
  change.set_context_id(context_id);
  auto it = r_.contexts.find(context_id);
  if (it == r_.contexts.end()) return;
  for (const CertificateInfo& c : ServedCertificates(it->second->options())) change.add_fingerprint256(c.fingerprint256);
}

absl::StatusOr<std::shared_ptr<const SecureContext>> LiveChanges::BuildServed(const std::string& listener_id,
                                                                             const std::string& context_id) {
  if (absl::Status s = CheckId("listenerId", listener_id); !s.ok()) return s;
  std::shared_ptr<const SecureContext> ctx;
  std::shared_ptr<TicketKeys> keys;
  absl::Status lookup;
  absl::Status ran = r_.Run([&] {
    absl::StatusOr<Listener*> l = r_.FindListener(listener_id);
    if (!l.ok()) {
      lookup = l.status();
      return;
    }
    absl::StatusOr<std::shared_ptr<const SecureContext>> c = r_.FindServingContext(context_id);
    if (!c.ok()) {
      lookup = c.status();
      return;
    }
    ctx = *c;
    keys = (*l)->server->ticket_key_set();
  });
  if (!ran.ok()) return ran;
  if (!lookup.ok()) return lookup;
  // Built here, on the calling thread, so that the loop and its
  // connections never wait for a context build.
  absl::StatusOr<std::shared_ptr<const SecureContext>> built = epoll::WithTicketKeySet(ctx, keys);
  if (!built.ok()) return Prefixed("contextId", built.status());
  return built;
}

absl::StatusOr<v1::ChangeResponse> LiveChanges::ChangeServing(const std::string& listener_id,
                                                              const std::string& context_id, absl::string_view kind,
                                                              const ServingChange& apply) {
  if (absl::Status s = CheckId("contextId", context_id); !s.ok()) return s;
  absl::StatusOr<std::shared_ptr<const SecureContext>> served = BuildServed(listener_id, context_id);
  if (!served.ok()) return served.status();
  return ChangeListener(listener_id, kind, [&](Listener& l, v1::ChangeResponse& change) {
    absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = r_.FindServingContext(context_id);
    if (!ctx.ok()) return ctx.status();  // deleted meanwhile
    return apply(l, *ctx, *served, change);
  });
}

absl::StatusOr<v1::ChangeResponse> LiveChanges::AddContext(const v1::AddContextRequest& r) {
  return ChangeServing(r.listener_id(), r.context_id(), "addContext",
                       [&](Listener& l, const std::shared_ptr<const SecureContext>& ctx,
                           const std::shared_ptr<const SecureContext>& served, v1::ChangeResponse& change) {
    if (absl::Status s = CheckServername("servername", r.servername(), ctx); !s.ok()) return s;
    if (l.sni.size() >= 1000) return Limit("too many SNI names on one listener", 1000);
    std::string key = Lower(r.servername());
    // Served with the listener's ticket keys (BuildServed), so that
    // RotateTicketKeys reaches this name too; nothing is built here.
    if (absl::Status s = l.server->AddContext(key, served); !s.ok()) return Prefixed("servername", s);
    auto old = l.sni.find(key);
    if (old != l.sni.end()) change.set_previous_context_id(old->second);
    l.sni[key] = r.context_id();
    change.set_servername(key);
    ServedBy(r.context_id(), change);
    change.set_description(absl::StrCat("new connections for ", key, " get ", r.context_id()));
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ChangeResponse> LiveChanges::RemoveContext(const v1::RemoveContextRequest& r) {
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

absl::StatusOr<v1::ChangeResponse> LiveChanges::ReplaceContext(const v1::ReplaceContextRequest& r) {
  // The listener keeps its ticket keys, so sessions issued before the
  // replacement still resume.
  return ChangeServing(r.listener_id(), r.context_id(), "replaceContext",
                       [&](Listener& l, const std::shared_ptr<const SecureContext>&,
                           const std::shared_ptr<const SecureContext>& served, v1::ChangeResponse& change) {
    if (absl::Status s = l.server->SetSecureContext(served); !s.ok()) return Prefixed("contextId", s);
    change.set_previous_context_id(l.context_id);
    l.context_id = r.context_id();
    l.ocsp.erase("");  // the stapled response was for the old certificate
    ServedBy(r.context_id(), change);
    change.set_ticket_keys(static_cast<int>(l.keys.size()));
    change.set_description(absl::StrCat("new connections get ", r.context_id(), " (was ", change.previous_context_id(),
                                        "); open connections carry on"));
    return absl::OkStatus();
  });
}

void LiveChanges::RetireKeys(const std::string& lid) {
  auto it = r_.listeners.find(lid);
  if (it == r_.listeners.end() || it->second->closing) return;
  Listener& l = *it->second;
  absl::Time now = r_.loop()->Now();
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
    events_.PublishChange(change);
  }
}

absl::StatusOr<v1::ChangeResponse> LiveChanges::RotateTicketKeys(const v1::RotateTicketKeysRequest& r) {
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
    absl::Time now = r_.loop()->Now();
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
    // In place: every context the listener serves reads this key set.
    if (absl::Status s = l.server->SetTicketKeys(JoinKeys(l, now)); !s.ok()) {
      l.keys = saved;
      return Prefixed("key", s);
    }
    std::string lid = l.id;
    r_.loop()->AddTimer(now + keep, [this, lid] { RetireKeys(lid); });
    change.set_ticket_keys(static_cast<int>(keys.size()));
    change.set_description(absl::StrCat("new tickets use key ", absl::BytesToHexString(key.substr(0, 16)), "; ",
                                        keys.size() - 1, " previous key(s) decrypt for ", absl::FormatDuration(keep)));
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::ChangeResponse> LiveChanges::SetOcspResponse(const v1::SetOcspResponseRequest& r) {
  if (absl::Status s = CheckText("servername", r.servername(), kMaxNameBytes); !s.ok()) return s;
  absl::StatusOr<std::string> der =
      InlineOrFile("response", r.response(), "responseFile", r.response_file(), r_.limits().max_field_bytes);
  if (!der.ok()) return der.status();
  std::optional<OcspInfo> info;
  if (!der->empty()) {
    absl::StatusOr<OcspResponseInfo> parsed = ParseOcspResponse(*der);
    if (!parsed.ok()) return Prefixed(r.response_file().empty() ? "response" : "responseFile", parsed.status());
    info = OcspInfo{*der, parsed->next_update};
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

}  // namespace control
}  // namespace tlsengine

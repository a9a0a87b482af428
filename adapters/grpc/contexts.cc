#include "adapters/grpc/contexts.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/grpc/request_files.h"
#include "adapters/grpc/summaries.h"
#include "adapters/grpc/validate.h"
#include "core/tls_connection.h"

namespace tlsengine {
namespace control {

absl::StatusOr<v1::GetCiphersResponse> Contexts::GetCiphers(const v1::GetCiphersRequest&) {
  v1::GetCiphersResponse resp;
  for (const std::string& c : tlsengine::GetCiphers()) resp.add_ciphers(c);
  return resp;
}

absl::StatusOr<v1::CreateContextResponse> Contexts::CreateContext(const v1::CreateContextRequest& r) {
  const ControllerLimits& limits = r_.limits();
  const size_t max = limits.max_field_bytes;
  int files = r.key_file_size() + r.cert_file_size() + r.ca_file_size() + r.crl_file_size() + !r.pfx_file().empty() +
              !r.dhparam_file().empty();
  if (files > limits.max_files_per_request) {
    return Limit(absl::StrCat("CreateContext names ", files, " files"), limits.max_files_per_request);
  }
  FileBudget budget{limits.max_file_bytes_per_request, limits.max_file_bytes_per_request};
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
      {"ciphers", &r.ciphers()},        {"ciphersuites", &r.ciphersuites()},
      {"ecdhCurve", &r.ecdh_curve()},   {"minVersion", &r.min_version()},
      {"maxVersion", &r.max_version()}, {"secureProtocol", &r.secure_protocol()},
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
  absl::Time now = r_.Now();
  return r_.RunFor<v1::CreateContextResponse>([&]() -> absl::StatusOr<v1::CreateContextResponse> {
    if (static_cast<int>(r_.contexts.size()) >= r_.limits().max_contexts) {
      return Limit("too many contexts", r_.limits().max_contexts);
    }
    std::string id = absl::StrCat("ctx", ++r_.next_context);
    r_.contexts[id] = *ctx;
    v1::CreateContextResponse resp;
    resp.set_context_id(id);
    for (const std::string& w : (*ctx)->warnings()) resp.add_warnings(w);
    for (const CertificateInfo& c : certs) FillSummary(c, now, resp.add_certificates());
    return resp;
  });
}

absl::StatusOr<v1::DeleteContextResponse> Contexts::DeleteContext(const v1::DeleteContextRequest& r) {
  if (absl::Status s = CheckId("contextId", r.context_id()); !s.ok()) return s;
  return r_.RunFor<v1::DeleteContextResponse>([&]() -> absl::StatusOr<v1::DeleteContextResponse> {
    if (r_.contexts.count(r.context_id()) == 0) return NotFound("contextId", r.context_id());
    for (auto& [lid, l] : r_.listeners) {
      bool used = l->context_id == r.context_id();
      for (auto& [name, cid] : l->sni) used = used || cid == r.context_id();
      if (used) {
        return Precondition("ERR_TLS_CONTEXT_IN_USE",
                            absl::StrCat("contextId: ", r.context_id(), " is in use by listener ", lid));
      }
    }
    r_.contexts.erase(r.context_id());
    return v1::DeleteContextResponse();
  });
}

absl::StatusOr<v1::ListCertificatesResponse> Contexts::ListCertificates(const v1::ListCertificatesRequest& r) {
  if (!r.context_id().empty() && (!r.listener_id().empty() || !r.servername().empty())) {
    return Invalid("contextId", "give contextId alone, or listenerId and servername");
  }
  if (absl::Status s = CheckText("listenerId", r.listener_id(), kMaxIdBytes); !s.ok()) return s;
  if (absl::Status s = CheckText("servername", r.servername(), kMaxNameBytes); !s.ok()) return s;
  absl::Time now = r_.Now();
  return r_.RunFor<v1::ListCertificatesResponse>([&]() -> absl::StatusOr<v1::ListCertificatesResponse> {
    v1::ListCertificatesResponse resp;
    auto add = [&](const std::string& lid, const std::string& name, const std::string& cid, const OcspInfo* ocsp) {
      v1::CertificateEntry* e = resp.add_entries();
      e->set_listener_id(lid);
      e->set_servername(name);
      e->set_context_id(cid);
      auto c = r_.contexts.find(cid);
      if (c == r_.contexts.end()) return;
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
      if (r_.contexts.count(r.context_id()) == 0) return NotFound("contextId", r.context_id());
      add("", "", r.context_id(), nullptr);
      return resp;
    }
    if (!r.listener_id().empty()) {
      absl::StatusOr<Listener*> l = r_.FindListener(r.listener_id());
      if (!l.ok()) return l.status();
    }
    for (auto& [lid, l] : r_.listeners) {
      if (l->closing || (!r.listener_id().empty() && lid != r.listener_id())) continue;
      auto ocsp = [&](const std::string& key) -> const OcspInfo* {
        auto o = l->ocsp.find(key);
        return o == l->ocsp.end() ? nullptr : &o->second;
      };
      if (!r.servername().empty()) {
        std::string key = Registry::SniKey(*l, r.servername());
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

}  // namespace control
}  // namespace tlsengine

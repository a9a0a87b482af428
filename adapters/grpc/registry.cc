#include "adapters/grpc/registry.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/grpc/validate.h"
#include "core/errors.h"

namespace tlsengine {
namespace control {

Registry::Registry(ControllerOptions options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = [] { return absl::Now(); };
}

Registry::~Registry() { Stop(); }

absl::Status Registry::Start() {
  absl::StatusOr<std::unique_ptr<epoll::LoopGroup>> g = epoll::LoopGroup::Start(1);
  if (!g.ok()) return g.status();
  group_ = *std::move(g);
  loop_ = group_->loops()[0];
  return absl::OkStatus();
}

absl::Status Registry::Run(const std::function<void()>& fn) {
  std::lock_guard<std::mutex> l(run_mu_);
  if (stopped_ || group_ == nullptr) {
    return MakeError(absl::StatusCode::kUnavailable, "ERR_SERVER_NOT_RUNNING", "the controller is shut down");
  }
  // A loop whose Run() failed runs nothing more: say why instead of
  // waiting for it.
  if (absl::Status dead = group_->status(); !dead.ok()) return dead;
  group_->RunOn(0, fn);
  return absl::OkStatus();
}

bool Registry::running() {
  std::lock_guard<std::mutex> l(run_mu_);
  return !stopped_ && group_ != nullptr;
}

void Registry::Stop() {
  std::lock_guard<std::mutex> l(run_mu_);
  if (stopped_ || group_ == nullptr) return;
  stopped_ = true;
  // The service is going away: a loop that had failed has answered every
  // call since with its error (Run); nobody is left to tell.
  group_->Stop().IgnoreError();
}

absl::StatusOr<std::shared_ptr<const SecureContext>> Registry::FindContext(absl::string_view field,
                                                                          const std::string& id) {
  auto it = contexts.find(id);
  if (it == contexts.end()) return NotFound(field, id);
  return it->second;
}

absl::StatusOr<std::shared_ptr<const SecureContext>> Registry::FindServingContext(const std::string& id) {
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = FindContext("contextId", id);
  if (!ctx.ok()) return ctx;
  if ((*ctx)->options().cert.empty() && (*ctx)->options().pfx.empty()) {
    return Invalid("contextId", absl::StrCat(id, " has no certificate to serve (cert or pfx)"));
  }
  return ctx;
}

absl::StatusOr<Listener*> Registry::FindListener(const std::string& id) {
  auto it = listeners.find(id);
  if (it == listeners.end() || it->second->closing) return NotFound("listenerId", id);
  return it->second.get();
}

absl::StatusOr<Conn*> Registry::FindConn(const std::string& id) {
  Conn* c = ConnOrNull(id);
  if (c == nullptr) return NotFound("connectionId", id);
  return c;
}

Conn* Registry::ConnOrNull(const std::string& id) {
  auto it = conns.find(id);
  return it == conns.end() ? nullptr : it->second.get();
}

int Registry::OpenConnections() const {
  int n = 0;
  for (auto& [id, c] : conns) n += c->closed ? 0 : 1;
  return n;
}

std::string Registry::SniKey(const Listener& l, const std::string& servername) {
  std::string name = Lower(servername);
  if (l.sni.count(name)) return name;
  size_t dot = name.find('.');
  if (dot != std::string::npos) {
    std::string wild = absl::StrCat("*", name.substr(dot));
    if (l.sni.count(wild)) return wild;
  }
  return "";
}

}  // namespace control
}  // namespace tlsengine

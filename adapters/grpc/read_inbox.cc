#include "adapters/grpc/read_inbox.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/grpc/validate.h"

namespace tlsengine {
namespace control {

bool ReadInbox::Hold(Conn& c, absl::string_view d) {
  size_t held;
  {
    std::lock_guard<std::mutex> l(c.inbox->mu);
    if (c.inbox->bytes == 0 && !d.empty()) holders_.fetch_add(1);
    c.inbox->chunks.emplace_back(d);
    c.inbox->bytes += d.size();
    held = c.inbox->bytes;
    c.inbox->cv.notify_all();
  }
  buffered_.fetch_add(d.size());
  return !c.socket->paused() && MustPause(held, 1);
}

void ReadInbox::Release(Conn& c) {
  std::lock_guard<std::mutex> l(c.inbox->mu);
  if (c.inbox->bytes > 0) holders_.fetch_sub(1);
  buffered_.fetch_sub(c.inbox->bytes);
  c.inbox->bytes = 0;
  c.inbox->chunks.clear();
}

bool ReadInbox::MustPause(size_t held, size_t slack) const {
  const ControllerLimits& limits = r_.limits();
  const size_t budget = limits.max_buffered_bytes;
  const size_t total = buffered_.load();
  if (held * slack >= limits.max_connection_buffer) return true;
  if (total * slack < budget) return false;
  const size_t share = budget / std::max<size_t>(holders_.load(), 1);
  if (held * slack >= share) return true;
  const size_t floor = budget / static_cast<size_t>(std::max(limits.max_connections, 1));
  return total >= 2 * budget && held * slack >= floor;
}

void ReadInbox::ResumeIfDrained(const std::string& cid) {
  r_.loop()->Post([this, cid] {
    Conn* c = r_.ConnOrNull(cid);
    if (c == nullptr || !c->socket->paused() || c->closed) return;
    size_t held;
    {
      std::lock_guard<std::mutex> l(c->inbox->mu);
      held = c->inbox->bytes;
    }
    if (!MustPause(held, 2)) c->socket->Resume();
  });
}

absl::Status ReadInbox::Read(const v1::ReadRequest& r, const std::function<bool(const v1::ReadChunk&)>& emit,
                             const std::function<bool()>& cancelled) {
  if (absl::Status s = CheckId("connectionId", r.connection_id()); !s.ok()) return s;
  if (r.timeout() < 0) return Invalid("timeout", "must not be negative");
  std::shared_ptr<Inbox> inbox;
  absl::Status found;
  absl::Status ran = r_.Run([&] {
    Conn* c = r_.ConnOrNull(r.connection_id());
    if (c == nullptr) {
      found = NotFound("connectionId", r.connection_id());
    } else if (c->mode != "hold") {
      found = Precondition("ERR_TLS_CONTROL_ECHO",
                           absl::StrCat("connectionId: ", r.connection_id(), " is in echo mode; nothing is held"));
    } else {
      inbox = c->inbox;
    }
  });
  if (!ran.ok()) return ran;
  if (!found.ok()) return found;
  if (inbox == nullptr) return NotFound("connectionId", r.connection_id());
  {
    std::lock_guard<std::mutex> l(inbox->mu);
    if (inbox->reader) {
      return Precondition("ERR_TLS_CONTROL_BUSY",
                          absl::StrCat("connectionId: ", r.connection_id(), " already has a Read running"));
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

}  // namespace control
}  // namespace tlsengine

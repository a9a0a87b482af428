#include "adapters/epoll/session_store.h"

#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/errors.h"

namespace tlsengine {
namespace epoll {
namespace {

absl::Status InvalidArg(absl::string_view message) {
  return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, message);
}

}  // namespace

MemorySessionStore::MemorySessionStore(size_t max_entries, size_t max_bytes)
    : max_entries_(max_entries), max_bytes_(max_bytes) {}

absl::Status MemorySessionStore::Put(absl::string_view id, absl::string_view session_der,
                                     absl::Time expires) {
  if (id.empty()) return InvalidArg("session id is empty");
  if (id.size() > kMaxSessionIdBytes) {
    return InvalidArg(absl::StrCat("session id is ", id.size(), " bytes; TLS allows at most ",
                                   kMaxSessionIdBytes));
  }
  if (session_der.empty()) return InvalidArg("session is empty");
  if (session_der.size() > kMaxSessionBytes) {
    return InvalidArg(absl::StrCat("session is ", session_der.size(), " bytes; at most ",
                                   kMaxSessionBytes, " are stored"));
  }
  const size_t entry_bytes = id.size() + session_der.size();
  if (max_entries_ == 0 || entry_bytes > max_bytes_) {
    return InvalidArg(absl::StrCat("a ", entry_bytes, "-byte session never fits a store of ",
                                   max_entries_, " entries and ", max_bytes_, " bytes"));
  }

  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(id); it != index_.end()) EraseLocked(it->second);
  while (!lru_.empty() && (lru_.size() >= max_entries_ || bytes_ + entry_bytes > max_bytes_)) {
    EraseLocked(std::prev(lru_.end()));
  }
  lru_.push_front(Entry{std::string(id), std::string(session_der), expires});
  index_.emplace(lru_.front().id, lru_.begin());
  bytes_ += entry_bytes;
  return absl::OkStatus();
}

std::optional<std::string> MemorySessionStore::Get(absl::string_view id, absl::Time now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(id);
  if (it == index_.end()) return std::nullopt;
  List::iterator entry = it->second;
  if (now >= entry->expires) {
    EraseLocked(entry);
    return std::nullopt;
  }
  lru_.splice(lru_.begin(), lru_, entry);  // iterators stay valid
  return entry->session;
}

void MemorySessionStore::Delete(absl::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(id);
  if (it != index_.end()) EraseLocked(it->second);
}

size_t MemorySessionStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lru_.size();
}

size_t MemorySessionStore::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

void MemorySessionStore::EraseLocked(List::iterator it) {
  bytes_ -= it->id.size() + it->session.size();
  index_.erase(it->id);
  lru_.erase(it);
}

}  // namespace epoll
}  // namespace tlsengine

// SessionStore: where a server keeps TLS sessions for resumption, behind
// Node's server 'newSession' / 'resumeSession' events. MemorySessionStore is
// the in-process one: a bounded LRU that several loops may share.
//
//   tlsengine::epoll::MemorySessionStore store(/*max_entries=*/10000,
//                                              /*max_bytes=*/16 << 20);
//   absl::Status s = store.Put(id, session_der, now + absl::Hours(2));
//   std::optional<std::string> der = store.Get(id, now);  // nullopt: full handshake
#ifndef TLSENGINE_ADAPTERS_EPOLL_SESSION_STORE_H_
#define TLSENGINE_ADAPTERS_EPOLL_SESSION_STORE_H_

#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tlsengine {
namespace epoll {

// A TLS session id is at most 32 bytes (RFC 5246 §7.4.1.2, and RFC 8446
// §4.1.2's legacy_session_id).
inline constexpr size_t kMaxSessionIdBytes = 32;
// A DER-encoded session holds one peer certificate at most; 64 KiB is far
// above any real one and keeps a single entry from taking the store.
inline constexpr size_t kMaxSessionBytes = 64 * 1024;

// The store the server consults. Implementations must be thread-safe: the
// loops of one server share a store.
class SessionStore {
 public:
  virtual ~SessionStore() = default;
  // Stores (or replaces) the session `session_der` under `id` until
  // `expires`. Errors: kInvalidArgument (Node code ERR_INVALID_ARG_VALUE)
  // for an empty id or one over kMaxSessionIdBytes, an empty session or one
  // over kMaxSessionBytes, or an entry the store can never hold.
  virtual absl::Status Put(absl::string_view id, absl::string_view session_der,
                           absl::Time expires) = 0;
  // A copy of the session stored under `id`, or nullopt when there is none
  // or it has expired (`now` >= its expiry).
  virtual std::optional<std::string> Get(absl::string_view id, absl::Time now) = 0;
  // Forgets `id`; a no-op when it is not stored.
  virtual void Delete(absl::string_view id) = 0;
};

// In-memory LRU bounded both in entries and in bytes (id + session, summed
// over entries), so a client that keeps making sessions only pushes out the
// least recently used ones. Expired entries are dropped when a Get finds
// them, or age out through the LRU. Thread-safe (one std::mutex; every call
// is O(1) apart from copying the bytes).
class MemorySessionStore : public SessionStore {
 public:
  // A store with room for `max_entries` entries and `max_bytes` bytes. With
  // either at 0 it holds nothing and every Put fails with kInvalidArgument.
  MemorySessionStore(size_t max_entries, size_t max_bytes);

  MemorySessionStore(const MemorySessionStore&) = delete;
  MemorySessionStore& operator=(const MemorySessionStore&) = delete;

  // Evicts least recently used entries until the new one fits.
  absl::Status Put(absl::string_view id, absl::string_view session_der,
                   absl::Time expires) override;
  // A hit counts as a use for the LRU order; an expired entry is removed.
  std::optional<std::string> Get(absl::string_view id, absl::Time now) override;
  void Delete(absl::string_view id) override;

  // How many entries, and how many bytes, the store holds now.
  size_t size() const;
  size_t bytes() const;

 private:
  struct Entry {
    std::string id;
    std::string session;
    absl::Time expires;
  };
  using List = std::list<Entry>;  // front: most recently used

  void EraseLocked(List::iterator it);

  const size_t max_entries_;
  const size_t max_bytes_;
  mutable std::mutex mu_;
  List lru_;                                             // guarded by mu_
  absl::flat_hash_map<std::string, List::iterator> index_;  // guarded by mu_
  size_t bytes_ = 0;                                     // guarded by mu_
};

}  // namespace epoll
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_EPOLL_SESSION_STORE_H_

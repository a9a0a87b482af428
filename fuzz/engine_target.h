// The loop shared by server_engine and client_engine: an engine fed the
// peer's flights, one chunk at a time.
#ifndef TLSENGINE_FUZZ_ENGINE_TARGET_H_
#define TLSENGINE_FUZZ_ENGINE_TARGET_H_

#include <cstdlib>
#include <vector>

#include "fuzz/common.h"

namespace tlsengine {
namespace fuzz {

// Runs `conn` over the chunks left in `in`. Suspensions are answered at
// once, or (async) before the next chunk. PollAndDrain checks the engine's
// promises.
inline void RunEngine(TlsConnection& conn, Input& in, bool async_answers) {
  std::vector<Event> pending;
  PollAndDrain(conn, async_answers ? &pending : nullptr);
  while (!in.empty() && !conn.finished()) {
    for (const Event& e : pending) AnswerSuspension(conn, e);
    pending.clear();
    FeedAndPoll(conn, in.Chunk(), async_answers ? &pending : nullptr);
    Advance(absl::Seconds(1));
    if (Now() >= conn.NextDeadline()) conn.OnTimer(Now());
    PollAndDrain(conn, async_answers ? &pending : nullptr);
  }
  for (const Event& e : pending) AnswerSuspension(conn, e);
  conn.OnTransportEof();
  PollAndDrain(conn);
}

// The whole of server_engine and client_engine (and their seed test): the
// first two bytes choose the configuration, the rest are the peer's chunks.
inline int RunEngineTarget(const uint8_t* data, size_t size, bool server) {
  ResetDeterminism();
  UseStream(server ? Stream::kServer : Stream::kClient);
  Input in(data, size);
  uint8_t a = in.Byte(), b = in.Byte();
  ConnectionOptions options;
  bool async_answers = false;
  if (server) {
    ServerConfig config = MakeServerConfig(a, b);
    options = config.options;
    async_answers = config.async_answers;
  } else {
    options = MakeClientConfig(a, b).options;
  }
  auto conn = TlsConnection::Create(options, Now());
  if (!conn.ok()) std::abort();  // the fixed configurations are valid
  RunEngine(**conn, in, async_answers);
  // Identity: an authorized client holds OpenSSL's own verdict too.
  if (!server && !AuthorizedImpliesOracle(**conn, TrustStore(), IdentityHost(options), Now())) std::abort();
  return 0;
}

}  // namespace fuzz
}  // namespace tlsengine

#endif  // TLSENGINE_FUZZ_ENGINE_TARGET_H_

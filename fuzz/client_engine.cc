// client_engine: a "server's" flights, in fuzzer-chosen chunks, into a
// client TlsConnection whose configuration (version, client certificate,
// servername or IP, ALPN, OCSP, rejectUnauthorized, key log, PHA) the first
// two bytes choose. The client's own ClientHello is deterministic, so
// recorded server flights stay valid and reach deep into the handshake.
//
// Input: [config a][config b] then chunks ([2-byte length][bytes]).
#include "fuzz/engine_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tlsengine::fuzz::RunEngineTarget(data, size, /*server=*/false);
}

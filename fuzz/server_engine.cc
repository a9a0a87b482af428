// server_engine: bytes from a "client", in fuzzer-chosen chunks, into a
// server TlsConnection whose configuration (version, ALPN, SNI table or
// callback, requestCert, session cache, OCSP, renegotiation, answers now or
// later) the first two bytes choose.
//
// Input: [config a][config b] then chunks ([2-byte length][bytes]).
#include "fuzz/engine_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return tlsengine::fuzz::RunEngineTarget(data, size, /*server=*/true);
}

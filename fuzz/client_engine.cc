// client_engine: a "server's" flights, in fuzzer-chosen chunks, into a
// client TlsConnection whose configuration (version, client certificate,
// servername or IP, ALPN, OCSP, rejectUnauthorized, key log, PHA) the first
// two bytes choose. The client's own ClientHello is deterministic, so
// recorded server flights stay valid and reach deep into the handshake.
//
// Input: [config a][config b] then chunks ([2-byte length][bytes]).
#include "fuzz/common.h"
#include "fuzz/engine_target.h"

using namespace tlsengine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ResetDeterminism();
  fuzz::UseStream(fuzz::Stream::kClient);
  fuzz::Input in(data, size);
  uint8_t a = in.Byte(), b = in.Byte();
  fuzz::ClientConfig config = fuzz::MakeClientConfig(a, b);
  auto conn = TlsConnection::Create(config.options, fuzz::Now());
  if (!conn.ok()) std::abort();
  fuzz::RunEngine(**conn, in, /*async_answers=*/false, config.options.max_input_buffer);
  return 0;
}

// server_engine: bytes from a "client", in fuzzer-chosen chunks, into a
// server TlsConnection whose configuration (version, ALPN, SNI table or
// callback, requestCert, session cache, OCSP, renegotiation, answers now or
// later) the first two bytes choose.
//
// Input: [config a][config b] then chunks ([2-byte length][bytes]).
#include "fuzz/common.h"
#include "fuzz/engine_target.h"

using namespace tlsengine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ResetDeterminism();
  fuzz::UseStream(fuzz::Stream::kServer);
  fuzz::Input in(data, size);
  uint8_t a = in.Byte(), b = in.Byte();
  fuzz::ServerConfig config = fuzz::MakeServerConfig(a, b);
  auto conn = TlsConnection::Create(config.options, fuzz::Now());
  if (!conn.ok()) std::abort();  // fixed configurations are valid
  fuzz::RunEngine(**conn, in, config.async_answers, config.options.max_input_buffer);
  return 0;
}

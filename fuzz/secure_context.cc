// secure_context: PEM keys, certificates, CRLs, PFX, passphrases, cipher
// strings, curve lists, DH parameters, versions and ticket keys into
// SecureContext::Create. Errors must be statuses with a code and message.
//
// Input: a flags byte, then chunks: key, cert, passphrase, pfx, ca, crl,
// ciphers, ciphersuites, ecdh_curve, dhparam, min_version, max_version,
// secure_protocol, ticket key, npn protocol.
#include <cstdlib>

#include "core/errors.h"
#include "fuzz/common.h"

using namespace tlsengine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ResetDeterminism();
  fuzz::UseStream(fuzz::Stream::kSetup);
  fuzz::Input in(data, size);
  uint8_t flags = in.Byte();
  SecureContextOptions o;
  auto text = [&in] { return std::string(in.Chunk()); };
  if (flags & 1) o.key = {text()};
  if (flags & 2) o.cert = {text()};
  o.passphrase = text();
  o.pfx = text();
  if (flags & 4) o.ca = std::vector<std::string>{text()};
  if (flags & 8) o.crl = {text()};
  o.ciphers = text();
  o.ciphersuites = text();
  std::string curve = text();
  if (!curve.empty()) o.ecdh_curve = curve;
  o.dhparam = text();
  if (flags & 16) o.min_version = text();
  if (flags & 32) o.max_version = text();
  if (flags & 64) o.secure_protocol = text();
  if (flags & 128) o.ticket_keys = {text()};
  std::string npn = text();
  if (!npn.empty()) o.npn_protocols = {npn};
  o.honor_cipher_order = in.Byte() & 1;
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(o);
  if (!ctx.ok() && (NodeCode(ctx.status()).empty() || ctx.status().message().empty())) std::abort();
  if (ctx.ok()) {
    ConnectionOptions co;
    co.secure_context = *ctx;
    co.is_server = flags & 1;
    if (!TlsConnection::Create(co, fuzz::Now()).ok()) std::abort();
  }
  return 0;
}

#include "examples/tlsctl/options.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/errors.h"

namespace tlsengine {
namespace tlsctl {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", why));
}

absl::Status ReadAll(absl::string_view flag, const std::vector<std::string>& paths, std::vector<std::string>* out) {
  for (const std::string& p : paths) {
    absl::StatusOr<std::string> text = ReadFlagFile(flag, p);
    if (!text.ok()) return text.status();
    out->push_back(*std::move(text));
  }
  return absl::OkStatus();
}

// Reads the files every TLS flag names into `o`.
absl::Status FillContext(const TlsFlags& f, SecureContextOptions& o) {
  absl::Status s = ReadAll("key", f.key, &o.key);
  if (s.ok()) s = ReadAll("cert", f.cert, &o.cert);
  if (!s.ok()) return s;
  if (!f.pfx.empty()) {
    absl::StatusOr<std::string> pfx = ReadFlagFile("pfx", f.pfx);
    if (!pfx.ok()) return pfx.status();
    // The library takes an empty pfx for none; Node's words for an empty file.
    if (pfx->empty()) return Bad("pfx", absl::StrCat("not enough data ('", f.pfx, "' is empty)"));
    o.pfx = *std::move(pfx);
  }
  o.passphrase = f.passphrase;
  if (!f.ca.empty()) {
    o.ca.emplace();
    s = ReadAll("ca", f.ca, &*o.ca);
    if (!s.ok()) return s;
  }
  if (!f.crl.empty()) {
    absl::StatusOr<std::string> crl = ReadFlagFile("crl", f.crl);
    if (!crl.ok()) return crl.status();
    o.crl = {*std::move(crl)};
  }
  if (!f.dhparam.empty()) {
    absl::StatusOr<std::string> dh = ReadFlagFile("dhparam", f.dhparam);
    if (!dh.ok()) return dh.status();
    o.dhparam = *std::move(dh);
  }
  o.ciphers = f.ciphers;
  o.ciphersuites = f.ciphersuites;
  if (!f.ecdh_curve.empty()) o.ecdh_curve = f.ecdh_curve;
  if (!f.min_version.empty()) o.min_version = f.min_version;
  if (!f.max_version.empty()) o.max_version = f.max_version;
  o.npn_protocols = f.npn;
  return absl::OkStatus();
}

// The library names the option in its message; the user knows flags.
absl::StatusOr<std::shared_ptr<const SecureContext>> MakeContext(absl::string_view what,
                                                                 const SecureContextOptions& o) {
  auto ctx = SecureContext::Create(o);
  if (!ctx.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", ctx.status().message()));
  return ctx;
}

std::string KeylogPath(const TlsFlags& f) {
  if (!f.keylog.empty()) return ResolvePath(f.keylog);
  const char* env = std::getenv("SSLKEYLOGFILE");
  return env != nullptr ? std::string(env) : std::string();
}

}  // namespace

std::string ResolvePath(const std::string& path) {
  const char* cwd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (cwd != nullptr && *cwd != '\0' && !path.empty() && path[0] != '/') return absl::StrCat(cwd, "/", path);
  return path;
}

absl::StatusOr<std::string> ReadFlagFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(ResolvePath(path), std::ios::binary);
  if (!in) return Bad(flag, absl::StrCat("cannot read '", path, "': ", std::strerror(errno)));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return Bad(flag, absl::StrCat("cannot read '", path, "': ", std::strerror(errno)));
  return s.str();
}

absl::StatusOr<ServerSetup> BuildServer(const ServeFlags& flags, const DefaultIdentity& default_identity) {
  ServerSetup out;
  SecureContextOptions& o = out.context_options;
  absl::Status s = FillContext(flags.tls, o);
  if (!s.ok()) return s;
  if (o.key.empty() && o.pfx.empty()) {
    absl::StatusOr<GeneratedIdentity> id = default_identity();
    if (!id.ok()) return absl::InvalidArgumentError(absl::StrCat("default certificate: ", id.status().message()));
    o.key = {id->key_pem};
    o.cert = {id->cert_pem};
  }
  o.honor_cipher_order = flags.honor_cipher_order;
  o.session_timeout = flags.session_timeout_s;
  if (!flags.session_id_context.empty()) o.session_id_context = flags.session_id_context;
  if (!flags.ticket_keys.empty()) {
    absl::StatusOr<std::string> keys = ReadFlagFile("ticket-keys", flags.ticket_keys);
    if (!keys.ok()) return keys.status();
    if (keys->empty() || keys->size() % 48 != 0) {
      return Bad("ticket-keys", absl::StrCat("'", flags.ticket_keys, "' holds ", keys->size(),
                                             " bytes; want one or more 48-byte keys"));
    }
    for (size_t i = 0; i < keys->size(); i += 48) o.ticket_keys.push_back(keys->substr(i, 48));
  }
  if (!flags.ocsp_response.empty()) {
    absl::StatusOr<std::string> der = ReadFlagFile("ocsp-response", flags.ocsp_response);
    if (!der.ok()) return der.status();
    if (der->empty()) return Bad("ocsp-response", absl::StrCat("'", flags.ocsp_response, "' is empty"));
    out.ocsp_response = *std::move(der);
  }
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx =
      MakeContext(flags.tls.pfx.empty() ? "--key/--cert" : "--pfx", o);
  if (!ctx.ok()) return ctx.status();

  ConnectionOptions& c = out.connection;
  c.is_server = true;
  c.secure_context = *ctx;
  c.request_cert = flags.request_cert;
  c.reject_unauthorized = flags.reject_unauthorized;
  c.handshake_timeout = absl::Milliseconds(flags.handshake_timeout_ms);
  c.alpn_protocols = flags.tls.alpn;
  c.npn_protocols = flags.tls.npn;
  c.session_cache = true;  // sessions go to the server's session store
  c.ocsp_request = !out.ocsp_response.empty();
  if (flags.reneg_limit) {
    c.allow_client_renegotiation = true;
    c.client_reneg_limit = static_cast<int>(*flags.reneg_limit);
    c.client_reneg_window = absl::Seconds(flags.reneg_window_s);
  }
  out.keylog_path = KeylogPath(flags.tls);
  c.keylog = !out.keylog_path.empty();

  if (!flags.sni.empty()) {
    c.sni_contexts = std::make_shared<SniContexts>();
    for (const SniFlag& sni : flags.sni) {
      SecureContextOptions so = o;  // same trust, ciphers and versions
      so.pfx.clear();
      so.key.clear();
      so.cert.clear();
      absl::StatusOr<std::string> key = ReadFlagFile("sni", sni.key);
      if (!key.ok()) return key.status();
      absl::StatusOr<std::string> cert = ReadFlagFile("sni", sni.cert);
      if (!cert.ok()) return cert.status();
      so.key = {*std::move(key)};
      so.cert = {*std::move(cert)};
      absl::StatusOr<std::shared_ptr<const SecureContext>> sctx = MakeContext(absl::StrCat("--sni ", sni.name), so);
      if (!sctx.ok()) return sctx.status();
      s = c.sni_contexts->Add(sni.name, *sctx);
      if (!s.ok()) return Bad("sni", absl::StrCat("'", sni.name, "': ", s.message()));
      out.sni.emplace_back(sni.name, *sctx);
    }
  }
  return out;
}

absl::StatusOr<ClientSetup> BuildClient(const ConnectFlags& flags) {
  ClientSetup out;
  SecureContextOptions o;
  absl::Status s = FillContext(flags.tls, o);
  if (!s.ok()) return s;
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = MakeContext(
      flags.tls.pfx.empty() ? (flags.tls.key.empty() ? "TLS options" : "--key/--cert") : "--pfx", o);
  if (!ctx.ok()) return ctx.status();

  ConnectionOptions& c = out.connection;
  c.is_server = false;
  c.secure_context = *ctx;
  c.servername = flags.servername;
  c.host = flags.unix_path.empty() ? flags.host : "";
  c.reject_unauthorized = !flags.insecure;
  c.alpn_protocols = flags.tls.alpn;
  c.npn_protocols = flags.tls.npn;
  c.request_ocsp = flags.request_ocsp;
  c.handshake_timeout = absl::Milliseconds(flags.handshake_timeout_ms);
  c.close_timeout = absl::Milliseconds(flags.close_timeout_ms);
  if (!flags.session_in.empty()) {
    absl::StatusOr<std::string> session = ReadFlagFile("session-in", flags.session_in);
    if (!session.ok()) return session.status();
    if (session->empty()) return Bad("session-in", absl::StrCat("'", flags.session_in, "' is empty"));
    c.session = *std::move(session);
  }
  if (!flags.session_out.empty()) out.session_out_path = ResolvePath(flags.session_out);
  out.keylog_path = KeylogPath(flags.tls);
  c.keylog = !out.keylog_path.empty();
  return out;
}

}  // namespace tlsctl
}  // namespace tlsengine

// What a connection tells about itself (Node's getPeerCertificate,
// getCipher, getFinished, ...), and its small controls.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/codes.h"
#include "core/internal/connection_impl.h"
#include "core/internal/x509_info.h"

namespace tlsengine {

using internal::InvalidOption;
using internal::InvalidState;
using internal::ToString;

using internal::OpenSslPtr;

std::optional<CertificateInfo> TlsConnection::GetPeerCertificate(bool detailed) const {
  SSL* ssl = impl_->ssl_.get();
  if (ssl == nullptr) return std::nullopt;  // a server before the ClientHello
  OpenSslPtr<X509> leaf(SSL_get1_peer_certificate(ssl));
  if (!leaf) return std::nullopt;
  absl::StatusOr<CertificateInfo> info = internal::InfoFromX509(leaf.get());
  if (!info.ok()) return std::nullopt;
  if (!detailed) return *std::move(info);
  // The verified chain runs leaf first up to the trust anchor; without one
  // (verification failed), what the peer sent.
  STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);  // borrowed
  if (chain == nullptr || sk_X509_num(chain) == 0) chain = SSL_get_peer_cert_chain(ssl);  // borrowed
  std::vector<X509*> issuers;  // borrowed from `chain`
  X509* current = leaf.get();
  for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
    X509* candidate = sk_X509_value(chain, i);
    if (X509_cmp(candidate, current) == 0) continue;
    if (X509_check_issued(candidate, current) != X509_V_OK) continue;
    issuers.push_back(candidate);
    current = candidate;
  }
  std::shared_ptr<const CertificateInfo> next;
  for (auto it = issuers.rbegin(); it != issuers.rend(); ++it) {
    absl::StatusOr<CertificateInfo> issuer = internal::InfoFromX509(*it);
    if (!issuer.ok()) break;
    issuer->issuer_certificate = next;
    next = std::make_shared<const CertificateInfo>(*std::move(issuer));
  }
  info->issuer_certificate = next;
  return *std::move(info);
}

std::optional<CertificateInfo> TlsConnection::GetCertificate() const {
  // Before a server's SSL exists, the certificate it will start with.
  X509* own = impl_->ssl_ ? SSL_get_certificate(impl_->ssl_.get())
                          : SSL_CTX_get0_certificate(impl_->native_context_);  // borrowed
  if (own == nullptr) return std::nullopt;
  absl::StatusOr<CertificateInfo> info = internal::InfoFromX509(own);
  if (!info.ok()) return std::nullopt;
  return *std::move(info);
}

std::optional<CipherInfo> TlsConnection::GetCipher() const {
  if (!impl_->ssl_) return std::nullopt;
  const SSL_CIPHER* cipher = SSL_get_current_cipher(impl_->ssl_.get());  // static
  if (cipher == nullptr) return std::nullopt;
  CipherInfo info;
  info.name = SSL_CIPHER_get_name(cipher);
  const char* standard = SSL_CIPHER_standard_name(cipher);
  info.standard_name = standard != nullptr ? standard : info.name;
  info.version = SSL_CIPHER_get_version(cipher);
  return info;
}

std::string TlsConnection::protocol() const {
  if (!secure() && !impl_->handshake_done_once_) return "";
  return SSL_get_version(impl_->ssl_.get());
}

std::string TlsConnection::servername() const {
  if (!impl_->ssl_) return "";
  const char* name = SSL_get_servername(impl_->ssl_.get(), TLSEXT_NAMETYPE_host_name);
  return name != nullptr ? name : "";
}

bool TlsConnection::SetMaxSendFragment(size_t size) {
  if (size < 512 || size > 16384) return false;
  if (!impl_->ssl_) {
    impl_->max_send_fragment_ = size;  // applied when the server's SSL is made
    return true;
  }
  return SSL_set_max_send_fragment(impl_->ssl_.get(), static_cast<long>(size)) == 1;
}

absl::StatusOr<std::string> TlsConnection::ExportKeyingMaterial(size_t length, absl::string_view label,
                                                               std::optional<absl::string_view> context) const {
  if (!secure()) return InvalidState("ExportKeyingMaterial: the connection is not secure");
  if (length == 0 || length > 1 << 20) return InvalidOption("ExportKeyingMaterial: length must be 1..1048576");
  std::string out(length, '\0');
  ERR_clear_error();
  if (SSL_export_keying_material(impl_->ssl_.get(), reinterpret_cast<unsigned char*>(out.data()), length,
                                 label.data(), label.size(),
                                 context ? reinterpret_cast<const unsigned char*>(context->data()) : nullptr,
                                 context ? context->size() : 0, context.has_value() ? 1 : 0) != 1) {
    return MakeError(absl::StatusCode::kInternal, kErrInternal,
                     absl::StrCat("ExportKeyingMaterial: ", internal::DrainErrors()));
  }
  return out;
}

std::string TlsConnection::GetFinished() const {
  if (!impl_->ssl_) return "";
  unsigned char buf[EVP_MAX_MD_SIZE];
  size_t len = SSL_get_finished(impl_->ssl_.get(), buf, sizeof(buf));
  return ToString(buf, std::min(len, sizeof(buf)));
}

std::string TlsConnection::GetPeerFinished() const {
  if (!impl_->ssl_) return "";
  unsigned char buf[EVP_MAX_MD_SIZE];
  size_t len = SSL_get_peer_finished(impl_->ssl_.get(), buf, sizeof(buf));
  return ToString(buf, std::min(len, sizeof(buf)));
}

std::optional<EphemeralKeyInfo> TlsConnection::GetEphemeralKeyInfo() const {
  if (impl_->options_.is_server || !secure()) return std::nullopt;
  EVP_PKEY* raw = nullptr;
  if (SSL_get_peer_tmp_key(impl_->ssl_.get(), &raw) != 1) return std::nullopt;
  OpenSslPtr<EVP_PKEY> key(raw);  // SSL_get_peer_tmp_key hands us a reference
  EphemeralKeyInfo info;
  info.size = EVP_PKEY_get_bits(key.get());
  switch (EVP_PKEY_get_base_id(key.get())) {
    case EVP_PKEY_DH:
      info.type = "DH";
      break;
    case EVP_PKEY_EC: {
      info.type = "ECDH";
      char group[80];
      size_t group_len = 0;
      if (EVP_PKEY_get_utf8_string_param(key.get(), "group", group, sizeof(group), &group_len) == 1) {
        int nid = OBJ_txt2nid(group);
        info.name = nid != NID_undef ? OBJ_nid2sn(nid) : group;
      }
      break;
    }
    case EVP_PKEY_X25519:
      info = {"ECDH", "X25519", 253};
      break;
    case EVP_PKEY_X448:
      info = {"ECDH", "X448", 448};
      break;
    default:
      return std::nullopt;
  }
  return info;
}

std::vector<std::string> TlsConnection::GetSharedSigalgs() const {
  std::vector<std::string> out;
  SSL* ssl = impl_->ssl_.get();
  if (ssl == nullptr) return out;
  int count = SSL_get_shared_sigalgs(ssl, 0, nullptr, nullptr, nullptr, nullptr, nullptr);
  for (int i = 0; i < count; ++i) {
    int sign = NID_undef, hash = NID_undef;
    SSL_get_shared_sigalgs(ssl, i, &sign, &hash, nullptr, nullptr, nullptr);
    // Node's spelling (GetSharedSigalgs in node_crypto): "<key>+<hash>".
    std::string name;
    switch (sign) {
      case EVP_PKEY_RSA: name = "RSA+"; break;
      case EVP_PKEY_RSA_PSS: name = "RSA-PSS+"; break;
      case EVP_PKEY_DSA: name = "DSA+"; break;
      case EVP_PKEY_ED25519: name = "Ed25519+"; break;
      case EVP_PKEY_ED448: name = "Ed448+"; break;
      case EVP_PKEY_EC: name = "ECDSA+"; break;
      default: name = absl::StrCat(OBJ_nid2ln(sign) != nullptr ? OBJ_nid2ln(sign) : "UNDEF", "+"); break;
    }
    absl::StrAppend(&name, hash != NID_undef && OBJ_nid2sn(hash) != nullptr ? OBJ_nid2sn(hash) : "UNDEF");
    out.push_back(std::move(name));
  }
  return out;
}

ConnectionStats TlsConnection::stats() const { return impl_->stats_; }

}  // namespace tlsengine

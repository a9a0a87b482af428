// Verification and identity: the chain verdict made inside the handshake,
// the server's identity (Node's checkServerIdentity), which sessions a
// client may offer, and Node's authorized/authorizationError.
#include <exception>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/internal/codes.h"
#include "core/internal/connection_impl.h"
#include "core/internal/x509_info.h"

namespace tlsengine {

using Impl = TlsConnection::Impl;
using internal::OpenSslPtr;

namespace {

// Runs the application's check_server_identity, or CheckServerIdentity, on
// `leaf` (borrowed). The user's function may be called from inside
// OpenSSL's C frames: an exception must not unwind through them, so it
// becomes an error here. A result without a Node code gets
// ERR_TLS_CERT_ALTNAME_INVALID.
absl::Status IdentityOf(const ConnectionOptions& options, const std::string& host, X509* leaf) {
  absl::Status identity;
  if (!options.check_server_identity) {
    // The built-in check reads only the names: no CertificateInfo (with
    // its key encoding and digests) unless it fails.
    identity = internal::CheckServerIdentityOfX509(host, leaf);
  } else if (absl::StatusOr<CertificateInfo> info = internal::InfoFromX509(leaf); !info.ok()) {
    identity = info.status();
  } else {
    try {
      identity = options.check_server_identity(host, *info);
    } catch (const std::exception& e) {
      identity = absl::UnauthenticatedError(absl::StrCat("check_server_identity threw: ", e.what()));
    } catch (...) {
      identity = absl::UnauthenticatedError("check_server_identity threw a non-standard exception");
    }
  }
  if (!identity.ok() && NodeCode(identity).empty()) {
    identity = MakeError(absl::StatusCode::kUnauthenticated, kErrCertAltnameInvalid, identity.message());
  }
  return identity;
}

}  // namespace

int Impl::VerifyCallback(int preverify_ok, X509_STORE_CTX* store) {
  // Borrowed: the SSL behind this verification.
  SSL* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  return From(ssl)->OnVerify(preverify_ok, store);
}

int Impl::OnVerify(int preverify_ok, X509_STORE_CTX* store) {
  const bool reject = options_.reject_unauthorized;
  // As Node does, verification always runs to its end, so the error
  // reported is OpenSSL's final verdict (e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE
  // for a missing intermediate) whether or not we reject.
  if (!preverify_ok) {
    chain_failed_ = true;
    return 1;
  }
  // OpenSSL signals success at depth 0 last, keeping any earlier error in
  // the store context: this is where the verdict is made, inside the
  // handshake, so that a rejection reaches the peer as an alert.
  if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
  if (chain_failed_) return reject ? 0 : 1;
  if (options_.is_server) return 1;
  // The chain is good: check the server's identity, as Node does only then.
  if (CheckPeerIdentity(X509_STORE_CTX_get_current_cert(store)).ok() || !reject) return 1;
  X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
  return 0;
}

absl::Status Impl::CheckPeerIdentity(X509* leaf) {
  identity_status_ = IdentityOf(options_, identity_host_, leaf);
  return identity_status_;
}

void Impl::CheckResumedIdentity() {
  // OpenSSL runs no verification on resumption: the session carries the
  // first handshake's verdict and peer certificate. The identity is this
  // connection's own question, so it is asked again, as Node does after
  // every handshake; only when the stored chain verdict is good.
  OpenSslPtr<X509> peer(SSL_get1_peer_certificate(ssl_.get()));
  if (!peer || SSL_get_verify_result(ssl_.get()) != X509_V_OK) return;
  CheckPeerIdentity(peer.get()).IgnoreError();  // kept in identity_status_ for UpdateAuthorization
}

bool Impl::MayOfferSession(SSL_SESSION* session, long verify_result) const {
  // A client that accepts unauthorized servers offers any session, as Node
  // does (self-signed services, IP-addressed hosts): the resumed handshake
  // reports the verdict again from the session's verify result and peer
  // certificate (UpdateAuthorization, CheckResumedIdentity).
  if (!options_.reject_unauthorized) return true;
  // A client that rejects offers only a session it would accept: one whose
  // chain verified and whose server proves this host. Anything else gets a
  // full, verified handshake (and the server an alert on mismatch), so a
  // session from one host is never reused for another.
  X509* peer = SSL_SESSION_get0_peer(session);  // borrowed
  return peer != nullptr && verify_result == X509_V_OK && IdentityOf(options_, identity_host_, peer).ok();
}

bool Impl::UpdateAuthorization() {
  const bool checks = !options_.is_server || options_.request_cert;
  if (!checks) return true;
  OpenSslPtr<X509> peer(SSL_get1_peer_certificate(ssl_.get()));
  long verify = SSL_get_verify_result(ssl_.get());
  if (!peer) {
    // Node reports a missing certificate with this code.
    authorization_ = MakeError(absl::StatusCode::kUnauthenticated, "UNABLE_TO_GET_ISSUER_CERT",
                               "peer did not return a certificate");
  } else if (verify != X509_V_OK) {
    authorization_ = internal::VerifyError(verify);
  } else {
    authorization_ = identity_status_;
  }
  authorized_ = authorization_.ok();
  if (!authorized_ && options_.reject_unauthorized) {
    Fail(authorization_);
    return false;
  }
  return true;
}

void Impl::ResetVerification() {
  chain_failed_ = false;
  // A client keeps its identity verdict until a check replaces it: a
  // renegotiation that resumes, or never completes, runs no check.
  if (options_.is_server) identity_status_ = absl::OkStatus();
}

// ---- What the application reads ----

bool TlsConnection::authorized() const { return impl_->authorized_; }
std::string TlsConnection::authorization_error() const { return NodeCode(impl_->authorization_); }
absl::Status TlsConnection::authorization_status() const { return impl_->authorization_; }

}  // namespace tlsengine

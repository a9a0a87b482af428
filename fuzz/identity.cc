// identity: RFC 6125 host name matching (CheckServerIdentity) over real
// certificates built from fuzz bytes, against an independent oracle:
// OpenSSL's X509_check_host (X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS) and
// X509_check_ip_asc on the same certificate. Also the SNI context table.
//
// Input: chunks: host, names, CN, an SNI pattern, an SNI name. `names` is a
// list of [type][u8 length][bytes]: type % 8 is 0 DNS, 1 IP (any length:
// 4, 16 or odd), 2 URI, 3 email, 4 otherName (UPN), 5 dirName (its CN),
// 6 DNS, 7 IP. They become one subjectAltName extension (none when empty)
// on a certificate whose subject CN is `CN`, signed with a fixed Ed25519
// key (deterministic).
//
// Invariants (abort on violation):
// - we never accept what OpenSSL refuses (any host);
// - we accept what OpenSSL accepts, for well-formed hosts (labels of
//   letters, digits, '-' and '_') and IP literals;
// - refusals carry ERR_TLS_CERT_ALTNAME_INVALID and a message;
// - a plain DNS name matches a certificate that lists exactly it.
// Where our documented policy and OpenSSL differ, the harness normalizes
// (see Oracle()). fuzz/corpus/identity/regression-cve-2021-44532 is the
// URI-smuggling input; with the old display-string matcher it aborts here.
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "core/certificate.h"
#include "core/errors.h"
#include "core/internal/openssl_util.h"
#include "core/internal/x509_info.h"
#include "fuzz/common.h"

using namespace tlsengine;
using internal::OpenSslPtr;

namespace {

struct Name {
  int type;
  std::string value;
};

EVP_PKEY* SigningKey() {
  static EVP_PKEY* key = [] {
    unsigned char seed[32];
    for (int i = 0; i < 32; ++i) seed[i] = static_cast<unsigned char>(i * 7 + 1);
    return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof(seed));
  }();
  return key;
}

// RFC 6125 and Node ignore one trailing dot, OpenSSL compares it: the
// oracle's certificate and host go without it.
std::string WithoutTrailingDot(std::string s) {
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

OpenSslPtr<ASN1_STRING> String(int type, const std::string& value) {
  OpenSslPtr<ASN1_STRING> s(ASN1_STRING_type_new(type));
  if (s) ASN1_STRING_set(s.get(), value.data(), static_cast<int>(value.size()));
  return s;
}

GENERAL_NAME* MakeName(const Name& name, bool strip_dot) {
  OpenSslPtr<GENERAL_NAME> gen(GENERAL_NAME_new());
  if (!gen) return nullptr;
  switch (name.type) {
    case GEN_DNS:
    case GEN_URI:
    case GEN_EMAIL: {
      std::string v = name.type == GEN_DNS && strip_dot ? WithoutTrailingDot(name.value) : name.value;
      GENERAL_NAME_set0_value(gen.get(), name.type, String(V_ASN1_IA5STRING, v).release());  // takes it
      break;
    }
    case GEN_IPADD:
      GENERAL_NAME_set0_value(gen.get(), GEN_IPADD, String(V_ASN1_OCTET_STRING, name.value).release());
      break;
    case GEN_OTHERNAME: {
      OpenSslPtr<ASN1_TYPE> value(ASN1_TYPE_new());
      ASN1_TYPE_set(value.get(), V_ASN1_UTF8STRING, String(V_ASN1_UTF8STRING, name.value).release());
      // Takes both; the object is static.
      GENERAL_NAME_set0_othername(gen.get(), OBJ_nid2obj(NID_ms_upn), value.release());
      break;
    }
    default: {  // GEN_DIRNAME
      OpenSslPtr<X509_NAME> dir(X509_NAME_new());
      X509_NAME_add_entry_by_NID(dir.get(), NID_commonName, MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>(name.value.data()),
                                 static_cast<int>(name.value.size()), -1, 0);
      GENERAL_NAME_set0_value(gen.get(), GEN_DIRNAME, dir.release());
      break;
    }
  }
  return gen.release();
}

OpenSslPtr<X509> MakeCertificate(const std::vector<Name>& names, const std::string& cn_in, bool strip_dot) {
  OpenSslPtr<X509> x(X509_new());
  OpenSslPtr<X509_NAME> subject(X509_NAME_new());
  std::string cn = strip_dot ? WithoutTrailingDot(cn_in) : cn_in;
  if (!cn.empty()) {
    // Latin-1 in, UTF-8 out of ASN1_STRING_to_UTF8 for both sides; longer
    // than 64 bytes is refused (ub-common-name): then there is no CN.
    X509_NAME_add_entry_by_NID(subject.get(), NID_commonName, MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn.data()), static_cast<int>(cn.size()), -1,
                               0);
  }
  X509_set_version(x.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  ASN1_TIME_set_string(X509_getm_notBefore(x.get()), "20200101000000Z");
  ASN1_TIME_set_string(X509_getm_notAfter(x.get()), "20991231000000Z");
  X509_set_subject_name(x.get(), subject.get());  // copies
  X509_set_issuer_name(x.get(), subject.get());
  X509_set_pubkey(x.get(), SigningKey());
  if (!names.empty()) {
    OpenSslPtr<GENERAL_NAMES> gens(GENERAL_NAMES_new());
    for (const Name& name : names) {
      if (GENERAL_NAME* gen = MakeName(name, strip_dot)) sk_GENERAL_NAME_push(gens.get(), gen);  // takes it
    }
    X509_add1_ext_i2d(x.get(), NID_subject_alt_name, gens.get(), 0, X509V3_ADD_DEFAULT);
  }
  X509_sign(x.get(), SigningKey(), nullptr);
  ERR_clear_error();
  return x;
}

std::vector<Name> ParseNames(absl::string_view spec) {
  static const int kTypes[8] = {GEN_DNS, GEN_IPADD, GEN_URI, GEN_EMAIL, GEN_OTHERNAME, GEN_DIRNAME, GEN_DNS, GEN_IPADD};
  fuzz::Input in(reinterpret_cast<const uint8_t*>(spec.data()), spec.size());
  std::vector<Name> names;
  while (!in.empty() && names.size() < 16) {
    int type = kTypes[in.Byte() % 8];
    names.push_back({type, std::string(in.Bytes(in.Byte()))});
  }
  return names;
}

// Labels of letters, digits, '-' and '_', one optional trailing dot: hosts
// for which OpenSSL's verdict must be ours too. (OpenSSL also matches
// "a b", empty labels, '*' in the host and, with a leading '.', any
// subdomain; our policy refuses those, which only the other invariant
// checks.)
bool IsWellFormedHost(const std::string& host_in) {
  std::string host = WithoutTrailingDot(host_in);
  if (host.empty() || host.front() == '.' || host.back() == '.' || absl::StrContains(host, "..")) return false;
  for (char c : host) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// OpenSSL's verdict on `cert` for `host`.
bool Oracle(X509* cert, const std::string& host, bool is_ip) {
  // X509_check_host refuses embedded NULs; X509_check_ip_asc takes a C string.
  if (absl::StrContains(host, '\0')) return false;
  if (is_ip) {
    // Our IP hosts may be bracketed ("[::1]"); OpenSSL's parser takes the
    // bare literal.
    std::string bare = host;
    if (bare.size() >= 2 && bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
    return X509_check_ip_asc(cert, bare.c_str(), 0) == 1;
  }
  // A host that inet_pton refuses is a DNS name to us (and to Node's
  // net.isIP), even if OpenSSL's laxer parser ("01.2.3.4") would take it:
  // so X509_check_host, never X509_check_ip_asc, for it.
  std::string name = WithoutTrailingDot(host);
  return X509_check_host(cert, name.data(), name.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
}

// Letters, digits and hyphens in non-empty labels, not all digits and dots
// (an IPv4 literal): a name that must match a certificate listing it.
bool IsPlainDnsName(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.' || name.find("..") != std::string::npos) {
    return false;
  }
  bool letter = false;
  for (char c : name) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
    if (!alpha && !(c >= '0' && c <= '9') && c != '.') return false;
    letter |= alpha;
  }
  return letter;
}

absl::Status Ours(X509* cert, const std::string& host) {
  absl::StatusOr<CertificateInfo> info = internal::InfoFromX509(cert);
  if (!info.ok()) std::abort();  // a certificate we built always decodes
  absl::Status full = CheckServerIdentity(host, *info);
  // The handshake's check reads the names straight from the X509: the same
  // verdict and message, always.
  if (internal::CheckServerIdentityOfX509(host, cert) != full) std::abort();
  return full;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::ResetDeterminism();
  fuzz::Input in(data, size);
  std::string host(in.Chunk());
  std::vector<Name> names = ParseNames(in.Chunk());
  std::string cn(in.Chunk());

  OpenSslPtr<X509> cert = MakeCertificate(names, cn, /*strip_dot=*/false);
  absl::Status ours = Ours(cert.get(), host);
  if (!ours.ok() && (NodeCode(ours) != "ERR_TLS_CERT_ALTNAME_INVALID" || ours.message().empty())) std::abort();
  bool needs_stripped = absl::EndsWith(cn, ".");
  for (const Name& n : names) needs_stripped |= n.type == GEN_DNS && absl::EndsWith(n.value, ".");
  OpenSslPtr<X509> stripped = needs_stripped ? MakeCertificate(names, cn, /*strip_dot=*/true) : nullptr;
  const bool is_ip = internal::ParseIpAddress(host, nullptr);
  const bool oracle = Oracle(stripped ? stripped.get() : cert.get(), host, is_ip);
  if (ours.ok() && !oracle) std::abort();  // we accepted what OpenSSL refuses
  if (!ours.ok() && oracle && (is_ip || IsWellFormedHost(host))) std::abort();

  // A plain name always matches a certificate that lists exactly it.
  if (IsPlainDnsName(host)) {
    OpenSslPtr<X509> exact = MakeCertificate({{GEN_DNS, host}}, "", false);
    if (!Ours(exact.get(), host).ok()) std::abort();
  }

  // The SNI table: errors carry a code; an exact name added is found.
  SniContexts table;
  std::string pattern(in.Chunk());
  std::string name(in.Chunk());
  const std::shared_ptr<const SecureContext> ctx = fuzz::Context(fuzz::Fixture::kServerRsa);
  absl::Status added = table.Add(pattern, ctx);
  if (!added.ok() && NodeCode(added).empty()) std::abort();
  table.Find(name);  // must not crash; one context only, so nothing to compare
  if (added.ok() && table.Find(pattern) != ctx && pattern.rfind("*.", 0) != 0) std::abort();
  return 0;
}

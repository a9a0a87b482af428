#include "core/certificate.h"

#include <arpa/inet.h>  // inet_pton: a pure parser, no I/O
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/errors.h"
#include "core/internal/openssl_util.h"
#include "core/internal/x509_info.h"

namespace tlsengine {

using internal::OpenSslPtr;

std::string DistinguishedName::Get(absl::string_view attribute) const {
  for (const auto& [key, value] : entries) {
    if (key == attribute) return value;
  }
  return "";
}

std::vector<std::string> DistinguishedName::GetAll(absl::string_view attribute) const {
  std::vector<std::string> out;
  for (const auto& [key, value] : entries) {
    if (key == attribute) out.push_back(value);
  }
  return out;
}

std::string DistinguishedName::ToString() const {
  return absl::StrJoin(entries, ", ", absl::PairFormatter("="));
}

namespace {

DistinguishedName NameEntries(const X509_NAME* name) {
  DistinguishedName out;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);  // borrowed
    const ASN1_OBJECT* obj = X509_NAME_ENTRY_get_object(entry);
    int nid = OBJ_obj2nid(obj);
    std::string key;
    if (nid != NID_undef && OBJ_nid2sn(nid) != nullptr) {
      key = OBJ_nid2sn(nid);
    } else {
      char buf[128];
      OBJ_obj2txt(buf, sizeof(buf), obj, 1);
      key = buf;
    }
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    std::string value = len >= 0 ? std::string(reinterpret_cast<char*>(utf8), len) : "";
    OPENSSL_free(utf8);
    out.entries.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

std::string FormatIp(const ASN1_OCTET_STRING* ip) {
  const unsigned char* p = ASN1_STRING_get0_data(ip);
  int len = ASN1_STRING_length(ip);
  if (len == 4) return absl::StrCat(p[0], ".", p[1], ".", p[2], ".", p[3]);
  if (len == 16) {
    // OpenSSL's (and so Node's) form: eight groups, no compression.
    std::vector<std::string> groups;
    for (int i = 0; i < 16; i += 2) groups.push_back(absl::StrCat(absl::Hex((p[i] << 8) | p[i + 1], absl::kNoPad)));
    return absl::AsciiStrToUpper(absl::StrJoin(groups, ":"));
  }
  return "<invalid>";
}

std::string AltNames(X509* cert) {
  OpenSslPtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return "";
  std::vector<std::string> parts;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    auto text = [](const ASN1_STRING* s) {
      return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s));
    };
    switch (name->type) {
      case GEN_DNS: parts.push_back(absl::StrCat("DNS:", text(name->d.dNSName))); break;
      case GEN_IPADD: parts.push_back(absl::StrCat("IP Address:", FormatIp(name->d.iPAddress))); break;
      case GEN_EMAIL: parts.push_back(absl::StrCat("email:", text(name->d.rfc822Name))); break;
      case GEN_URI: parts.push_back(absl::StrCat("URI:", text(name->d.uniformResourceIdentifier))); break;
      default: break;
    }
  }
  return absl::StrJoin(parts, ", ");
}

std::string AsnTime(const ASN1_TIME* t, int64_t* unix_seconds) {
  OpenSslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  ASN1_TIME_print(bio.get(), t);
  struct tm tm_value;
  std::memset(&tm_value, 0, sizeof(tm_value));
  if (ASN1_TIME_to_tm(t, &tm_value) == 1) {
    // timegm without the libc's time zone: days from civil (H. Hinnant).
    int y = tm_value.tm_year + 1900, m = tm_value.tm_mon + 1, d = tm_value.tm_mday;
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    const int64_t days = era * 146097 + doe - 719468;
    *unix_seconds = days * 86400 + tm_value.tm_hour * 3600 + tm_value.tm_min * 60 + tm_value.tm_sec;
  }
  return internal::BioContents(bio.get());
}

std::string Digest(X509* cert, const EVP_MD* md) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, md, buf, &len) != 1) return "";
  return internal::ColonHex(buf, len);
}

// Uppercase hex. Node prints serial numbers whole-byte (BN_bn2hex) and the
// RSA modulus and exponent without leading zeros (BN_print).
std::string BnHex(const BIGNUM* bn, bool strip_zeros = true) {
  char* hex = BN_bn2hex(bn);
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  if (!strip_zeros) return out;
  size_t first = out.find_first_not_of('0');
  return first == std::string::npos ? "0" : out.substr(first);
}

void FillKeyInfo(X509* cert, CertificateInfo* info) {
  EVP_PKEY* key = X509_get0_pubkey(cert);  // borrowed
  if (key == nullptr) return;
  info->bits = EVP_PKEY_get_bits(key);
  info->pubkey = internal::ToDer(i2d_PUBKEY, key);
  if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    if (EVP_PKEY_get_bn_param(key, "n", &n) == 1) info->modulus = BnHex(n);
    if (EVP_PKEY_get_bn_param(key, "e", &e) == 1) {
      info->exponent = absl::StrCat("0x", absl::AsciiStrToLower(BnHex(e)));
    }
    BN_free(n);
    BN_free(e);
  } else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
    char group[80];
    size_t group_len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof(group), &group_len) == 1) {
      int nid = OBJ_txt2nid(group);
      info->asn1_curve = nid != NID_undef ? OBJ_nid2sn(nid) : group;
      const char* nist = EC_curve_nid2nist(nid);
      if (nist != nullptr) info->nist_curve = nist;
    }
  }
}

}  // namespace

namespace internal {

absl::StatusOr<CertificateInfo> InfoFromX509(X509* cert) {
  CertificateInfo info;
  info.subject = NameEntries(X509_get_subject_name(cert));
  info.issuer = NameEntries(X509_get_issuer_name(cert));
  info.subjectaltname = AltNames(cert);
  info.ca = X509_check_ca(cert) > 0 && (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
  FillKeyInfo(cert, &info);
  info.valid_from = AsnTime(X509_get0_notBefore(cert), &info.valid_from_unix);
  info.valid_to = AsnTime(X509_get0_notAfter(cert), &info.valid_to_unix);
  info.fingerprint = Digest(cert, EVP_sha1());
  info.fingerprint256 = Digest(cert, EVP_sha256());
  info.fingerprint512 = Digest(cert, EVP_sha512());
  OpenSslPtr<BIGNUM> serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (serial) info.serial_number = BnHex(serial.get(), /*strip_zeros=*/false);
  if (auto* eku = static_cast<EXTENDED_KEY_USAGE*>(
          X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr))) {
    for (int i = 0; i < sk_ASN1_OBJECT_num(eku); ++i) {
      char buf[128];
      OBJ_obj2txt(buf, sizeof(buf), sk_ASN1_OBJECT_value(eku, i), 1);
      info.ext_key_usage.emplace_back(buf);
    }
    EXTENDED_KEY_USAGE_free(eku);
  }
  info.raw = internal::ToDer(i2d_X509, cert);
  if (info.raw.empty()) {
    return MakeError(absl::StatusCode::kInternal, kErrInternal,
                     absl::StrCat("certificate: cannot encode: ", internal::DrainErrors()));
  }
  return info;
}

}  // namespace internal

absl::StatusOr<CertificateInfo> CertificateInfo::FromDer(absl::Span<const uint8_t> der) {
  const unsigned char* p = der.data();
  OpenSslPtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert || p != der.data() + der.size()) {
    std::string why = internal::DrainErrors();
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     absl::StrCat("certificate: not a DER certificate",
                                  why.empty() ? "" : ": ", why));
  }
  return internal::InfoFromX509(cert.get());
}

absl::StatusOr<CertificateInfo> CertificateInfo::FromPem(absl::string_view pem) {
  OpenSslPtr<BIO> bio = internal::MemoryBio(pem);
  OpenSslPtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                     absl::StrCat("certificate: not a PEM certificate: ", internal::DrainErrors()));
  }
  return internal::InfoFromX509(cert.get());
}

namespace {

std::vector<std::string> AltNamesWithPrefix(const std::string& altnames, absl::string_view prefix) {
  std::vector<std::string> out;
  for (absl::string_view part : absl::StrSplit(altnames, ", ", absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&part, prefix)) out.emplace_back(part);
  }
  return out;
}

std::string Canonical(absl::string_view name) {
  std::string out = absl::AsciiStrToLower(name);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// RFC 6125 §6.4: exact label-wise match; `*` only as the whole left-most
// label, never matching more than one label, and only under at least two
// more labels (no "*.com").
bool MatchDnsName(const std::string& host, absl::string_view pattern_in, bool allow_wildcard) {
  std::string pattern = Canonical(pattern_in);
  if (host.empty() || pattern.empty()) return false;
  std::vector<absl::string_view> host_labels = absl::StrSplit(host, '.');
  std::vector<absl::string_view> pattern_labels = absl::StrSplit(pattern, '.');
  if (host_labels.size() != pattern_labels.size()) return false;
  for (size_t i = 0; i < pattern_labels.size(); ++i) {
    absl::string_view p = pattern_labels[i];
    if (p.empty() || host_labels[i].empty()) return false;
    if (i == 0 && p == "*" && allow_wildcard) {
      if (pattern_labels.size() < 3) return false;
      continue;
    }
    if (absl::StrContains(p, '*')) return false;  // partial wildcards are refused
    if (p != host_labels[i]) return false;
  }
  return true;
}

}  // namespace

bool internal::ParseIpAddress(absl::string_view text, std::string* bytes) {
  std::string s(text);
  if (!s.empty() && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  unsigned char buf[16];
  size_t len = 0;
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) {
    len = 4;
  } else if (inet_pton(AF_INET6, s.c_str(), buf) == 1) {
    len = 16;
  } else {
    return false;
  }
  if (bytes != nullptr) bytes->assign(reinterpret_cast<char*>(buf), len);
  return true;
}

namespace {

absl::Status AltnameError(absl::string_view reason) {
  return MakeError(absl::StatusCode::kUnauthenticated, kErrCertAltnameInvalid,
                   absl::StrCat("Hostname/IP does not match certificate's altnames: ", reason));
}

}  // namespace

std::vector<std::string> CertificateInfo::DnsNames() const {
  return AltNamesWithPrefix(subjectaltname, "DNS:");
}

std::vector<std::string> CertificateInfo::IpAddresses() const {
  return AltNamesWithPrefix(subjectaltname, "IP Address:");
}

absl::Status CheckServerIdentity(absl::string_view hostname, const CertificateInfo& cert) {
  std::string host_ip;
  if (internal::ParseIpAddress(hostname, &host_ip)) {
    std::vector<std::string> ips = cert.IpAddresses();
    for (const std::string& ip : ips) {
      std::string cert_ip;
      if (internal::ParseIpAddress(ip, &cert_ip) && cert_ip == host_ip) return absl::OkStatus();
    }
    return AltnameError(absl::StrCat("IP: ", hostname, " is not in the cert's list: ",
                                     absl::StrJoin(ips, ", ")));
  }
  const std::string host = Canonical(hostname);
  std::vector<std::string> dns = cert.DnsNames();
  if (!dns.empty()) {
    for (const std::string& name : dns) {
      if (MatchDnsName(host, name, /*allow_wildcard=*/true)) return absl::OkStatus();
    }
    return AltnameError(absl::StrCat("Host: ", hostname, ". is not in the cert's altnames: ",
                                     cert.subjectaltname));
  }
  // RFC 6125 §6.4.4: the CN only when there is no DNS subjectAltName.
  std::vector<std::string> cns = cert.subject.GetAll("CN");
  if (cns.empty()) return AltnameError("Cert does not contain a DNS name");
  for (const std::string& cn : cns) {
    if (MatchDnsName(host, cn, /*allow_wildcard=*/true)) return absl::OkStatus();
  }
  return AltnameError(absl::StrCat("Host: ", hostname, ". is not cert's CN: ",
                                   absl::StrJoin(cns, ",")));
}

}  // namespace tlsengine

#include "core/certificate.h"

#include <arpa/inet.h>  // inet_pton: a pure parser, no I/O
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <algorithm>
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

std::string FormatIp(const std::string& ip) {
  const auto* p = reinterpret_cast<const unsigned char*>(ip.data());
  if (ip.size() == 4) return absl::StrCat(p[0], ".", p[1], ".", p[2], ".", p[3]);
  if (ip.size() == 16) {
    // OpenSSL's (and so Node's) form: eight groups, no compression.
    std::vector<std::string> groups;
    for (int i = 0; i < 16; i += 2) groups.push_back(absl::StrCat(absl::Hex((p[i] << 8) | p[i + 1], absl::kNoPad)));
    return absl::AsciiStrToUpper(absl::StrJoin(groups, ":"));
  }
  return absl::StrCat("<invalid length=", ip.size(), ">");  // Node on OpenSSL 3
}

std::string Text(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s));
}

// Node's IsSafeAltName (src/crypto/crypto_common.cc since CVE-2021-44532):
// whether a value can be printed as is without making the list ambiguous.
// `utf8`: bytes >= 0x80 are allowed (parts of code points).
bool IsSafeAltName(absl::string_view value, bool utf8) {
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\' || c == ',' || c == '\'') return false;
    if (c < ' ' || c == 0x7f || (!utf8 && c > '~')) return false;
  }
  return true;
}

// A GeneralName as Node prints it: `label:` then `prefix value`, quoted as
// a JSON string when the value is not safe (Node's PrintAltName).
struct NameText {
  std::string label;   // "DNS", "IP Address", ...
  std::string prefix;  // othername: "UPN:"; inside the quotes
  std::string value;   // raw
  bool quote_if_unsafe = true;
  bool utf8 = false;
};

std::string Display(const NameText& name) {
  std::string out = absl::StrCat(name.label, ":");
  if (!name.quote_if_unsafe || IsSafeAltName(name.value, name.utf8)) {
    return absl::StrCat(out, name.prefix, name.value);
  }
  absl::StrAppend(&out, "\"", name.prefix);
  for (char ch : name.value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if ((c >= ' ' && c != ',' && c <= '~') || (name.utf8 && c >= 0x80)) {
      out += ch;
    } else {
      // Commas too, as Node does, for code that still splits on them.
      absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out + "\"";
}

// Node's rendering of each GeneralName type (PrintGeneralName).
NameText DescribeName(const GENERAL_NAME* name) {
  NameText out;
  switch (name->type) {
    case GEN_DNS: out = {"DNS", "", Text(name->d.dNSName)}; break;
    case GEN_EMAIL: out = {"email", "", Text(name->d.rfc822Name)}; break;
    case GEN_URI: out = {"URI", "", Text(name->d.uniformResourceIdentifier)}; break;
    case GEN_IPADD: out = {"IP Address", "", FormatIp(Text(name->d.iPAddress)), false}; break;
    case GEN_DIRNAME: {
      OpenSslPtr<BIO> bio(BIO_new(BIO_s_mem()));
      X509_NAME_print_ex(bio.get(), name->d.directoryName, 0,
                         XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB & ~ASN1_STRFLGS_ESC_CTRL);
      out = {"DirName", "", internal::BioContents(bio.get()), true, /*utf8=*/true};
      break;
    }
    case GEN_RID: {
      char oid[256];
      OBJ_obj2txt(oid, sizeof(oid), name->d.registeredID, 1);
      out = {"Registered ID", "", oid, false};
      break;
    }
    case GEN_OTHERNAME: {
      const char* prefix = nullptr;
      bool utf8 = true;
      switch (OBJ_obj2nid(name->d.otherName->type_id)) {
        case NID_id_on_SmtpUTF8Mailbox: prefix = "SmtpUTF8Mailbox:"; break;
        case NID_XmppAddr: prefix = "XmppAddr:"; break;
        case NID_SRVName: prefix = "SRVName:"; utf8 = false; break;
        case NID_ms_upn: prefix = "UPN:"; break;
        case NID_NAIRealm: prefix = "NAIRealm:"; break;
        default: break;
      }
      const ASN1_TYPE* value = name->d.otherName->value;
      if (prefix == nullptr || value == nullptr || value->type != (utf8 ? V_ASN1_UTF8STRING : V_ASN1_IA5STRING)) {
        out = {"othername", "", "<unsupported>", false};
      } else {
        out = {"othername", prefix, Text(value->value.asn1_string), true, utf8};
      }
      break;
    }
    case GEN_X400: out = {"X400Name", "", "<unsupported>", false}; break;
    case GEN_EDIPARTY: out = {"EdiPartyName", "", "<unsupported>", false}; break;
    default: out = {"unknown", "", "<unsupported>", false}; break;
  }
  return out;
}

// subjectaltname for display (unless `identity_only`); dns_names and
// ip_addresses for identity.
void FillAltNames(X509* cert, CertificateInfo* info, bool identity_only = false) {
  int crit = 0;
  OpenSslPtr<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, nullptr)));
  if (!names) {
    // crit -1: no extension. Otherwise it is there but does not decode, or
    // appears twice: fail closed (a DNS name that matches nothing).
    if (crit != -1) info->dns_names.emplace_back();
    ERR_clear_error();
    return;
  }
  std::vector<std::string> parts;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (!identity_only) parts.push_back(Display(DescribeName(name)));
    if (name->type == GEN_DNS) info->dns_names.push_back(Text(name->d.dNSName));
    if (name->type == GEN_IPADD) info->ip_addresses.push_back(Text(name->d.iPAddress));
  }
  info->subjectaltname = absl::StrJoin(parts, ", ");
}

// Node's infoAccess: its C++ prints "OCSP - URI:http://..." lines and its
// JavaScript (translatePeerCertificate) splits each at the first colon and
// unquotes the value.
void FillInfoAccess(X509* cert, CertificateInfo* info) {
  OpenSslPtr<AUTHORITY_INFO_ACCESS> aia(
      static_cast<AUTHORITY_INFO_ACCESS*>(X509_get_ext_d2i(cert, NID_info_access, nullptr, nullptr)));
  ERR_clear_error();
  if (!aia) return;
  for (int i = 0; i < sk_ACCESS_DESCRIPTION_num(aia.get()); ++i) {
    const ACCESS_DESCRIPTION* desc = sk_ACCESS_DESCRIPTION_value(aia.get(), i);
    char method[80];
    i2t_ASN1_OBJECT(method, sizeof(method), desc->method);
    NameText location = DescribeName(desc->location);
    info->info_access[absl::StrCat(method, " - ", location.label)].push_back(location.prefix + location.value);
  }
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

absl::Status CheckServerIdentityOfX509(absl::string_view hostname, X509* cert) {
  // Only what the check reads: the structured names and the subject's CNs
  // (CheckServerIdentity's GetAll("CN") is NID_commonName, whose short
  // name is "CN"), not the display strings, digests and key encoding.
  CertificateInfo names;
  FillAltNames(cert, &names, /*identity_only=*/true);
  const X509_NAME* subject = X509_get_subject_name(cert);  // borrowed
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);  // borrowed
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    names.subject.entries.emplace_back("CN", len >= 0 ? std::string(reinterpret_cast<char*>(utf8), len) : "");
    OPENSSL_free(utf8);
  }
  ERR_clear_error();
  if (CheckServerIdentity(hostname, names).ok()) return absl::OkStatus();
  // A mismatch: the message quotes the display forms (subjectaltname), so
  // it comes from the whole certificate, as it always did.
  absl::StatusOr<CertificateInfo> info = InfoFromX509(cert);
  if (!info.ok()) return info.status();
  return CheckServerIdentity(hostname, *info);
}

absl::StatusOr<CertificateInfo> InfoFromX509(X509* cert) {
  CertificateInfo info;
  info.subject = NameEntries(X509_get_subject_name(cert));
  info.issuer = NameEntries(X509_get_issuer_name(cert));
  FillAltNames(cert, &info);
  FillInfoAccess(cert, &info);
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

std::string Canonical(absl::string_view name) {
  std::string out = absl::AsciiStrToLower(name);
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

bool IsLdh(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-'; }

// Letters, digits and hyphens, not first or last (RFC 1034 §3.5).
bool IsLdhLabel(absl::string_view label) {
  return !label.empty() && label.front() != '-' && label.back() != '-' &&
         std::all_of(label.begin(), label.end(), IsLdh);
}

// Only printable ASCII without space: NUL, control, space and non-ASCII
// bytes make a name malformed, and a malformed name matches nothing.
bool IsPrintableName(absl::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) { return c > ' ' && c <= '~'; });
}

// RFC 6125 §6.4: exact label-wise match; `*` only as the whole left-most
// label over at least two more labels (no "*.com"), standing for one label
// of letters, digits and hyphens (as OpenSSL's X509_check_host with
// X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS). `host` is Canonical().
bool MatchDnsName(const std::string& host, absl::string_view pattern_in) {
  std::string pattern = Canonical(pattern_in);
  if (host.empty() || pattern.empty() || !IsPrintableName(host) || !IsPrintableName(pattern)) return false;
  if (absl::StrContains(host, '*')) return false;
  std::vector<absl::string_view> host_labels = absl::StrSplit(host, '.');
  std::vector<absl::string_view> pattern_labels = absl::StrSplit(pattern, '.');
  if (host_labels.size() != pattern_labels.size()) return false;
  const bool wildcard = pattern_labels[0] == "*";
  if (wildcard) {
    if (pattern_labels.size() < 3 || !std::all_of(host_labels[0].begin(), host_labels[0].end(), IsLdh)) {
      return false;
    }
    if (!std::all_of(pattern_labels.begin() + 1, pattern_labels.end(), IsLdhLabel)) return false;
  }
  for (size_t i = 0; i < pattern_labels.size(); ++i) {
    absl::string_view p = pattern_labels[i];
    if (p.empty() || host_labels[i].empty()) return false;
    if (i == 0 && wildcard) continue;
    if (absl::StrContains(p, '*')) return false;  // partial wildcards are refused
    if (p != host_labels[i]) return false;
  }
  return true;
}

}  // namespace

bool internal::ParseIpAddress(absl::string_view text, std::string* bytes) {
  if (absl::StrContains(text, '\0')) return false;  // inet_pton would stop there: "1.2.3.4\0.evil"
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

std::vector<std::string> CertificateInfo::DnsNames() const { return dns_names; }

std::vector<std::string> CertificateInfo::IpAddresses() const {
  std::vector<std::string> out;
  for (const std::string& ip : ip_addresses) out.push_back(FormatIp(ip));
  return out;
}

absl::Status CheckServerIdentity(absl::string_view hostname, const CertificateInfo& cert) {
  std::string host_ip;
  if (internal::ParseIpAddress(hostname, &host_ip)) {
    for (const std::string& ip : cert.ip_addresses) {
      if (ip == host_ip) return absl::OkStatus();  // length too: 4 bytes never match 16
    }
    return AltnameError(absl::StrCat("IP: ", hostname, " is not in the cert's list: ",
                                     absl::StrJoin(cert.IpAddresses(), ", ")));
  }
  const std::string host = Canonical(hostname);
  if (!cert.dns_names.empty()) {
    for (const std::string& name : cert.dns_names) {
      if (MatchDnsName(host, name)) return absl::OkStatus();
    }
    return AltnameError(absl::StrCat("Host: ", hostname, ". is not in the cert's altnames: ",
                                     cert.subjectaltname));
  }
  // RFC 6125 §6.4.4: the CN only when there is no DNS subjectAltName.
  std::vector<std::string> cns = cert.subject.GetAll("CN");
  if (cns.empty()) return AltnameError("Cert does not contain a DNS name");
  for (const std::string& cn : cns) {
    if (MatchDnsName(host, cn)) return absl::OkStatus();
  }
  return AltnameError(absl::StrCat("Host: ", hostname, ". is not cert's CN: ",
                                   absl::StrJoin(cns, ",")));
}

}  // namespace tlsengine

#include "core/internal/openssl_util.h"

#include "absl/strings/str_cat.h"
#include "core/errors.h"

namespace tlsengine {
namespace internal {

OpenSslPtr<BIO> MemoryBio(absl::string_view data) {
  return OpenSslPtr<BIO>(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // borrowed: the BIO owns data
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

std::string DrainErrors() { return DrainFailure().detail; }

OpenSslFailure DrainFailure() {
  OpenSslFailure failure;
  std::string& out = failure.detail;
  const char* data = nullptr;
  int flags = 0;
  unsigned long e;
  unsigned long last = 0, last_ssl = 0;
  while ((e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0) {
    last = e;
    if (ERR_GET_LIB(e) == ERR_LIB_SSL) last_ssl = e;
    const char* reason = ERR_reason_error_string(e);
    std::string piece = reason != nullptr ? reason : absl::StrCat("error ", ERR_GET_REASON(e));
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      absl::StrAppend(&piece, " (", data, ")");
    }
    if (out.find(piece) == std::string::npos) {
      absl::StrAppend(&out, out.empty() ? "" : ": ", piece);
    }
  }
  failure.primary = last_ssl != 0 ? last_ssl : last;
  return failure;
}

int PeekErrorReason() { return ERR_GET_REASON(ERR_peek_error()); }

std::string ColonHex(const unsigned char* data, size_t len) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(len * 3);
  for (size_t i = 0; i < len; ++i) {
    if (i != 0) out.push_back(':');
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xf]);
  }
  return out;
}

absl::StatusOr<std::string> ProtocolListWire(absl::string_view option, const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& p : protocols) {
    if (p.empty() || p.size() > 255) {
      return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue,
                       absl::StrCat(option, ": each protocol must be 1 to 255 bytes, got '", p, "'"));
    }
    wire.push_back(static_cast<char>(p.size()));
    wire.append(p);
  }
  return wire;
}

}  // namespace internal
}  // namespace tlsengine

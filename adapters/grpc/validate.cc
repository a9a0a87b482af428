#include "adapters/grpc/validate.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/errors.h"

namespace tlsengine {
namespace control {

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return MakeError(absl::StatusCode::kInvalidArgument, kErrInvalidArgValue, absl::StrCat(field, ": ", what));
}
absl::Status NotFound(absl::string_view field, absl::string_view id) {
  return MakeError(absl::StatusCode::kNotFound, "ERR_TLS_CONTROL_NOT_FOUND",
                   absl::StrCat(field, ": no such id \"", absl::CHexEscape(id), "\""));
}
absl::Status Precondition(absl::string_view code, absl::string_view what) {
  return MakeError(absl::StatusCode::kFailedPrecondition, code, what);
}
absl::Status Limit(absl::string_view what, size_t limit) {
  return MakeError(absl::StatusCode::kResourceExhausted, kLimitCode, absl::StrCat(what, " (limit ", limit, ")"));
}
absl::Status Prefixed(absl::string_view field, const absl::Status& s) {
  absl::Status out(s.code(), absl::StrCat(field, ": ", s.message()));
  s.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

absl::Status CheckId(absl::string_view field, const std::string& id) {
  if (id.empty()) return Invalid(field, "required");
  if (id.size() > kMaxIdBytes) return Invalid(field, "longer than 64 bytes");
  return absl::OkStatus();
}

absl::Status CheckText(absl::string_view field, const std::string& s, size_t max) {
  if (s.size() > max) return Invalid(field, absl::StrCat("longer than ", max, " bytes"));
  return absl::OkStatus();
}

absl::Status CheckProtocols(absl::string_view field, const google::protobuf::RepeatedPtrField<std::string>& names) {
  if (names.size() > 32) return Invalid(field, "more than 32 entries");
  for (int i = 0; i < names.size(); ++i) {
    if (names[i].empty() || names[i].size() > 255) return Invalid(absl::StrCat(field, "[", i, "]"), "must be 1..255 bytes");
  }
  return absl::OkStatus();
}

absl::Status CheckEndpoint(const std::string& path, const std::string& host, int port) {
  if (!path.empty() && (!host.empty() || port != 0)) return Invalid("path", "give path, or host and port, not both");
  if (path.size() > 107) return Invalid("path", "longer than a unix socket path can be (107 bytes)");
  if (port < 0 || port > 65535) return Invalid("port", "must be 0..65535");
  return CheckText("host", host, kMaxNameBytes);
}

absl::Status CheckServername(absl::string_view field, const std::string& name,
                             const std::shared_ptr<const SecureContext>& any) {
  if (name.size() > kMaxNameBytes) return Invalid(field, "longer than 253 bytes");
  SniContexts probe;
  if (absl::Status s = probe.Add(name, any); !s.ok()) return Prefixed(field, s);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SplitTicketKeys(const std::string& keys) {
  if (keys.size() % kTicketKeyBytes != 0 || keys.size() > kTicketKeyBytes * 16) {
    return Invalid("ticketKeys",
                   absl::StrCat("must be 48 bytes per key (at most 16 keys), not ", keys.size(), " bytes"));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < keys.size(); i += kTicketKeyBytes) out.push_back(keys.substr(i, kTicketKeyBytes));
  return out;
}

std::string Lower(std::string s) {
  absl::AsciiStrToLower(&s);
  return s;
}

}  // namespace control
}  // namespace tlsengine

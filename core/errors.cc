#include "core/errors.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tlsengine {
namespace {

constexpr absl::string_view kNodeCodeUrl = "type.tlsengine/node-code";
constexpr absl::string_view kAlertUrl = "type.tlsengine/tls-alert";

}  // namespace

absl::Status MakeError(absl::StatusCode code, absl::string_view node_code,
                       absl::string_view message) {
  absl::Status status(code, message);
  if (!node_code.empty()) {
    status.SetPayload(kNodeCodeUrl, absl::Cord(node_code));
  }
  return status;
}

absl::Status WithAlert(absl::Status status, int alert) {
  if (!status.ok()) status.SetPayload(kAlertUrl, absl::Cord(absl::StrCat(alert)));
  return status;
}

std::string NodeCode(const absl::Status& status) {
  auto payload = status.GetPayload(kNodeCodeUrl);
  return payload ? std::string(*payload) : std::string();
}

std::optional<int> AlertOf(const absl::Status& status) {
  auto payload = status.GetPayload(kAlertUrl);
  int alert = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &alert)) return std::nullopt;
  return alert;
}

}  // namespace tlsengine

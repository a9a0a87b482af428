#include "core/default_answers.h"

#include <memory>
#include <string>

namespace tlsengine {

bool IsSuspension(EventType type) {
  switch (type) {
    case EventType::kSniRequest:
    case EventType::kResumeSession:
    case EventType::kNewSession:
    case EventType::kOcspRequest:
      return true;
    default:
      return false;
  }
}

absl::Status AnswerByDefault(TlsConnection& conn, const Event& event) {
  switch (event.type) {
    case EventType::kSniRequest: return conn.AnswerSni(std::shared_ptr<const SecureContext>());
    case EventType::kResumeSession: return conn.AnswerResumeSession(std::string());
    case EventType::kNewSession: return conn.AckNewSession(absl::OkStatus());
    case EventType::kOcspRequest: return conn.AnswerOcspRequest(std::string());
    default: return absl::OkStatus();
  }
}

}  // namespace tlsengine

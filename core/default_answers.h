// Default answers to the suspension events: what the engine does for an
// application that has no hook for kSniRequest, kResumeSession, kNewSession
// or kOcspRequest. Adapters and test drivers call it from their event switch
// instead of repeating the four answers.
//
//   while (std::optional<Event> ev = conn->NextEvent(now)) {
//     if (IsSuspension(ev->type) && !have_hook) AnswerByDefault(*conn, *ev).IgnoreError();
//   }
#ifndef TLSENGINE_CORE_DEFAULT_ANSWERS_H_
#define TLSENGINE_CORE_DEFAULT_ANSWERS_H_

#include "absl/status/status.h"
#include "core/tls_connection.h"

namespace tlsengine {

// True for the four events after which the handshake waits for an answer:
// kSniRequest, kResumeSession, kNewSession, kOcspRequest. Thread-safe.
bool IsSuspension(EventType type);

// Answers `event` on `conn` as Node does when the matching callback is not
// set:
//   kSniRequest     AnswerSni(nullptr): keep the connection's secure_context
//   kResumeSession  AnswerResumeSession(""): no stored session (full handshake)
//   kNewSession     AckNewSession(OK): the session was "stored" (not kept)
//   kOcspRequest    AnswerOcspRequest(""): staple nothing
// Any other event: nothing, OK. Otherwise returns what that call returns:
// OK, or kFailedPrecondition (ERR_TLS_INVALID_STATE) when nothing waits for
// the answer (already answered, or the connection has finished). Borrows
// `conn` and `event` for the call only; not thread-safe (as TlsConnection).
absl::Status AnswerByDefault(TlsConnection& conn, const Event& event);

}  // namespace tlsengine

#endif  // TLSENGINE_CORE_DEFAULT_ANSWERS_H_

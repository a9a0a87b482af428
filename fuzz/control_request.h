// The control_request fuzz target's entry points, for its replay test.
#ifndef TLSENGINE_FUZZ_CONTROL_REQUEST_H_
#define TLSENGINE_FUZZ_CONTROL_REQUEST_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace tlsengine {
namespace fuzz {

// Runs one input (method byte + serialized request) against the target's
// Controller; returns the call's status.
absl::Status RunControlRequest(const uint8_t* data, size_t size);
// The codes the service promises for any request.
bool AllowedCode(absl::StatusCode code);
// The controller still serves (GetStats is OK).
bool ControllerAnswers();
// Stops the target's Controller (its loop thread), so a test binary exits
// with no thread running. Later inputs get kUnavailable.
void ShutdownController();

}  // namespace fuzz
}  // namespace tlsengine

#endif  // TLSENGINE_FUZZ_CONTROL_REQUEST_H_

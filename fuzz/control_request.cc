// Fuzz target: the control service's request validation. The first byte
// picks a method, the rest is decoded (protobuf wire format) into that
// method's request and handed to one long-lived Controller, as the gRPC
// service would after decoding. Invariants, checked after every input:
//   * the answer is OK or one of the codes the service promises
//     (INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION,
//     RESOURCE_EXHAUSTED, UNAVAILABLE, UNAUTHENTICATED, ABORTED,
//     DEADLINE_EXCEEDED): never kInternal, kUnknown or a crash;
//   * the controller still answers (GetStats is OK): nothing was disturbed.
// Listeners bind to 127.0.0.1 only and connections get short timeouts, so the
// target never opens anything beyond loopback or waits long.
#include "fuzz/control_request.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "adapters/grpc/control.pb.h"
#include "adapters/grpc/controller.h"

namespace tlsengine {
namespace fuzz {
namespace {

namespace v1 = ::tlsengine::control::v1;
using control::Controller;

Controller& TheController() {
  static Controller* c = [] {
    control::ControllerOptions o;
    o.limits.max_contexts = 16;
    o.limits.max_listeners = 4;
    o.limits.max_connections = 16;
    o.limits.max_watchers = 2;
    return control::Controller::Create(o).value().release();  // lives for the process
  }();
  return *c;
}

template <typename Req>
bool Decode(const uint8_t* data, size_t size, Req* req) {
  return req->ParseFromArray(data, static_cast<int>(size));
}

// absl::StatusOr<T> -> its status.
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace

bool AllowedCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDeadlineExceeded:
      return true;
    default:
      return false;
  }
}

absl::Status RunControlRequest(const uint8_t* data, size_t size) {
  if (size == 0) return absl::OkStatus();
  Controller& c = TheController();
  const uint8_t method = data[0] % 23;
  ++data;
  --size;
// Method n: decode the request, `adjust` it (keep the target on loopback and
// its waits short), call.
#define TLSCTL_CASE(n, Req, Call, adjust)                              \
  case n: {                                                            \
    v1::Req req;                                                       \
    if (!Decode(data, size, &req)) return absl::OkStatus();            \
    adjust;                                                            \
    return StatusOf(c.Call(req));                                      \
  }
  switch (method) {
    TLSCTL_CASE(0, GetCiphersRequest, GetCiphers, )
    TLSCTL_CASE(1, CreateContextRequest, CreateContext, )
    TLSCTL_CASE(2, DeleteContextRequest, DeleteContext, )
    TLSCTL_CASE(3, ListenRequest, Listen, req.set_host("127.0.0.1"); req.clear_path())
    TLSCTL_CASE(4, CloseListenerRequest, CloseListener, if (req.deadline() > 100) req.set_deadline(100))
    TLSCTL_CASE(5, AddContextRequest, AddContext, )
    TLSCTL_CASE(6, RemoveContextRequest, RemoveContext, )
    TLSCTL_CASE(7, ReplaceContextRequest, ReplaceContext, )
    TLSCTL_CASE(8, RotateTicketKeysRequest, RotateTicketKeys, )
    TLSCTL_CASE(9, SetOcspResponseRequest, SetOcspResponse, )
    TLSCTL_CASE(10, ListCertificatesRequest, ListCertificates, )
    TLSCTL_CASE(11, ConnectRequest, Connect, req.set_host("127.0.0.1"); req.clear_path();
                if (req.timeout() <= 0 || req.timeout() > 200) req.set_timeout(200))
    TLSCTL_CASE(12, WriteRequest, Write, )
    case 13: {
      v1::ReadRequest req;
      if (!Decode(data, size, &req)) return absl::OkStatus();
      req.set_timeout(1);
      return c.Read(
          req, [](const v1::ReadChunk&) { return false; }, [] { return true; });
    }
    TLSCTL_CASE(14, ConnectionRequest, End, )
    TLSCTL_CASE(15, ConnectionRequest, Destroy, )
    TLSCTL_CASE(16, KeyUpdateRequest, KeyUpdate, )
    TLSCTL_CASE(17, SetMaxSendFragmentRequest, SetMaxSendFragment, )
    TLSCTL_CASE(18, ListConnectionsRequest, ListConnections, )
    TLSCTL_CASE(19, RenegotiateRequest, Renegotiate, if (req.timeout() > 50) req.set_timeout(50))
    TLSCTL_CASE(20, ConnectionRequest, GetConnection, )
    TLSCTL_CASE(21, GetStatsRequest, GetStats, )
    default: {
      v1::WatchEventsRequest req;
      if (!Decode(data, size, &req)) return absl::OkStatus();
      return c.WatchEvents(
          req, [](const v1::ControlEvent&) { return false; }, [] { return true; });
    }
  }
#undef TLSCTL_CASE
}

bool ControllerAnswers() { return TheController().GetStats(v1::GetStatsRequest()).ok(); }

void ShutdownController() { TheController().Shutdown(); }

}  // namespace fuzz
}  // namespace tlsengine

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::Status s = tlsengine::fuzz::RunControlRequest(data, size);
  if (!tlsengine::fuzz::AllowedCode(s.code())) {
    std::fprintf(stderr, "control_request: unexpected %s\n", s.ToString().c_str());
    std::abort();
  }
  if (!tlsengine::fuzz::ControllerAnswers()) {
    std::fprintf(stderr, "control_request: the controller stopped answering\n");
    std::abort();
  }
  return 0;
}

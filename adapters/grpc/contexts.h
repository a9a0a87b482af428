// Contexts: CreateContext (a SecureContext from inline PEM/DER or from
// files the request names, read under request_files.h's caps and built on
// the caller's thread), DeleteContext (refused while a listener serves it),
// ListCertificates (what each context, listener and SNI name serves) and
// GetCiphers. Thread-safe; the registry's maps are touched on its loop.
//
//   Contexts contexts(registry);
//   absl::StatusOr<v1::CreateContextResponse> made = contexts.CreateContext(req);
//
// Errors as Controller's (controller.h).
#ifndef TLSENGINE_ADAPTERS_GRPC_CONTEXTS_H_
#define TLSENGINE_ADAPTERS_GRPC_CONTEXTS_H_

#include "absl/status/statusor.h"
#include "adapters/grpc/control.pb.h"
#include "adapters/grpc/registry.h"

namespace tlsengine {
namespace control {

class Contexts {
 public:
  // `registry` must outlive this.
  explicit Contexts(Registry& registry) : r_(registry) {}

  absl::StatusOr<v1::GetCiphersResponse> GetCiphers(const v1::GetCiphersRequest& req);
  // Every file is counted before any is opened (max_files_per_request), and
  // what they hold as they are read (max_file_bytes_per_request);
  // everything is parsed and checked before anything is registered.
  absl::StatusOr<v1::CreateContextResponse> CreateContext(const v1::CreateContextRequest& req);
  absl::StatusOr<v1::DeleteContextResponse> DeleteContext(const v1::DeleteContextRequest& req);
  absl::StatusOr<v1::ListCertificatesResponse> ListCertificates(const v1::ListCertificatesRequest& req);

 private:
  Registry& r_;
};

}  // namespace control
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_GRPC_CONTEXTS_H_

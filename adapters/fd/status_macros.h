// RETURN_IF_ERROR for the adapters (Abseil 20220623 has none; core's copy
// is core-internal). One definition for every adapter.
//
//   ADAPTERS_RETURN_IF_ERROR(stream.Usable());
#ifndef TLSENGINE_ADAPTERS_FD_STATUS_MACROS_H_
#define TLSENGINE_ADAPTERS_FD_STATUS_MACROS_H_

#include "absl/status/status.h"

// Returns from the current function when `expr` (an absl::Status) fails.
#define ADAPTERS_RETURN_IF_ERROR(expr)                       \
  do {                                                       \
    ::absl::Status adapters_status_ = (expr);                \
    if (!adapters_status_.ok()) return adapters_status_;     \
  } while (0)

#endif  // TLSENGINE_ADAPTERS_FD_STATUS_MACROS_H_

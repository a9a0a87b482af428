// The two helper macros Abseil 20220623 lacks. Internal to core.
#ifndef TLSENGINE_CORE_INTERNAL_STATUS_MACROS_H_
#define TLSENGINE_CORE_INTERNAL_STATUS_MACROS_H_

#include <utility>

#define TLSENGINE_CONCAT_INNER_(a, b) a##b
#define TLSENGINE_CONCAT_(a, b) TLSENGINE_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` (an absl::Status) fails.
#define TLSENGINE_RETURN_IF_ERROR(expr)              \
  do {                                               \
    ::absl::Status tlsengine_status_ = (expr);       \
    if (!tlsengine_status_.ok()) return tlsengine_status_; \
  } while (0)

// `lhs = value of rexpr` (an absl::StatusOr), or returns its error.
#define TLSENGINE_ASSIGN_OR_RETURN(lhs, rexpr) \
  TLSENGINE_ASSIGN_OR_RETURN_IMPL_(TLSENGINE_CONCAT_(tlsengine_statusor_, __LINE__), lhs, rexpr)

#define TLSENGINE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                     \
  if (!statusor.ok()) return std::move(statusor).status();     \
  lhs = std::move(statusor).value()

#endif  // TLSENGINE_CORE_INTERNAL_STATUS_MACROS_H_

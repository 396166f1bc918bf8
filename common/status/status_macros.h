#pragma once
// RETURN_IF_ERROR / ASSIGN_OR_RETURN: propagate absl::Status across fallible boundaries.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DW_STATUS_CONCAT_INNER(a, b) a##b
#define DW_STATUS_CONCAT(a, b) DW_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                \
  do {                                       \
    ::absl::Status dw_status_ = (expr);      \
    if (!dw_status_.ok()) return dw_status_; \
  } while (0)

#define DW_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  DW_ASSIGN_OR_RETURN_IMPL(DW_STATUS_CONCAT(dw_statusor_, __LINE__), lhs, expr)

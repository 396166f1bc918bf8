#pragma once
// Human-readable rendering of the core's StatusResponse for `agent status`.

#include <string>

#include "dogwatch/core.pb.h"

namespace dogwatch::agent {

std::string FormatStatus(const core::StatusResponse& status, int64_t now_unix_ms);

}  // namespace dogwatch::agent

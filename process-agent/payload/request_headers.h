#pragma once
// The HTTP headers Datadog's process agent sends with every collector message
// (pkg/process/util/api/headers, the check submitter). The API key header is the forwarder's
// business and is not included.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/http/message.h"

namespace dogwatch::process {

inline constexpr std::string_view kHostnameHeader = "X-Dd-Hostname";
inline constexpr std::string_view kProcessAgentVersionHeader = "X-Dd-Processagentversion";
inline constexpr std::string_view kContainerCountHeader = "X-Dd-ContainerCount";
inline constexpr std::string_view kAgentTimestampHeader = "X-DD-Agent-Timestamp";
inline constexpr std::string_view kRequestIdHeader = "X-DD-Request-ID";
inline constexpr std::string_view kAgentStartTimeHeader = "X-DD-Agent-Start-Time";
inline constexpr std::string_view kContentTypeHeader = "Content-Type";
inline constexpr std::string_view kProtobufContentType = "application/x-protobuf";

struct RequestHeaderValues {
  std::string hostname;
  std::string agent_version;
  // Containers reported by the message (CollectorProc/CollectorContainer); 0 for the others.
  int container_count = 0;
  // When the check data was collected, unix seconds.
  int64_t timestamp_s = 0;
  // When the agent started, unix seconds.
  int64_t agent_start_time_s = 0;
  // See MakeRequestId.
  std::string request_id;
};

// X-Dd-Hostname, X-Dd-Processagentversion, X-Dd-ContainerCount, X-DD-Agent-Timestamp,
// X-DD-Request-ID (when `request_id` is set: the agent sets it for the process and connections
// checks only), X-DD-Agent-Start-Time and Content-Type: application/x-protobuf, in that order.
http::HttpHeaders RequestHeaders(const RequestHeaderValues& values);

// A request id unique per message, in the agent's layout: a decimal 64-bit integer made of the
// seconds elapsed in the current month (22 bits; UTC here, the agent uses its local zone), the
// 32-bit FNV-1 hash of the host name followed by the decimal pid masked to 28 bits, and the
// message's index within its run (14 bits).
std::string MakeRequestId(int64_t now_s, std::string_view hostname, int32_t pid, int message_index);

}  // namespace dogwatch::process

#include "process-agent/payload/request_headers.h"

#include <ctime>

#include "common/strings/strings.h"

namespace dogwatch::process {
namespace {

constexpr int kSecondsBits = 22;
constexpr int kHashBits = 28;
constexpr int kIndexBits = 14;

// 32-bit FNV-1 (multiply, then xor), the hash the agent uses for the host part of request ids.
uint32_t Fnv1Hash32(std::string_view a, std::string_view b) {
  uint32_t hash = 2166136261u;
  for (std::string_view part : {a, b}) {
    for (unsigned char c : part) {
      hash *= 16777619u;
      hash ^= c;
    }
  }
  return hash;
}

// Seconds since the first of the month `now_s` falls in (UTC).
int64_t SecondsIntoMonth(int64_t now_s) {
  const auto t = static_cast<time_t>(now_s);
  struct tm utc {};
  gmtime_r(&t, &utc);
  return static_cast<int64_t>(utc.tm_mday - 1) * 86400 + utc.tm_hour * 3600 + utc.tm_min * 60 + utc.tm_sec;
}

}  // namespace

http::HttpHeaders RequestHeaders(const RequestHeaderValues& values) {
  http::HttpHeaders headers;
  headers.Add(std::string(kHostnameHeader), values.hostname);
  headers.Add(std::string(kProcessAgentVersionHeader), values.agent_version);
  headers.Add(std::string(kContainerCountHeader), strings::Cat(values.container_count));
  headers.Add(std::string(kAgentTimestampHeader), strings::Cat(values.timestamp_s));
  if (!values.request_id.empty()) headers.Add(std::string(kRequestIdHeader), values.request_id);
  headers.Add(std::string(kAgentStartTimeHeader), strings::Cat(values.agent_start_time_s));
  headers.Add(std::string(kContentTypeHeader), std::string(kProtobufContentType));
  return headers;
}

std::string MakeRequestId(int64_t now_s, std::string_view hostname, int32_t pid, int message_index) {
  const uint64_t seconds =
      static_cast<uint64_t>(SecondsIntoMonth(now_s)) & ((uint64_t{1} << kSecondsBits) - 1);
  const std::string pid_text = strings::Cat(pid);
  const uint64_t hash = Fnv1Hash32(hostname, pid_text) & ((uint64_t{1} << kHashBits) - 1);
  const uint64_t index = static_cast<uint64_t>(message_index) & ((uint64_t{1} << kIndexBits) - 1);
  return strings::Cat(seconds << (kHashBits + kIndexBits) | hash << kIndexBits | index);
}

}  // namespace dogwatch::process

// The question section of a DNS message as the BPF program copies it (bounded raw bytes after the
// 12-byte header): the queried name in wire format, then QTYPE and QCLASS.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace dogwatch::sysprobe {

struct DnsQuestion {
  std::string name;     // dotted, lower-cased, without the trailing dot ("" for the root)
  uint16_t query_type;  // 0 when the copy was truncated before QTYPE
  bool truncated;       // the name or type did not fit the copied bytes
};

// Parses the first question. Rejects compression pointers (a question's name never uses them in a
// query), labels over 63 bytes and names over 253 characters, naming the problem; never reads past
// `bytes`. A copy cut inside the name gives the labels read so far with `truncated` set.
absl::StatusOr<DnsQuestion> ParseDnsQuestion(absl::Span<const uint8_t> bytes);

}  // namespace dogwatch::sysprobe

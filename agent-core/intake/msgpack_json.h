#pragma once
// Generic msgpack → JSON for showing msgpack payloads (the trace agent's StatsPayload) without
// their schema. Bounded: nesting depth, declared container sizes (checked against the bytes left
// before anything is read), and the size of the JSON produced.
//
// Mapping: nil → null, bool, integers, floats (NaN/±Inf → "NaN"/"Infinity"/"-Infinity" strings, as
// protobuf's JSON does), str → string (invalid UTF-8 replaced by U+FFFD), bin → base64 string,
// array, map (scalar non-string keys become their JSON text; array/map/ext keys are refused), ext →
// {"$ext": type, "data": base64}.

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dogwatch::intake {

struct MsgpackJsonLimits {
  size_t max_depth = 64;
  size_t max_output_bytes = 256 * 1024 * 1024;
};

// Converts exactly one msgpack object filling `data` (trailing bytes are an error).
absl::StatusOr<std::string> MsgpackToJson(std::string_view data, const MsgpackJsonLimits& limits = {});

// Replaces each invalid UTF-8 sequence in `text` with U+FFFD, so that it can go into JSON.
std::string SanitizeUtf8(std::string_view text);

}  // namespace dogwatch::intake

#pragma once
// Internal: JSON writing helpers shared by the event, service-check and host-metadata payloads.

#include <string>
#include <string_view>

#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace dogwatch::serializer::internal {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool IsValidUtf8(std::string_view text);

// `text` itself when it is valid UTF-8, otherwise a copy in `*scratch` with every invalid byte
// replaced by U+FFFD, as Go's encoding/json does. The intake rejects a body that is not UTF-8, so
// one bad tag from a client must not cost the whole payload.
std::string_view SanitizeUtf8(std::string_view text, std::string* scratch);

// Writes `text` as a JSON string (escaping quotes, backslashes and control characters; other
// characters pass through as UTF-8).
void WriteJsonString(JsonWriter& writer, std::string_view text);
void WriteJsonKey(JsonWriter& writer, std::string_view key);

// `text` as a complete JSON string literal, quotes included.
std::string JsonQuote(std::string_view text);

}  // namespace dogwatch::serializer::internal

#include "agent-core/serializer/json_util.h"

#include <cstdint>

namespace dogwatch::serializer::internal {
namespace {

// Length of the well-formed UTF-8 sequence starting at text[i], or 0 when it is not well formed
// (Unicode table 3-7).
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&text](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t lead = byte(i);
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint8_t second_low = 0x80;
  uint8_t second_high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_low = 0xA0;   // no overlongs
    if (lead == 0xED) second_high = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_low = 0x90;   // no overlongs
    if (lead == 0xF4) second_high = 0x8F;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < second_low || byte(i + 1) > second_high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    if (static_cast<uint8_t>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

std::string_view SanitizeUtf8(std::string_view text, std::string* scratch) {
  if (IsValidUtf8(text)) return text;
  scratch->clear();
  scratch->reserve(text.size() + 16);
  size_t i = 0;
  while (i < text.size()) {
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      scratch->append("\xEF\xBF\xBD");  // U+FFFD
      ++i;
    } else {
      scratch->append(text.substr(i, length));
      i += length;
    }
  }
  return *scratch;
}

void WriteJsonString(JsonWriter& writer, std::string_view text) {
  std::string scratch;
  const std::string_view clean = SanitizeUtf8(text, &scratch);
  writer.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
}

void WriteJsonKey(JsonWriter& writer, std::string_view key) {
  std::string scratch;
  const std::string_view clean = SanitizeUtf8(key, &scratch);
  writer.Key(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
}

std::string JsonQuote(std::string_view text) {
  rapidjson::StringBuffer buffer;
  JsonWriter writer(buffer);
  WriteJsonString(writer, text);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace dogwatch::serializer::internal

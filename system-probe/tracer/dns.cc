#include "system-probe/tracer/dns.h"

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace dogwatch::sysprobe {

namespace {
constexpr size_t kMaxLabel = 63;
constexpr size_t kMaxName = 253;
// The two top bits of a length byte mark a pointer or a reserved type: a plain label is at most 63.
constexpr uint8_t kLabelTypeBits = 0xc0;
static_assert((kMaxLabel & kLabelTypeBits) == 0 && ((kMaxLabel + 1) & 0x3f) == 0);
}  // namespace

absl::StatusOr<DnsQuestion> ParseDnsQuestion(absl::Span<const uint8_t> bytes) {
  DnsQuestion question{"", 0, false};
  size_t offset = 0;
  while (true) {
    if (offset >= bytes.size()) {
      question.truncated = true;
      return question;
    }
    const uint8_t length = bytes[offset];
    if (length == 0) {
      ++offset;
      break;
    }
    // Lengths over kMaxLabel always have one of the two top bits set.
    if ((length & kLabelTypeBits) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("dns question: label at offset ", offset,
                                                     " is a compression pointer or reserved type"));
    }
    ++offset;
    const size_t available = std::min<size_t>(length, bytes.size() - offset);
    if (question.name.size() + 1 + available > kMaxName) {
      return absl::InvalidArgumentError("dns question: name longer than 253 characters");
    }
    if (!question.name.empty()) question.name.push_back('.');
    for (size_t i = 0; i < available; ++i) {
      const char c = static_cast<char>(bytes[offset + i]);
      // Names are case-insensitive: one entry per domain whatever the client's casing. Bytes that
      // cannot appear in a host name are escaped so the status output stays printable.
      if (c == '.' || c == '\\' || static_cast<unsigned char>(c) < 0x21 ||
          static_cast<unsigned char>(c) > 0x7e) {
        absl::StrAppend(&question.name, "\\", static_cast<int>(static_cast<unsigned char>(c)));
      } else {
        question.name.push_back(absl::ascii_tolower(c));
      }
    }
    if (available < length) {
      question.truncated = true;
      return question;
    }
    offset += length;
  }
  if (bytes.size() - offset < 2) {
    question.truncated = true;
    return question;
  }
  question.query_type = static_cast<uint16_t>(bytes[offset] << 8 | bytes[offset + 1]);
  return question;
}

}  // namespace dogwatch::sysprobe

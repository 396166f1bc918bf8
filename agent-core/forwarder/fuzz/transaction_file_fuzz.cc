// Feeds arbitrary bytes to the on-disk transaction parser (what a restart reads back after a
// crash, a full disk or a tampered directory). Whatever parses must re-encode to the same bytes,
// except for the attempts counter which lives outside the checksum.
//
// Random bytes almost never carry a valid CRC, which would leave the field parsing unexplored, so
// each input is tried twice: as is, and with its last four bytes replaced by the correct CRC.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent-core/forwarder/transaction_file.h"

namespace {

void ParseAndCheck(std::string_view input) {
  auto parsed = dogwatch::forwarder::ParseTransactionFile(input);
  if (!parsed.ok()) return;
  if (!dogwatch::forwarder::ValidateTransactionMeta(parsed->meta).ok()) std::abort();
  if (dogwatch::forwarder::SerializeTransactionFile(*parsed) != input) std::abort();
}

std::string WithFixedChecksum(std::string_view input) {
  std::string file(input);
  constexpr size_t kAttemptsEnd = dogwatch::forwarder::kAttemptsOffset + 4;
  if (file.size() < kAttemptsEnd + 4) return file;
  const auto* bytes = reinterpret_cast<const Bytef*>(file.data());
  uLong crc = crc32_z(0, bytes, dogwatch::forwarder::kAttemptsOffset);
  crc = crc32_z(crc, bytes + kAttemptsEnd, file.size() - kAttemptsEnd - 4);
  for (int i = 0; i < 4; ++i) file[file.size() - 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  ParseAndCheck(input);
  ParseAndCheck(WithFixedChecksum(input));
  return 0;
}

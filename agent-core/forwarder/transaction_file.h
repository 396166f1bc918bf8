#pragma once
// On-disk format of one queued transaction (one file per transaction, per destination).
//
// The file is written once (temp file + fsync + rename) and read back after a restart, possibly
// after a crash, a full disk or an operator's `cp`. Everything read from it is untrusted: every
// length is checked against the bytes that remain and against the same limits Submit enforces, and
// a CRC covers everything but the retry counter, so a torn or edited file is reported, not trusted.
//
// Layout, little-endian, version 1:
//   [0,4)    magic "DWTX"
//   [4]      format version (1)
//   [5]      track (dogwatch.core.Track value)
//   [6,8)    reserved, zero
//   [8,12)   attempts u32 -- rewritten in place after each failed attempt, so outside the CRC
//   [12,20)  created, unix milliseconds, i64
//   u32 path length, path bytes
//   u32 header count, then per header: u32 name length, name, u32 value length, value
//   u64 body length, body bytes (must end exactly 4 bytes before the end of the file)
//   u32 CRC-32 (zlib) of bytes [0, 8) followed by [12, size - 4)

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dogwatch::forwarder {

// Limits shared by Submit (which refuses bigger input) and the parser (which calls a bigger file
// corrupt), so that whatever was accepted can always be read back.
inline constexpr size_t kMaxPathBytes = 4096;
inline constexpr size_t kMaxHeaders = 64;
inline constexpr size_t kMaxHeaderNameBytes = 256;
inline constexpr size_t kMaxHeaderValueBytes = 8192;
inline constexpr size_t kMaxBodyBytes = 64u << 20;  // far above the intake's own payload limits
inline constexpr uint8_t kTransactionFileVersion = 1;
inline constexpr size_t kAttemptsOffset = 8;  // where the in-place retry counter lives

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// Everything about a transaction except its body and its destination (the destination is the
// directory the file lives in).
struct TransactionMeta {
  uint8_t track = 0;
  uint32_t attempts = 0;
  int64_t created_unix_ms = 0;
  std::string path;
  HeaderList headers;  // the submitter's headers; the forwarder adds its own at send time
};

struct StoredTransaction {
  TransactionMeta meta;
  std::string body;
};

// Checks path and headers against the limits above and against header injection (CR, LF, NUL in
// values; non-token characters in names). Shared by Submit and the parser.
absl::Status ValidateTransactionMeta(const TransactionMeta& meta);

// A file is prefix + body + trailer; split so the writer can hand the body to writev without
// copying it.
std::string EncodeTransactionPrefix(const TransactionMeta& meta, size_t body_size);
std::string EncodeTransactionTrailer(std::string_view prefix, std::string_view body);

// Whole file in one string (tests and the fuzzer's round trip).
std::string SerializeTransactionFile(const StoredTransaction& txn);

// Size of the file EncodeTransactionPrefix + body + trailer produces, without building it.
size_t TransactionFileSize(const TransactionMeta& meta, size_t body_size);

// Parses and verifies a whole file. Errors: DataLoss for anything malformed, truncated, oversized
// or failing the CRC; the message says which part.
absl::StatusOr<StoredTransaction> ParseTransactionFile(std::string_view file);

}  // namespace dogwatch::forwarder

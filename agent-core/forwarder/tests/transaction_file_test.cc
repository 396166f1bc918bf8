#include "agent-core/forwarder/transaction_file.h"

#include <catch2/catch.hpp>

namespace dogwatch::forwarder {
namespace {

StoredTransaction Sample() {
  StoredTransaction txn;
  txn.meta.track = 2;
  txn.meta.attempts = 3;
  txn.meta.created_unix_ms = 1700000000123;
  txn.meta.path = "/api/v0.2/traces";
  txn.meta.headers = {{"Content-Type", "application/x-protobuf"}, {"Content-Encoding", "gzip"}};
  txn.body = std::string("\x00\x01payload\xff", 10);
  return txn;
}

TEST_CASE("transaction file round-trips every field", "[forwarder][file]") {
  const StoredTransaction txn = Sample();
  const std::string file = SerializeTransactionFile(txn);
  REQUIRE(file.size() == TransactionFileSize(txn.meta, txn.body.size()));
  auto parsed = ParseTransactionFile(file);
  REQUIRE(parsed.ok());
  CHECK(parsed->meta.track == 2);
  CHECK(parsed->meta.attempts == 3);
  CHECK(parsed->meta.created_unix_ms == 1700000000123);
  CHECK(parsed->meta.path == txn.meta.path);
  CHECK(parsed->meta.headers == txn.meta.headers);
  CHECK(parsed->body == txn.body);
}

TEST_CASE("prefix + body + trailer is the serialized file", "[forwarder][file]") {
  const StoredTransaction txn = Sample();
  const std::string prefix = EncodeTransactionPrefix(txn.meta, txn.body.size());
  const std::string trailer = EncodeTransactionTrailer(prefix, txn.body);
  CHECK(prefix + txn.body + trailer == SerializeTransactionFile(txn));
}

TEST_CASE("every truncation of a valid file is rejected", "[forwarder][file]") {
  const std::string file = SerializeTransactionFile(Sample());
  for (size_t length = 0; length < file.size(); ++length) {
    auto parsed = ParseTransactionFile(std::string_view(file).substr(0, length));
    INFO("length " << length);
    CHECK(absl::IsDataLoss(parsed.status()));
  }
  // Trailing garbage is as wrong as missing bytes.
  CHECK(absl::IsDataLoss(ParseTransactionFile(file + "x").status()));
}

TEST_CASE("every single-bit flip outside the attempts counter is rejected", "[forwarder][file]") {
  const std::string file = SerializeTransactionFile(Sample());
  for (size_t i = 0; i < file.size(); ++i) {
    if (i >= kAttemptsOffset && i < kAttemptsOffset + 4) continue;
    for (int bit = 0; bit < 8; ++bit) {
      std::string copy = file;
      copy[i] = static_cast<char>(copy[i] ^ (1 << bit));
      INFO("byte " << i << " bit " << bit);
      CHECK_FALSE(ParseTransactionFile(copy).ok());
    }
  }
}

TEST_CASE("the attempts counter can change in place", "[forwarder][file]") {
  std::string file = SerializeTransactionFile(Sample());
  file[kAttemptsOffset] = 42;
  auto parsed = ParseTransactionFile(file);
  REQUIRE(parsed.ok());
  CHECK(parsed->meta.attempts == 42);
}

TEST_CASE("huge length fields do not allocate or crash", "[forwarder][file]") {
  // A CRC-valid file whose header count claims 2^32-1 headers.
  StoredTransaction txn = Sample();
  txn.meta.headers.clear();
  std::string file = SerializeTransactionFile(txn);
  const size_t count_offset = 20 + 4 + txn.meta.path.size();
  for (int i = 0; i < 4; ++i) file[count_offset + i] = '\xff';
  CHECK(absl::IsDataLoss(ParseTransactionFile(file).status()));
}

TEST_CASE("header injection is refused by validation", "[forwarder][file]") {
  TransactionMeta meta;
  meta.path = "/api/v2/series";
  meta.headers = {{"X-Test", "a\r\nDD-API-KEY: stolen"}};
  CHECK(absl::IsInvalidArgument(ValidateTransactionMeta(meta)));
  meta.headers = {{"Bad Name", "x"}};
  CHECK(absl::IsInvalidArgument(ValidateTransactionMeta(meta)));
  meta.headers = {};
  meta.path = "no-slash";
  CHECK(absl::IsInvalidArgument(ValidateTransactionMeta(meta)));
  meta.path = "/a b";
  CHECK(absl::IsInvalidArgument(ValidateTransactionMeta(meta)));
  meta.path = "/ok";
  CHECK(ValidateTransactionMeta(meta).ok());
}

}  // namespace
}  // namespace dogwatch::forwarder

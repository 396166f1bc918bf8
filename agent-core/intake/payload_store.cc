#include "agent-core/intake/payload_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log/log.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace dogwatch::intake {
namespace {

namespace fs = std::filesystem;

constexpr char kMagic[8] = {'D', 'W', 'I', 'N', 'T', 'A', 'K', 'E'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kFileHeaderBytes = sizeof(kMagic) + 4 + 4;
// Metadata is small (bounded headers and error text); anything bigger is a corrupt file.
constexpr uint32_t kMaxMetaBytes = 1024 * 1024;
// Sequence numbers reserved per write of the sequence file: one small write per this many payloads,
// and at most this many numbers skipped after a crash.
constexpr uint64_t kSequenceBlock = 1024;
constexpr char kSequenceFile[] = "sequence";
constexpr char kTempPrefix[] = ".tmp-";
constexpr char kPayloadPrefix[] = "p-";
constexpr char kPayloadSuffix[] = ".dwp";

std::string ErrnoText(int err) { return std::strerror(err); }

void PutLE32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetLE32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ResourceExhaustedError(absl::StrCat("write ", path, ": ", ErrnoText(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status ReadExactly(int fd, char* out, size_t n, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = read(fd, out + done, n - done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return absl::DataLossError(absl::StrCat("read ", path, ": ", ErrnoText(errno)));
    }
    if (r == 0) return absl::DataLossError(absl::StrCat(path, " is truncated"));
    done += static_cast<size_t>(r);
  }
  return absl::OkStatus();
}

// Writes `content` to `path` via a temporary file and rename, so readers and restarts see the old
// file or the new one, never a partial write.
absl::Status WriteFileAtomically(const std::string& dir, const std::string& temp_name,
                                 const std::string& path, std::string_view header, std::string_view body) {
  const std::string temp = dir + "/" + temp_name;
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("create ", temp, ": ", ErrnoText(errno)));
  absl::Status status = WriteAll(fd, header, temp);
  if (status.ok()) status = WriteAll(fd, body, temp);
  if (close(fd) != 0 && status.ok()) {
    status = absl::ResourceExhaustedError(absl::StrCat("close ", temp, ": ", ErrnoText(errno)));
  }
  if (status.ok() && rename(temp.c_str(), path.c_str()) != 0) {
    status = absl::UnavailableError(absl::StrCat("rename to ", path, ": ", ErrnoText(errno)));
  }
  if (!status.ok()) unlink(temp.c_str());
  return status;
}

// Lookups by HasMember + operator[] rather than member iterators: comparing RapidJSON 1.1's member
// iterators is ambiguous under C++20's reversed operators (a clang warning).
std::string GetString(const rapidjson::Value& obj, const char* key) {
  if (!obj.HasMember(key) || !obj[key].IsString()) return "";
  return std::string(obj[key].GetString(), obj[key].GetStringLength());
}

int64_t GetInt64(const rapidjson::Value& obj, const char* key) {
  if (!obj.HasMember(key) || !obj[key].IsInt64()) return 0;
  return obj[key].GetInt64();
}

uint64_t GetUint64(const rapidjson::Value& obj, const char* key) {
  if (!obj.HasMember(key) || !obj[key].IsUint64()) return 0;
  return obj[key].GetUint64();
}

absl::StatusOr<PayloadMeta> ParseMeta(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::DataLossError("payload metadata is not a JSON object");
  }
  PayloadMeta meta;
  meta.seq = GetUint64(doc, "seq");
  meta.received_unix_ms = GetInt64(doc, "received_unix_ms");
  meta.method = GetString(doc, "method");
  meta.path = GetString(doc, "path");
  meta.content_type = GetString(doc, "content_type");
  meta.content_encoding = GetString(doc, "content_encoding");
  meta.api_key_hint = GetString(doc, "api_key_hint");
  meta.bytes = GetUint64(doc, "bytes");
  meta.decode_status = GetString(doc, "decode_status");
  meta.decode_error = GetString(doc, "decode_error");
  if (doc.HasMember("headers") && doc["headers"].IsObject()) {
    const rapidjson::Value& headers = doc["headers"];
    for (rapidjson::SizeType i = 0; i < headers.MemberCount(); ++i) {
      const auto& member = *(headers.MemberBegin() + i);
      if (!member.value.IsString()) continue;
      meta.headers.emplace_back(std::string(member.name.GetString(), member.name.GetStringLength()),
                                std::string(member.value.GetString(), member.value.GetStringLength()));
    }
  }
  return meta;
}

// "p-00000000000000000042.dwp" → 42.
bool ParsePayloadFileName(const std::string& name, uint64_t* seq) {
  const size_t prefix = sizeof(kPayloadPrefix) - 1;
  const size_t suffix = sizeof(kPayloadSuffix) - 1;
  if (name.size() != prefix + 20 + suffix || name.compare(0, prefix, kPayloadPrefix) != 0 ||
      name.compare(name.size() - suffix, suffix, kPayloadSuffix) != 0) {
    return false;
  }
  return absl::SimpleAtoi(absl::string_view(name.data() + prefix, 20), seq);
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string PayloadMetaToJson(const PayloadMeta& meta) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto str = [&w](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  w.Key("seq");
  w.Uint64(meta.seq);
  w.Key("received_unix_ms");
  w.Int64(meta.received_unix_ms);
  str("method", meta.method);
  str("path", meta.path);
  str("content_type", meta.content_type);
  str("content_encoding", meta.content_encoding);
  str("api_key_hint", meta.api_key_hint);
  w.Key("bytes");
  w.Uint64(meta.bytes);
  str("decode_status", meta.decode_status);
  str("decode_error", meta.decode_error);
  w.Key("headers");
  w.StartObject();
  for (const auto& [name, value] : meta.headers) {
    w.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  }
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

PayloadStore::PayloadStore(PayloadStoreOptions options) : options_(std::move(options)) {}

PayloadStore::~PayloadStore() {
  std::lock_guard<std::mutex> lock(mu_);
  // A clean shutdown records the exact next number, so the sequence continues without a gap.
  if (open_) (void)WriteSequenceFile(next_seq_);
}

std::string PayloadStore::PayloadFile(uint64_t seq) const {
  return absl::StrFormat("%s/%s%020u%s", options_.dir, kPayloadPrefix, seq, kPayloadSuffix);
}

absl::Status PayloadStore::WriteSequenceFile(uint64_t value) {
  const std::string content = absl::StrCat(value, "\n");
  return WriteFileAtomically(options_.dir, absl::StrCat(kTempPrefix, kSequenceFile),
                             options_.dir + "/" + kSequenceFile, content, "");
}

absl::Status PayloadStore::ReserveSequences() {
  const uint64_t target = next_seq_ + kSequenceBlock;
  absl::Status status = WriteSequenceFile(target);
  if (status.ok()) reserved_until_ = target;
  return status;
}

absl::Status PayloadStore::Open() {
  std::lock_guard<std::mutex> lock(mu_);
  if (open_) return absl::OkStatus();
  if (options_.dir.empty()) return absl::InvalidArgumentError("intake storage_dir is empty");
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create intake storage dir ", options_.dir, ": ", ec.message()));
  }
  if (!fs::is_directory(options_.dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(options_.dir, " is not a directory"));
  }

  uint64_t sequence_from_file = 0;
  std::vector<Entry> loaded;
  fs::directory_iterator it(options_.dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot list intake storage dir ", options_.dir, ": ", ec.message()));
  }
  for (const fs::directory_entry& file : it) {
    const std::string name = file.path().filename().string();
    const std::string full = file.path().string();
    if (name.rfind(kTempPrefix, 0) == 0) {
      unlink(full.c_str());  // an interrupted write
      continue;
    }
    if (name == kSequenceFile) {
      std::string content(32, '\0');
      const int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        const ssize_t n = read(fd, content.data(), content.size());
        close(fd);
        content.resize(n > 0 ? static_cast<size_t>(n) : 0);
        while (!content.empty() && (content.back() == '\n' || content.back() == ' ')) {
          content.pop_back();
        }
        if (!absl::SimpleAtoi(content, &sequence_from_file)) sequence_from_file = 0;
      }
      continue;
    }
    uint64_t seq = 0;
    if (!ParsePayloadFileName(name, &seq)) continue;  // not ours: leave it alone

    auto load = [&]() -> absl::StatusOr<Entry> {
      const int fd = open(full.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return absl::DataLossError(absl::StrCat("open ", full, ": ", ErrnoText(errno)));
      struct stat st {};
      fstat(fd, &st);
      char header[kFileHeaderBytes];
      absl::Status s = ReadExactly(fd, header, sizeof(header), full);
      if (!s.ok()) {
        close(fd);
        return s;
      }
      const auto* h = reinterpret_cast<const unsigned char*>(header);
      const uint32_t version = GetLE32(h + 8);
      const uint32_t meta_len = GetLE32(h + 12);
      if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0 || version != kFormatVersion ||
          meta_len > kMaxMetaBytes ||
          static_cast<uint64_t>(st.st_size) < kFileHeaderBytes + uint64_t{meta_len}) {
        close(fd);
        return absl::DataLossError(absl::StrCat(full, " is not a valid payload file"));
      }
      std::string meta_json(meta_len, '\0');
      s = ReadExactly(fd, meta_json.data(), meta_len, full);
      close(fd);
      if (!s.ok()) return s;
      absl::StatusOr<PayloadMeta> meta = ParseMeta(meta_json);
      if (!meta.ok()) return meta.status();
      const uint64_t body_bytes = static_cast<uint64_t>(st.st_size) - kFileHeaderBytes - meta_len;
      if (meta->seq != seq || meta->bytes != body_bytes) {
        return absl::DataLossError(absl::StrCat(full, " does not match its metadata"));
      }
      return Entry{std::move(*meta), static_cast<uint64_t>(st.st_size)};
    };
    absl::StatusOr<Entry> entry = load();
    if (!entry.ok()) {
      ++stats_.load_errors;
      log::Get("intake")->warn("removing unreadable stored payload: {}", entry.status().message());
      unlink(full.c_str());
      continue;
    }
    loaded.push_back(std::move(*entry));
  }

  std::sort(loaded.begin(), loaded.end(),
            [](const Entry& a, const Entry& b) { return a.meta.seq < b.meta.seq; });
  entries_.clear();
  total_bytes_ = 0;
  for (Entry& e : loaded) {
    total_bytes_ += e.file_bytes;
    entries_.push_back(std::move(e));
  }
  next_seq_ = std::max<uint64_t>(1, sequence_from_file);
  if (!entries_.empty()) next_seq_ = std::max(next_seq_, entries_.back().meta.seq + 1);
  EvictLocked();
  absl::Status reserved = ReserveSequences();
  if (!reserved.ok()) return reserved;
  open_ = true;
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> PayloadStore::Add(PayloadMeta meta, std::string_view body) {
  std::string header;
  uint64_t seq = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!open_) return absl::FailedPreconditionError("payload store is not open");
    seq = next_seq_++;
    if (next_seq_ > reserved_until_) {
      absl::Status s = ReserveSequences();
      if (!s.ok()) {
        // Keep accepting: only the no-reuse-after-crash guarantee is weakened.
        ++stats_.write_errors;
        log::Get("intake")->warn("cannot persist the intake sequence: {}", s.message());
      }
    }
  }
  meta.seq = seq;
  if (meta.received_unix_ms == 0) meta.received_unix_ms = NowUnixMs();
  meta.bytes = body.size();
  const std::string meta_json = PayloadMetaToJson(meta);
  header.append(kMagic, sizeof(kMagic));
  PutLE32(&header, kFormatVersion);
  PutLE32(&header, static_cast<uint32_t>(meta_json.size()));
  header += meta_json;
  const uint64_t file_bytes = header.size() + body.size();

  if (file_bytes > options_.max_bytes) {
    // It would evict everything else and then itself: count it as evicted on arrival.
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.evicted_payloads;
    stats_.evicted_bytes += static_cast<int64_t>(file_bytes);
    return seq;
  }

  const std::string path = PayloadFile(seq);
  absl::Status written =
      WriteFileAtomically(options_.dir, absl::StrCat(kTempPrefix, seq), path, header, body);
  std::lock_guard<std::mutex> lock(mu_);
  if (!written.ok()) {
    ++stats_.write_errors;
    return written;
  }
  // Concurrent writers can finish out of order; keep the index sorted by seq.
  Entry entry{std::move(meta), file_bytes};
  auto pos = entries_.end();
  while (pos != entries_.begin() && std::prev(pos)->meta.seq > seq) --pos;
  entries_.insert(pos, std::move(entry));
  total_bytes_ += file_bytes;
  EvictLocked();
  return seq;
}

void PayloadStore::RemoveFrontLocked(bool count_as_evicted) {
  const Entry& front = entries_.front();
  unlink(PayloadFile(front.meta.seq).c_str());
  total_bytes_ -= front.file_bytes;
  if (count_as_evicted) {
    ++stats_.evicted_payloads;
    stats_.evicted_bytes += static_cast<int64_t>(front.file_bytes);
  }
  entries_.pop_front();
}

void PayloadStore::EvictLocked() {
  while (!entries_.empty() &&
         (total_bytes_ > options_.max_bytes || entries_.size() > options_.max_payloads)) {
    RemoveFrontLocked(/*count_as_evicted=*/true);
  }
}

std::vector<PayloadMeta> PayloadStore::List(const Query& query) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PayloadMeta> out;
  auto it = std::upper_bound(entries_.begin(), entries_.end(), query.since_seq,
                             [](uint64_t seq, const Entry& e) { return seq < e.meta.seq; });
  for (; it != entries_.end() && out.size() < query.limit; ++it) {
    if (!query.path_prefix.empty() && it->meta.path.rfind(query.path_prefix, 0) != 0) continue;
    out.push_back(it->meta);
  }
  return out;
}

absl::StatusOr<PayloadMeta> PayloadStore::Meta(uint64_t seq) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::lower_bound(entries_.begin(), entries_.end(), seq,
                             [](const Entry& e, uint64_t s) { return e.meta.seq < s; });
  if (it == entries_.end() || it->meta.seq != seq) {
    return absl::NotFoundError(absl::StrCat("no stored payload with seq ", seq));
  }
  return it->meta;
}

absl::StatusOr<std::pair<PayloadMeta, std::string>> PayloadStore::Read(uint64_t seq) const {
  absl::StatusOr<PayloadMeta> meta = Meta(seq);
  if (!meta.ok()) return meta.status();
  // Read outside the lock; eviction may remove the file meanwhile, which reads as NotFound.
  const std::string path = PayloadFile(seq);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("payload ", seq, " was evicted"));
  char header[kFileHeaderBytes];
  absl::Status s = ReadExactly(fd, header, sizeof(header), path);
  std::string body;
  if (s.ok()) {
    const uint32_t meta_len = GetLE32(reinterpret_cast<const unsigned char*>(header) + 12);
    if (lseek(fd, static_cast<off_t>(kFileHeaderBytes + meta_len), SEEK_SET) < 0) {
      s = absl::DataLossError(absl::StrCat("seek in ", path, ": ", ErrnoText(errno)));
    } else {
      body.resize(meta->bytes);
      s = ReadExactly(fd, body.data(), body.size(), path);
    }
  }
  close(fd);
  if (!s.ok()) return s;
  return std::make_pair(std::move(*meta), std::move(body));
}

absl::Status PayloadStore::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  while (!entries_.empty()) RemoveFrontLocked(/*count_as_evicted=*/false);
  return absl::OkStatus();
}

PayloadStoreStats PayloadStore::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  PayloadStoreStats s = stats_;
  s.stored_payloads = static_cast<int64_t>(entries_.size());
  s.stored_bytes = static_cast<int64_t>(total_bytes_);
  return s;
}

uint64_t PayloadStore::next_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_seq_;
}

}  // namespace dogwatch::intake

#pragma once
// Helpers shared by the intake tests: a minimal msgpack writer (to build StatsPayload-like bodies),
// JSON parsing, temp directories and request construction.

#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/http/message.h"
#include "rapidjson/document.h"

namespace dogwatch::intake::testing {

class MsgpackWriter {
 public:
  MsgpackWriter& Map(uint32_t n) {
    if (n < 16) return Byte(0x80 | n);
    Byte(0xdf);
    return BE(n, 4);
  }
  MsgpackWriter& Array(uint32_t n) {
    if (n < 16) return Byte(0x90 | n);
    Byte(0xdd);
    return BE(n, 4);
  }
  MsgpackWriter& Str(std::string_view s) {
    if (s.size() < 32) {
      Byte(0xa0 | s.size());
    } else {
      Byte(0xdb);
      BE(s.size(), 4);
    }
    out_.append(s);
    return *this;
  }
  MsgpackWriter& Bin(std::string_view s) {
    Byte(0xc6);
    BE(s.size(), 4);
    out_.append(s);
    return *this;
  }
  MsgpackWriter& Uint(uint64_t v) {
    Byte(0xcf);
    return BE(v, 8);
  }
  MsgpackWriter& Int(int64_t v) {
    Byte(0xd3);
    return BE(static_cast<uint64_t>(v), 8);
  }
  MsgpackWriter& Double(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof(bits));
    Byte(0xcb);
    return BE(bits, 8);
  }
  MsgpackWriter& Float(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof(bits));
    Byte(0xca);
    return BE(bits, 4);
  }
  MsgpackWriter& Bool(bool b) { return Byte(b ? 0xc3 : 0xc2); }
  MsgpackWriter& Nil() { return Byte(0xc0); }
  MsgpackWriter& Raw(std::string_view bytes) {
    out_.append(bytes);
    return *this;
  }
  MsgpackWriter& Byte(uint64_t b) {
    out_.push_back(static_cast<char>(b & 0xff));
    return *this;
  }
  const std::string& bytes() const { return out_; }

 private:
  MsgpackWriter& BE(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string out_;
};

// A fresh directory under /tmp, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = absl::StrCat("/tmp/dw-intake-test-", getpid(), "-", rd());
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline rapidjson::Document ParseJson(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  return doc;
}

inline http::HttpRequest Post(std::string path, std::string body, std::string content_encoding = "",
                              std::string api_key = "") {
  http::HttpRequest r;
  r.method = "POST";
  r.path = std::move(path);
  r.body = std::move(body);
  if (!content_encoding.empty()) r.headers.Add("Content-Encoding", std::move(content_encoding));
  if (!api_key.empty()) r.headers.Add("DD-API-KEY", std::move(api_key));
  r.peer.transport = http::PeerInfo::Transport::kInProcess;
  return r;
}

inline http::HttpRequest Get(std::string path, std::vector<std::pair<std::string, std::string>> query = {}) {
  http::HttpRequest r;
  r.method = "GET";
  r.path = std::move(path);
  r.query_params = std::move(query);
  return r;
}

}  // namespace dogwatch::intake::testing

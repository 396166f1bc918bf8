#pragma once
// Plain HTTP request/reply values shared by the HTTP server and by in-process callers (the core's
// forwarder hands payloads to the local intake as an HttpRequest without any socket involved). No
// dependency on the server library, so it stays cheap to include.

#include <sys/types.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dogwatch::http {

// Header fields in the order and spelling the client sent them. Lookups ignore ASCII case, as field
// names are case-insensitive (RFC 9110 §5.1).
class HttpHeaders {
 public:
  using Entry = std::pair<std::string, std::string>;

  HttpHeaders() = default;
  HttpHeaders(std::initializer_list<Entry> entries) : entries_(entries) {}

  // Appends a field, keeping any earlier field of the same name.
  void Add(std::string name, std::string value);
  // Replaces every field named `name` with a single one.
  void Set(std::string name, std::string value);
  // Removes every field named `name`.
  void Remove(std::string_view name);

  // The first value of `name`, if present.
  std::optional<std::string_view> Get(std::string_view name) const;
  // The first value of `name`, or `fallback`.
  std::string_view GetOr(std::string_view name, std::string_view fallback) const;
  bool Has(std::string_view name) const { return Get(name).has_value(); }

  const std::vector<Entry>& entries() const { return entries_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }

 private:
  std::vector<Entry> entries_;
};

// ASCII case-insensitive equality, for header names and tokens.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Who is on the other end of the connection.
struct PeerInfo {
  enum class Transport { kUnknown, kTcp, kUnix, kInProcess };

  // Kernel-verified credentials of a unix-socket peer (SO_PEERCRED, taken at connect time).
  struct Credentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
  };

  Transport transport = Transport::kUnknown;
  // "127.0.0.1:40312", "[::1]:40312", or the server's socket path for unix sockets.
  std::string address;
  std::optional<Credentials> credentials;
};

struct HttpRequest {
  std::string method;  // as sent: "GET", "POST", ...
  std::string path;    // percent-decoded, without the query string
  // Decoded query parameters in order; a parameter without '=' has an empty value.
  std::vector<std::pair<std::string, std::string>> query_params;
  HttpHeaders headers;
  std::string body;
  PeerInfo peer;

  // The first value of query parameter `name`, if present.
  std::optional<std::string_view> QueryParam(std::string_view name) const;
};

struct HttpReply {
  int status = 200;
  std::string content_type;  // empty: no Content-Type header
  std::string body;
  HttpHeaders headers;  // extra headers; Content-Length is always computed by
                        // the server

  static HttpReply Json(int status, std::string body) {
    return HttpReply{status, "application/json", std::move(body), {}};
  }
  static HttpReply Text(int status, std::string body) {
    return HttpReply{status, "text/plain; charset=utf-8", std::move(body), {}};
  }
};

}  // namespace dogwatch::http

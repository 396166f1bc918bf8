#include "trace-agent/stats/aggregation.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

#include "common/strings/strings.h"
#include "trace-agent/stats/span_util.h"

namespace dogwatch::trace::stats {
namespace {

constexpr std::string_view kStatusCodeKey = "http.status_code";
constexpr std::string_view kBaseServiceKey = "_dd.base_service";

// Equality against a literal of the same length, checking the first and last bytes before memcmp: most meta
// keys of a candidate's length differ there, and the call to memcmp is what costs on the hot path.
inline bool SameKey(const SpanString& k, std::string_view lit) {
  return k.front() == lit.front() && k.back() == lit.back() && std::string_view(k) == lit;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// ---- gRPC status codes ----

struct CodeName {
  std::string_view name;
  int code;
};
// google.rpc.Code names, plus the spellings tracers use without underscores (and "CANCELED").
constexpr std::array<CodeName, 28> kGrpcCodes = {{
    {"OK", 0},
    {"CANCELLED", 1},
    {"CANCELED", 1},
    {"UNKNOWN", 2},
    {"INVALID_ARGUMENT", 3},
    {"INVALIDARGUMENT", 3},
    {"DEADLINE_EXCEEDED", 4},
    {"DEADLINEEXCEEDED", 4},
    {"NOT_FOUND", 5},
    {"NOTFOUND", 5},
    {"ALREADY_EXISTS", 6},
    {"ALREADYEXISTS", 6},
    {"PERMISSION_DENIED", 7},
    {"PERMISSIONDENIED", 7},
    {"RESOURCE_EXHAUSTED", 8},
    {"RESOURCEEXHAUSTED", 8},
    {"FAILED_PRECONDITION", 9},
    {"FAILEDPRECONDITION", 9},
    {"ABORTED", 10},
    {"OUT_OF_RANGE", 11},
    {"OUTOFRANGE", 11},
    {"UNIMPLEMENTED", 12},
    {"INTERNAL", 13},
    {"UNAVAILABLE", 14},
    {"DATA_LOSS", 15},
    {"DATALOSS", 15},
    {"UNAUTHENTICATED", 16},
    {"", -1},
}};

// Decimal text of `v` in `buf`.
std::string_view WriteDecimal(uint64_t v, GrpcCodeBuffer* buf) {
  const auto [end, ec] = std::to_chars(buf->data(), buf->data() + buf->size(), v);
  (void)ec;  // 20 digits always fit
  return std::string_view(buf->data(), static_cast<size_t>(end - buf->data()));
}

// `text` equals the upper-case `name` once ASCII letters of `text` are upper-cased.
bool EqualsUpper(std::string_view text, std::string_view name) {
  if (text.size() != name.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != name[i]) return false;
  }
  return true;
}

std::string_view ParseGrpcStatus(std::string_view raw, GrpcCodeBuffer* buf) {
  uint64_t number = 0;
  auto [ptr, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), number);
  if (ec == std::errc() && ptr == raw.data() + raw.size() && number <= 0xffffffffu)
    return WriteDecimal(number, buf);
  if (raw.starts_with("StatusCode.")) raw.remove_prefix(11);  // Python's grpc enum repr
  for (const auto& c : kGrpcCodes) {
    if (!c.name.empty() && EqualsUpper(raw, c.name)) return WriteDecimal(static_cast<uint64_t>(c.code), buf);
  }
  return {};
}

// ---- IP quantization (obfuscate.QuantizePeerIPAddresses) ----

constexpr std::array<std::string_view, 5> kAllowedIps = {"127.0.0.1", "::1", "169.254.169.254",
                                                         "fd00:ec2::254", "169.254.170.2"};
constexpr std::array<std::string_view, 5> kSchemes = {"dnspoll", "ftp", "file", "http", "https"};

bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// An IPv4 address with '.', '_' or '-' separators, possibly followed by other characters (as in
// ip-10-1-2-3.ec2.internal). Returns the length of the address part, or 0.
size_t ParseIPv4(std::string_view s, char sep) {
  int value = 0, pos = 0, digits = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      if (digits == 1 && value == 0) return 0;  // leading zero
      value = value * 10 + (c - '0');
      ++digits;
      if (value > 255) return 0;
    } else if (c == sep) {
      if (i == 0 || i == s.size() - 1 || s[i - 1] == sep) return 0;
      if (pos == 3) return i;  // 1.2.3.4.5: the address is the first four
      ++pos;
      value = 0;
      digits = 0;
    } else {
      if (pos == 3 && digits > 0) return i;
      return 0;
    }
  }
  return pos < 3 ? 0 : s.size();
}

// Length of the IP address at the start of `s` (whole string for IPv6), or 0.
size_t ParseableIp(std::string_view s) {
  if (s.empty() || !(IsHex(s[0]) || s[0] == ':')) return 0;
  for (char c : s) {
    if (c == '.' || c == '_' || c == '-') return ParseIPv4(s, c);
    if (c == ':') {
      if (s.size() >= INET6_ADDRSTRLEN) return 0;
      char buf[INET6_ADDRSTRLEN];
      std::copy(s.begin(), s.end(), buf);
      buf[s.size()] = '\0';
      unsigned char addr[16];
      return inet_pton(AF_INET6, buf, addr) == 1 ? s.size() : 0;
    }
    if (c == '%') return 0;
  }
  return 0;
}

// net.SplitHostPort without allocations: "host:port" or "[host]:port".
bool SplitHostPort(std::string_view hostport, std::string_view* host, std::string_view* port) {
  const size_t i = hostport.rfind(':');
  if (i == std::string_view::npos) return false;
  size_t j = 0, k = 0;
  if (hostport[0] == '[') {
    const size_t end = hostport.find(']');
    if (end == std::string_view::npos || end + 1 != i) return false;
    *host = hostport.substr(1, end - 1);
    j = 1;
    k = end + 1;
  } else {
    *host = hostport.substr(0, i);
    if (host->find(':') != std::string_view::npos) return false;
  }
  if (hostport.substr(j).find('[') != std::string_view::npos) return false;
  if (hostport.substr(k).find(']') != std::string_view::npos) return false;
  *port = hostport.substr(i + 1);
  return true;
}

std::string QuantizeIp(std::string_view raw) {
  std::string_view prefix, rest = raw;
  if (raw.starts_with("ip-")) {
    prefix = raw.substr(0, 3);
    rest = raw.substr(3);
  } else {
    for (std::string_view scheme : kSchemes) {
      const size_t at = raw.find(scheme);
      if (at == std::string_view::npos) continue;
      const size_t end = at + scheme.size() + 3;
      if (end < raw.size() && raw.substr(at + scheme.size(), 3) == "://") {
        prefix = raw.substr(at, end - at);
        rest = raw.substr(end);
        break;
      }
    }
  }
  std::string_view host, port;
  if (!SplitHostPort(rest, &host, &port)) {
    host = rest;
    port = {};
  }
  const size_t ip_len = ParseableIp(host);
  if (ip_len == 0) return std::string(raw);
  const std::string_view ip = host.substr(0, ip_len);
  if (std::find(kAllowedIps.begin(), kAllowedIps.end(), ip) != kAllowedIps.end()) return std::string(raw);
  std::string out = strings::Cat(prefix, "blocked-ip-address");
  if (!port.empty()) strings::AppendTo(&out, ":", port);
  out.append(host.substr(ip_len));
  return out;
}

bool MaybeHasIp(std::string_view raw) {
  for (char c : raw) {
    if (c >= '0' && c <= '9') return true;
    if (c == ':') return true;
  }
  return false;
}

}  // namespace

const std::vector<std::string>& DefaultPeerTagKeys() {
  static const std::vector<std::string>* keys = [] {
    // The precursors of each peer tag in the agent's peer_tags.ini, plus _dd.base_service.
    auto* v = new std::vector<std::string>{
        "_dd.base_service",
        // peer.hostname
        "peer.hostname", "hostname", "net.peer.name", "db.hostname", "network.destination.name", "grpc.host",
        "http.host", "server.address",
        // peer.cassandra.contact.points, peer.couchbase.seed.nodes
        "db.cassandra.contact.points", "db.couchbase.seed.nodes",
        // peer.rpc.service, peer.rpc.system
        "rpc.service", "rpc.system",
        // peer.aws.s3.bucket, .sqs.queue, .kinesis.stream, .dynamodb.table
        "bucketname", "queuename", "streamname", "tablename",
        // peer.db.system, peer.db.name
        "db.system", "db.name", "mongodb.db", "db.instance", "cassandra.keyspace",
        // peer.messaging.system, peer.messaging.destination
        "messaging.system", "topicname", "messaging.destination", "messaging.destination.name",
        "messaging.rabbitmq.exchange", "amqp.destination", "amqp.queue", "amqp.exchange", "msmq.queue.path",
        "aws.queue.name",
        // peer.kafka.bootstrap.servers, peer.cluster.name, peer.service
        "messaging.kafka.bootstrap.servers", "peer.cluster.name", "peer.service"};
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
    return v;
  }();
  return *keys;
}

std::vector<std::string> ConfiguredPeerTagKeys(bool peer_tags_aggregation,
                                               const std::vector<std::string>& extra) {
  if (!peer_tags_aggregation) return {};
  std::vector<std::string> keys = DefaultPeerTagKeys();
  for (const auto& k : extra) {
    if (!k.empty()) keys.push_back(k);
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

uint32_t HttpStatusCode(const Span& s) {
  StatsSpanFields f;
  ScanStatsFields(s, &f);
  return HttpStatusCode(f);
}

std::string GrpcStatusCode(const Span& s) {
  StatsSpanFields f;
  ScanStatsFields(s, &f);
  return GrpcStatusCode(f);
}

bool IsStatsSpanKind(std::string_view k) {
  // By length first: most spans have no kind or "internal", which then cost one compare.
  switch (k.size()) {
    case 6:
      return EqualsIgnoreCase(k, "server") || EqualsIgnoreCase(k, "client");
    case 8:
      return EqualsIgnoreCase(k, "consumer") || EqualsIgnoreCase(k, "producer");
    default:
      return false;
  }
}

void AppendQuantizedPeerIpAddresses(std::string_view raw, std::string* out) {
  if (!MaybeHasIp(raw)) {
    out->append(raw);  // hostnames: the common case, no work
    return;
  }
  out->append(QuantizePeerIpAddresses(raw));
}

std::string QuantizePeerIpAddresses(std::string_view raw) {
  if (!MaybeHasIp(raw)) return std::string(raw);
  std::vector<std::string> uniq;
  size_t start = 0;
  while (true) {
    const size_t comma = raw.find(',', start);
    const std::string_view part =
        raw.substr(start, comma == std::string_view::npos ? raw.npos : comma - start);
    std::string q = QuantizeIp(part);
    if (std::find(uniq.begin(), uniq.end(), q) == uniq.end()) uniq.push_back(std::move(q));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return strings::Join(uniq, ",");
}

void MatchingPeerTags(const Span& s, std::string_view span_kind, const std::vector<std::string>& keys,
                      std::vector<std::string>* out) {
  StatsSpanFields f;
  ScanStatsFields(s, &f);
  f.span_kind = span_kind;
  const size_t n = PeerTagMatcher(keys).Match(s, f, out);
  out->resize(n);
}

uint64_t SortedTagsFnvHash(const std::vector<std::string>& tags, size_t n) {
  if (n == 0) return 0;
  uint64_t h = 14695981039346656037ull;
  auto feed = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;
  };
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) feed(0);
    for (char c : tags[i]) feed(static_cast<unsigned char>(c));
  }
  return h;
}

uint64_t TagsFnvHash(std::vector<std::string>* tags) {
  if (!std::is_sorted(tags->begin(), tags->end())) std::sort(tags->begin(), tags->end());
  return SortedTagsFnvHash(*tags, tags->size());
}

namespace {

// Field by field: `*f = StatsSpanFields()` compiles to 8-byte stores of a temporary read back as 16-byte
// loads, a store-forwarding stall per pair that cost more than the scan itself.
inline void ResetFields(StatsSpanFields* f) {
  f->span_kind = {};
  f->http_status_code = {};
  f->http_method = {};
  f->http_endpoint = {};
  f->http_route = {};
  f->service_source = {};
  f->base_service = {};
  for (auto& g : f->grpc_meta) g = {};
  for (auto& g : f->grpc_metric) g = nullptr;
  f->http_status_code_metric = nullptr;
  f->top_level = false;
  f->measured = false;
  f->partial = false;
}

// Records meta entry (k, v) in `f` if it is a field of the stats key.
inline void NoteMetaField(const SpanString& k, const SpanString& v, StatsSpanFields* f) {
  // Dispatch on length first: most keys match no candidate and cost one switch.
  switch (k.size()) {
    case 9:
      if (SameKey(k, "span.kind")) {
        f->span_kind = v;
      } else if (SameKey(k, "grpc.code")) {
        f->grpc_meta[1] = v;
      }
      break;
    case 10:
      if (SameKey(k, "http.route")) f->http_route = v;
      break;
    case 11:
      if (SameKey(k, "http.method")) {
        f->http_method = v;
      } else if (SameKey(k, "_dd.svc_src")) {
        f->service_source = v;
      }
      break;
    case 13:
      if (SameKey(k, "http.endpoint")) f->http_endpoint = v;
      break;
    case 16:
      if (SameKey(k, kStatusCodeKey)) {
        f->http_status_code = v;
      } else if (SameKey(k, kBaseServiceKey)) {
        f->base_service = v;
      } else if (SameKey(k, "grpc.status.code")) {
        f->grpc_meta[3] = v;
      }
      break;
    case 20:
      if (SameKey(k, "rpc.grpc.status_code")) {
        f->grpc_meta[0] = v;
      } else if (SameKey(k, "rpc.grpc.status.code")) {
        f->grpc_meta[2] = v;
      }
      break;
    default:
      break;
  }
}

inline void ScanMetrics(const Span& s, StatsSpanFields* f) {
  for (const auto& [k, v] : s.metrics) {
    switch (k.size()) {
      case 10:
        if (SameKey(k, kTopLevelKey) && v == 1) f->top_level = true;
        break;
      case 12:
        if (SameKey(k, kMeasuredKey) && v == 1) f->measured = true;
        break;
      case 13:
        if (SameKey(k, kTracerTopLevelKey) && v == 1) f->top_level = true;
        break;
      case 19:
        if (SameKey(k, kPartialVersionKey) && v >= 0) f->partial = true;
        break;
      default:
        break;
    }
    if (k.size() == 16) {
      if (SameKey(k, kStatusCodeKey)) {
        f->http_status_code_metric = &v;
      } else if (SameKey(k, "grpc.status.code")) {
        f->grpc_metric[3] = &v;
      }
    } else if (k.size() == 9 && SameKey(k, "grpc.code")) {
      f->grpc_metric[1] = &v;
    } else if (k.size() == 20) {
      if (SameKey(k, "rpc.grpc.status_code")) {
        f->grpc_metric[0] = &v;
      } else if (SameKey(k, "rpc.grpc.status.code")) {
        f->grpc_metric[2] = &v;
      }
    }
  }
}

}  // namespace

void ScanStatsFields(const Span& s, StatsSpanFields* f) {
  ResetFields(f);
  for (const auto& [k, v] : s.meta) NoteMetaField(k, v, f);
  ScanMetrics(s, f);
}

uint32_t HttpStatusCode(const StatsSpanFields& f) {
  if (const double* code = f.http_status_code_metric) {
    if (!(*code >= 0 && *code <= 4294967295.0)) return 0;
    return static_cast<uint32_t>(*code);
  }
  const std::string_view text = f.http_status_code;
  if (text.empty()) return 0;
  uint32_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return 0;
  return value;
}

std::string_view GrpcStatusCode(const StatsSpanFields& f, GrpcCodeBuffer* buf) {
  for (std::string_view v : f.grpc_meta) {
    if (!v.empty()) return ParseGrpcStatus(v, buf);
  }
  for (const double* v : f.grpc_metric) {
    if (!v) continue;
    if (!(*v >= 0 && *v < 18446744073709551616.0)) return {};
    return WriteDecimal(static_cast<uint64_t>(*v), buf);
  }
  return {};
}

std::string GrpcStatusCode(const StatsSpanFields& f) {
  GrpcCodeBuffer buf;
  return std::string(GrpcStatusCode(f, &buf));
}

namespace {

// The first and last 8 bytes of `k` (zero-padded when shorter): with the length, they identify a key of
// up to 16 bytes exactly.
inline void HeadTail(std::string_view k, uint64_t* head, uint64_t* tail) {
  *head = 0;
  *tail = 0;
  if (k.size() >= 8) {
    std::memcpy(head, k.data(), 8);
    std::memcpy(tail, k.data() + k.size() - 8, 8);
  } else if (!k.empty()) {
    std::memcpy(head, k.data(), k.size());
  }
}

// Which bit of PeerTagMatcher::signatures_ a key of at least one byte sets.
inline uint64_t SignatureBit(std::string_view k) {
  const unsigned sig =
      (static_cast<unsigned char>(k.front()) * 7u + static_cast<unsigned char>(k.back())) & 63u;
  return uint64_t{1} << sig;
}

}  // namespace

PeerTagMatcher::PeerTagMatcher(std::vector<std::string> keys) : keys_(std::move(keys)) {
  std::sort(keys_.begin(), keys_.end());
  keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
  for (uint32_t i = 0; i < keys_.size(); ++i) {
    const std::string& k = keys_[i];
    if (k.empty()) continue;
    if (k.size() > kMaxIndexedLength) {
      long_keys_.push_back(i);
      continue;
    }
    Candidate c;
    HeadTail(k, &c.head, &c.tail);
    c.key = i;
    by_length_[k.size()].push_back(c);
    signatures_[k.size()] |= SignatureBit(k);
  }
}

std::string_view PeerTagMatcher::KeyName(uint32_t key) const {
  return key == kBaseServiceOnly ? kBaseServiceKey : std::string_view(keys_[key]);
}

inline bool PeerTagMatcher::RuledOut(std::string_view k) const {
  return k.empty() || (k.size() <= kMaxIndexedLength && !(signatures_[k.size()] & SignatureBit(k)));
}

uint32_t PeerTagMatcher::Lookup(std::string_view k) const {
  if (RuledOut(k)) return kNotAKey;
  if (k.size() > kMaxIndexedLength) {
    for (uint32_t i : long_keys_) {
      if (keys_[i] == k) return i;
    }
    return kNotAKey;
  }
  uint64_t head, tail;
  HeadTail(k, &head, &tail);
  for (const Candidate& c : by_length_[k.size()]) {
    if (c.head != head || c.tail != tail) continue;
    // Up to 16 bytes the two words cover the whole key; beyond, the middle is compared too.
    if (k.size() <= 16 || std::memcmp(k.data() + 8, keys_[c.key].data() + 8, k.size() - 16) == 0)
      return c.key;
  }
  return kNotAKey;
}

inline void PeerTagMatcher::MatchEntry(const SpanString& k, const SpanString& v, size_t* n,
                                       std::vector<PeerTagMatch>* out) const {
  if (v.empty()) return;
  const uint32_t key = Lookup(k);
  if (key == kNotAKey) return;
  // Insertion by key index: a span carries a handful of peer tags, already nearly in order.
  if (*n == out->size()) out->emplace_back();
  size_t at = (*n)++;
  while (at > 0 && (*out)[at - 1].key > key) {
    (*out)[at] = (*out)[at - 1];
    --at;
  }
  (*out)[at] = PeerTagMatch{key, v};
}

namespace {

inline bool IsPeerSpanKind(std::string_view kind) {
  switch (kind.size()) {  // by length first, as IsStatsSpanKind
    case 6:
      return EqualsIgnoreCase(kind, "client");
    case 8:
      return EqualsIgnoreCase(kind, "producer") || EqualsIgnoreCase(kind, "consumer");
    default:
      return false;
  }
}

}  // namespace

size_t PeerTagMatcher::MatchRaw(const Span& s, const StatsSpanFields& f,
                                std::vector<PeerTagMatch>* out) const {
  if (keys_.empty()) return 0;
  const std::string_view kind = f.span_kind;
  if (kind.empty() || EqualsIgnoreCase(kind, "internal")) {
    // A service override on an internal span (custom instrumentation): only the base service matters.
    if (f.base_service.empty()) return 0;
    if (out->empty()) out->emplace_back();
    (*out)[0] = PeerTagMatch{kBaseServiceOnly, f.base_service};
    return 1;
  }
  if (!IsPeerSpanKind(kind)) return 0;
  size_t n = 0;
  for (const auto& [k, v] : s.meta) {
    if (RuledOut(k)) continue;  // most meta keys stop here, without a call
    MatchEntry(k, v, &n, out);
  }
  return n;
}

size_t PeerTagMatcher::Format(std::span<const PeerTagMatch> matches, std::vector<std::string>* out) const {
  if (out->size() < matches.size()) out->resize(matches.size());
  for (size_t i = 0; i < matches.size(); ++i) {
    std::string& t = (*out)[i];
    t.clear();
    strings::AppendTo(&t, KeyName(matches[i].key), ":");
    AppendQuantizedPeerIpAddresses(matches[i].value, &t);
  }
  // Sorted as strings, not by key: "db.name.x:.." sorts before "db.name:..", as the agent sends them.
  std::sort(out->begin(), out->begin() + static_cast<std::ptrdiff_t>(matches.size()));
  return matches.size();
}

size_t PeerTagMatcher::Match(const Span& s, const StatsSpanFields& f, std::vector<std::string>* out) const {
  std::vector<PeerTagMatch> matches;
  const size_t n = MatchRaw(s, f, &matches);
  return Format(std::span<const PeerTagMatch>(matches.data(), n), out);
}

uint64_t ProcessTagsHash(std::string_view process_tags) {
  if (process_tags.empty()) return 0;
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t comma = process_tags.find(',', start);
    parts.emplace_back(
        process_tags.substr(start, comma == std::string_view::npos ? process_tags.npos : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return TagsFnvHash(&parts);
}

double TruncateDuration(int64_t ns) {
  // IEEE-754: keep sign, exponent and the top 9 stored mantissa bits (10 significant bits).
  const uint64_t bits = std::bit_cast<uint64_t>(static_cast<double>(ns)) & 0xfffff80000000000ull;
  return std::bit_cast<double>(bits);
}

}  // namespace dogwatch::trace::stats

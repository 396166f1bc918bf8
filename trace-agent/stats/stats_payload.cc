#include "trace-agent/stats/stats_payload.h"

#include <limits>

#include "common/status/status_macros.h"
#include "common/strings/strings.h"
#include "trace-agent/stats/msgpack.h"

namespace dogwatch::trace::stats {

size_t CountEntries(const ClientStatsPayload& p) {
  size_t n = 0;
  for (const auto& b : p.stats) n += b.stats.size();
  return n;
}

size_t CountEntries(const StatsPayload& p) {
  size_t n = 0;
  for (const auto& c : p.stats) n += CountEntries(c);
  return n;
}

// ---------------------------------------------------------------------------------------------------
// Encoding

namespace {

void EncodeGroup(const ClientGroupedStats& g, MsgpackWriter& w) {
  // srv_src only when set: older intakes never see a key they did not know.
  w.MapHeader(g.service_source.empty() ? 19 : 20);
  w.String("Service");
  w.String(g.service);
  w.String("Name");
  w.String(g.name);
  w.String("Resource");
  w.String(g.resource);
  w.String("HTTPStatusCode");
  w.Uint(g.http_status_code);
  w.String("Type");
  w.String(g.type);
  w.String("DBType");
  w.String(g.db_type);
  w.String("Hits");
  w.Uint(g.hits);
  w.String("Errors");
  w.Uint(g.errors);
  w.String("Duration");
  w.Uint(g.duration);
  w.String("OkSummary");
  w.Binary(g.ok_summary);
  w.String("ErrorSummary");
  w.Binary(g.error_summary);
  w.String("Synthetics");
  w.Bool(g.synthetics);
  w.String("TopLevelHits");
  w.Uint(g.top_level_hits);
  w.String("SpanKind");
  w.String(g.span_kind);
  w.String("PeerTags");
  w.ArrayHeader(static_cast<uint32_t>(g.peer_tags.size()));
  for (const auto& t : g.peer_tags) w.String(t);
  w.String("IsTraceRoot");
  w.Int(g.is_trace_root);
  w.String("GRPCStatusCode");
  w.String(g.grpc_status_code);
  w.String("HTTPMethod");
  w.String(g.http_method);
  w.String("HTTPEndpoint");
  w.String(g.http_endpoint);
  if (!g.service_source.empty()) {
    w.String("srv_src");
    w.String(g.service_source);
  }
}

void EncodeBucket(const ClientStatsBucket& b, MsgpackWriter& w) {
  w.MapHeader(b.stats.empty() ? 3 : 4);
  w.String("Start");
  w.Uint(b.start);
  w.String("Duration");
  w.Uint(b.duration);
  if (!b.stats.empty()) {
    w.String("Stats");
    w.ArrayHeader(static_cast<uint32_t>(b.stats.size()));
    for (const auto& g : b.stats) EncodeGroup(g, w);
  }
  w.String("AgentTimeShift");
  w.Int(b.agent_time_shift);
}

void EncodeClient(const ClientStatsPayload& p, MsgpackWriter& w) {
  w.MapHeader(p.stats.empty() ? 15 : 16);
  w.String("Hostname");
  w.String(p.hostname);
  w.String("Env");
  w.String(p.env);
  w.String("Version");
  w.String(p.version);
  if (!p.stats.empty()) {
    w.String("Stats");
    w.ArrayHeader(static_cast<uint32_t>(p.stats.size()));
    for (const auto& b : p.stats) EncodeBucket(b, w);
  }
  w.String("Lang");
  w.String(p.lang);
  w.String("TracerVersion");
  w.String(p.tracer_version);
  w.String("RuntimeID");
  w.String(p.runtime_id);
  w.String("Sequence");
  w.Uint(p.sequence);
  w.String("AgentAggregation");
  w.String(p.agent_aggregation);
  w.String("Service");
  w.String(p.service);
  w.String("ContainerID");
  w.String(p.container_id);
  w.String("Tags");
  w.ArrayHeader(static_cast<uint32_t>(p.tags.size()));
  for (const auto& t : p.tags) w.String(t);
  w.String("GitCommitSha");
  w.String(p.git_commit_sha);
  w.String("ImageTag");
  w.String(p.image_tag);
  w.String("ProcessTagsHash");
  w.Uint(p.process_tags_hash);
  w.String("ProcessTags");
  w.String(p.process_tags);
}

}  // namespace

void EncodeClientStatsPayload(const ClientStatsPayload& payload, std::string* out) {
  MsgpackWriter w(out);
  EncodeClient(payload, w);
}

void EncodeStatsPayload(const StatsPayload& p, std::string* out) {
  MsgpackWriter w(out);
  w.MapHeader(p.stats.empty() ? 5 : 6);
  w.String("AgentHostname");
  w.String(p.agent_hostname);
  w.String("AgentEnv");
  w.String(p.agent_env);
  if (!p.stats.empty()) {
    w.String("Stats");
    w.ArrayHeader(static_cast<uint32_t>(p.stats.size()));
    for (const auto& c : p.stats) EncodeClient(c, w);
  }
  w.String("AgentVersion");
  w.String(p.agent_version);
  w.String("ClientComputed");
  w.Bool(p.client_computed);
  w.String("SplitPayload");
  w.Bool(p.split_payload);
}

// ---------------------------------------------------------------------------------------------------
// Decoding

namespace {

class Decoder {
 public:
  Decoder(std::string_view data, const DecodeLimits& limits) : r_(data, limits.max_depth), limits_(limits) {}

  absl::Status Client(ClientStatsPayload* p) {
    ASSIGN_OR_RETURN(uint32_t n, MapHeader());
    for (uint32_t i = 0; i < n; ++i) {
      ASSIGN_OR_RETURN(std::string_view key, Key());
      absl::Status s;
      if (key == "Hostname") {
        s = Str(&p->hostname);
      } else if (key == "Env") {
        s = Str(&p->env);
      } else if (key == "Version") {
        s = Str(&p->version);
      } else if (key == "Stats") {
        s = Buckets(&p->stats);
      } else if (key == "Lang") {
        s = Str(&p->lang);
      } else if (key == "TracerVersion") {
        s = Str(&p->tracer_version);
      } else if (key == "RuntimeID") {
        s = Str(&p->runtime_id);
      } else if (key == "Sequence") {
        s = U64(&p->sequence);
      } else if (key == "AgentAggregation") {
        s = Str(&p->agent_aggregation);
      } else if (key == "Service") {
        s = Str(&p->service);
      } else if (key == "ContainerID") {
        s = Str(&p->container_id);
      } else if (key == "Tags") {
        s = StrList(&p->tags);
      } else if (key == "GitCommitSha") {
        s = Str(&p->git_commit_sha);
      } else if (key == "ImageTag") {
        s = Str(&p->image_tag);
      } else if (key == "ProcessTagsHash") {
        s = U64(&p->process_tags_hash);
      } else if (key == "ProcessTags") {
        s = Str(&p->process_tags);
      } else {
        s = r_.Skip();
      }
      if (!s.ok()) return Context("ClientStatsPayload." + std::string(key), s);
    }
    return absl::OkStatus();
  }

  absl::Status Payload(StatsPayload* p) {
    ASSIGN_OR_RETURN(uint32_t n, MapHeader());
    for (uint32_t i = 0; i < n; ++i) {
      ASSIGN_OR_RETURN(std::string_view key, Key());
      absl::Status s;
      if (key == "AgentHostname") {
        s = Str(&p->agent_hostname);
      } else if (key == "AgentEnv") {
        s = Str(&p->agent_env);
      } else if (key == "AgentVersion") {
        s = Str(&p->agent_version);
      } else if (key == "ClientComputed") {
        s = Bool(&p->client_computed);
      } else if (key == "SplitPayload") {
        s = Bool(&p->split_payload);
      } else if (key == "Stats") {
        ASSIGN_OR_RETURN(uint32_t m, ArrayHeader());
        p->stats.reserve(m);
        for (uint32_t j = 0; j < m && s.ok(); ++j) {
          if (r_.TryNil()) continue;
          p->stats.emplace_back();
          s = Client(&p->stats.back());
        }
      } else {
        s = r_.Skip();
      }
      if (!s.ok()) return Context("StatsPayload." + std::string(key), s);
    }
    return absl::OkStatus();
  }

 private:
  static absl::Status Context(const std::string& where, const absl::Status& s) {
    // Inner errors already carry the innermost key; keep the outermost path short.
    if (s.message().find(" in ") != absl::string_view::npos) return s;
    return absl::Status(s.code(), strings::Cat(s.message(), " in ", where));
  }

  absl::StatusOr<uint32_t> MapHeader() {
    if (r_.TryNil()) return 0u;
    return r_.ReadMapHeader();
  }
  absl::StatusOr<uint32_t> ArrayHeader() {
    if (r_.TryNil()) return 0u;
    return r_.ReadArrayHeader();
  }
  absl::StatusOr<std::string_view> Key() { return r_.ReadString(); }

  absl::Status Str(std::string* out) {
    if (r_.TryNil()) {
      out->clear();
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(std::string_view v, r_.ReadString());
    out->assign(v);
    return absl::OkStatus();
  }
  absl::Status Bytes(std::string* out) {
    if (r_.TryNil()) {
      out->clear();
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(std::string_view v, r_.ReadBytes());
    out->assign(v);
    return absl::OkStatus();
  }
  absl::Status U64(uint64_t* out) {
    if (r_.TryNil()) {
      *out = 0;
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(*out, r_.ReadUint());
    return absl::OkStatus();
  }
  absl::Status U32(uint32_t* out) {
    uint64_t v = 0;
    RETURN_IF_ERROR(U64(&v));
    if (v > std::numeric_limits<uint32_t>::max()) return r_.Error(strings::Cat(v, " does not fit uint32"));
    *out = static_cast<uint32_t>(v);
    return absl::OkStatus();
  }
  absl::Status I64(int64_t* out) {
    if (r_.TryNil()) {
      *out = 0;
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(*out, r_.ReadInt());
    return absl::OkStatus();
  }
  absl::Status I32(int32_t* out) {
    int64_t v = 0;
    RETURN_IF_ERROR(I64(&v));
    if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
      return r_.Error(strings::Cat(v, " does not fit int32"));
    }
    *out = static_cast<int32_t>(v);
    return absl::OkStatus();
  }
  absl::Status Bool(bool* out) {
    if (r_.TryNil()) {
      *out = false;
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(*out, r_.ReadBool());
    return absl::OkStatus();
  }
  absl::Status StrList(std::vector<std::string>* out) {
    ASSIGN_OR_RETURN(uint32_t n, ArrayHeader());
    tags_ += n;
    if (tags_ > limits_.max_tags) {
      return absl::ResourceExhaustedError(strings::Cat("more than ", limits_.max_tags, " tags"));
    }
    out->clear();
    out->reserve(n);  // n <= remaining bytes
    for (uint32_t i = 0; i < n; ++i) {
      out->emplace_back();
      RETURN_IF_ERROR(Str(&out->back()));
    }
    return absl::OkStatus();
  }

  absl::Status Buckets(std::vector<ClientStatsBucket>* out) {
    ASSIGN_OR_RETURN(uint32_t n, ArrayHeader());
    if (buckets_ + n > limits_.max_buckets) {
      return absl::ResourceExhaustedError(strings::Cat("more than ", limits_.max_buckets, " stats buckets"));
    }
    buckets_ += n;
    out->reserve(out->size() + n);
    for (uint32_t i = 0; i < n; ++i) {
      if (r_.TryNil()) continue;
      out->emplace_back();
      RETURN_IF_ERROR(Bucket(&out->back()));
    }
    return absl::OkStatus();
  }

  absl::Status Bucket(ClientStatsBucket* b) {
    ASSIGN_OR_RETURN(uint32_t n, MapHeader());
    for (uint32_t i = 0; i < n; ++i) {
      ASSIGN_OR_RETURN(std::string_view key, Key());
      absl::Status s;
      if (key == "Start") {
        s = U64(&b->start);
      } else if (key == "Duration") {
        s = U64(&b->duration);
      } else if (key == "AgentTimeShift") {
        s = I64(&b->agent_time_shift);
      } else if (key == "Stats") {
        s = Groups(&b->stats);
      } else {
        s = r_.Skip();
      }
      if (!s.ok()) return Context("ClientStatsBucket." + std::string(key), s);
    }
    return absl::OkStatus();
  }

  absl::Status Groups(std::vector<ClientGroupedStats>* out) {
    ASSIGN_OR_RETURN(uint32_t n, ArrayHeader());
    if (groups_ + n > limits_.max_groups) {
      return absl::ResourceExhaustedError(strings::Cat("more than ", limits_.max_groups, " grouped stats"));
    }
    groups_ += n;
    out->reserve(out->size() + n);
    for (uint32_t i = 0; i < n; ++i) {
      if (r_.TryNil()) continue;  // the Go decoder keeps nil entries, then every consumer skips them
      out->emplace_back();
      RETURN_IF_ERROR(Group(&out->back()));
    }
    return absl::OkStatus();
  }

  absl::Status Group(ClientGroupedStats* g) {
    ASSIGN_OR_RETURN(uint32_t n, MapHeader());
    for (uint32_t i = 0; i < n; ++i) {
      ASSIGN_OR_RETURN(std::string_view key, Key());
      absl::Status s;
      if (key == "Service") {
        s = Str(&g->service);
      } else if (key == "Name") {
        s = Str(&g->name);
      } else if (key == "Resource") {
        s = Str(&g->resource);
      } else if (key == "HTTPStatusCode") {
        s = U32(&g->http_status_code);
      } else if (key == "Type") {
        s = Str(&g->type);
      } else if (key == "DBType") {
        s = Str(&g->db_type);
      } else if (key == "Hits") {
        s = U64(&g->hits);
      } else if (key == "Errors") {
        s = U64(&g->errors);
      } else if (key == "Duration") {
        s = U64(&g->duration);
      } else if (key == "OkSummary") {
        s = Bytes(&g->ok_summary);
      } else if (key == "ErrorSummary") {
        s = Bytes(&g->error_summary);
      } else if (key == "Synthetics") {
        s = Bool(&g->synthetics);
      } else if (key == "TopLevelHits") {
        s = U64(&g->top_level_hits);
      } else if (key == "SpanKind") {
        s = Str(&g->span_kind);
      } else if (key == "PeerTags") {
        s = StrList(&g->peer_tags);
      } else if (key == "IsTraceRoot") {
        s = I32(&g->is_trace_root);
      } else if (key == "GRPCStatusCode") {
        s = GrpcCode(&g->grpc_status_code);
      } else if (key == "HTTPMethod") {
        s = Str(&g->http_method);
      } else if (key == "HTTPEndpoint") {
        s = Str(&g->http_endpoint);
      } else if (key == "srv_src") {
        s = Str(&g->service_source);
      } else {
        s = r_.Skip();
      }
      if (!s.ok()) return Context("ClientGroupedStats." + std::string(key), s);
    }
    return absl::OkStatus();
  }

  // The proto field is a string, but some tracers send the numeric code: accept both.
  absl::Status GrpcCode(std::string* out) {
    ASSIGN_OR_RETURN(MsgpackReader::Type t, r_.Peek());
    if (t == MsgpackReader::Type::kInt) {
      ASSIGN_OR_RETURN(uint64_t v, r_.ReadUint());
      *out = strings::Cat(v);
      return absl::OkStatus();
    }
    return Str(out);
  }

  MsgpackReader r_;
  const DecodeLimits& limits_;
  size_t buckets_ = 0;
  size_t groups_ = 0;
  size_t tags_ = 0;
};

}  // namespace

absl::StatusOr<ClientStatsPayload> DecodeClientStatsPayload(std::string_view msgpack,
                                                            const DecodeLimits& limits) {
  if (msgpack.empty()) return absl::InvalidArgumentError("msgpack: empty stats payload");
  Decoder d(msgpack, limits);
  ClientStatsPayload p;
  RETURN_IF_ERROR(d.Client(&p));
  return p;
}

absl::StatusOr<StatsPayload> DecodeStatsPayload(std::string_view msgpack, const DecodeLimits& limits) {
  if (msgpack.empty()) return absl::InvalidArgumentError("msgpack: empty stats payload");
  Decoder d(msgpack, limits);
  StatsPayload p;
  RETURN_IF_ERROR(d.Payload(&p));
  return p;
}

}  // namespace dogwatch::trace::stats

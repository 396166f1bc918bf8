// Every configuration key dogwatch reads: one declaration each, from which loading, validation,
// `agent config` and docs/configuration.md are derived. Keys and defaults follow datadog.yaml.

#include "common/config/config.h"

namespace dogwatch::config {
namespace {

constexpr int64_t kMiB = 1024 * 1024;

Option Make(std::string key, Type type, Value def, std::string doc, std::vector<std::string> aliases) {
  Option o;
  o.key = std::move(key);
  o.type = type;
  o.default_value = std::move(def);
  o.doc = std::move(doc);
  o.env_aliases = std::move(aliases);
  return o;
}

Option Bool(std::string key, bool def, std::string doc, std::vector<std::string> aliases = {}) {
  return Make(std::move(key), Type::kBool, Value(def), std::move(doc), std::move(aliases));
}
Option Int(std::string key, int64_t def, int64_t min, int64_t max, std::string doc,
           std::vector<std::string> aliases = {}) {
  Option o = Make(std::move(key), Type::kInt, Value(def), std::move(doc), std::move(aliases));
  o.min_int = min;
  o.max_int = max;
  return o;
}
Option Double(std::string key, double def, std::string doc, std::vector<std::string> aliases = {}) {
  return Make(std::move(key), Type::kDouble, Value(def), std::move(doc), std::move(aliases));
}
Option Str(std::string key, std::string def, std::string doc, std::vector<std::string> aliases = {}) {
  return Make(std::move(key), Type::kString, Value(std::move(def)), std::move(doc), std::move(aliases));
}
Option Enum(std::string key, std::string def, std::vector<std::string> allowed, std::string doc,
            std::vector<std::string> aliases = {}) {
  Option o = Make(std::move(key), Type::kString, Value(std::move(def)), std::move(doc), std::move(aliases));
  o.allowed_values = std::move(allowed);
  return o;
}
Option List(std::string key, std::string doc, std::vector<std::string> aliases = {}) {
  return Make(std::move(key), Type::kStringList, Value(StringList{}), std::move(doc), std::move(aliases));
}
Option ListOf(std::string key, StringList def, std::string doc, std::vector<std::string> aliases = {}) {
  return Make(std::move(key), Type::kStringList, Value(std::move(def)), std::move(doc), std::move(aliases));
}
Option Map(std::string key, std::string doc, std::vector<std::string> aliases = {}) {
  return Make(std::move(key), Type::kStringListMap, Value(StringListMap{}), std::move(doc),
              std::move(aliases));
}
Option Sensitive(Option o) {
  o.sensitive = true;
  return o;
}
Option NoSecrets(Option o) {
  o.forbid_secret_handles = true;
  o.sensitive = o.sensitive || o.type == Type::kStringList;  // backend arguments may carry tokens
  return o;
}

std::vector<Option> AllOptions() {
  const int64_t kPortMax = 65535;
  return {
      // --- identity, intake, logging
      Sensitive(Str("api_key", "", "Datadog API key. Without one, payloads go to the local intake.")),
      Sensitive(Str("app_key", "", "Datadog application key (EVP proxy requests that need one).")),
      Str("site", "datadoghq.com", "Datadog site; intake hosts are derived from it."),
      Str("dd_url", "", "Override for the metrics intake URL.", {"DD_DD_URL", "DD_URL"}),
      Str("hostname", "", "Hostname reported with every payload; empty: the system hostname."),
      List("tags", "Host tags added to every metric, trace and process payload."),
      List("extra_tags", "More host tags, appended to `tags`."),
      Str("env", "", "Default env tag."),
      Enum("log_level", "info", {"trace", "debug", "info", "warn", "warning", "error", "critical", "off"},
           "Log verbosity."),
      Str("log_file", "", "Log file; empty: standard error."),
      Str("run_path", "/var/run/dogwatch", "Directory for runtime state (disk queue, local intake)."),
      Bool("eks_fargate", false, "Sidecar mode: no host-level data (EKS Fargate, Cloud Run).",
           {"DD_EKS_FARGATE"}),
      Bool("skip_ssl_validation", false, "Do not verify the intake's TLS certificate."),
      Str("proxy.http", "", "Proxy for HTTP requests.", {"DD_PROXY_HTTP"}),
      Str("proxy.https", "", "Proxy for HTTPS requests.", {"DD_PROXY_HTTPS"}),
      List("proxy.no_proxy", "Hosts that bypass the proxy.", {"DD_PROXY_NO_PROXY"}),

      // --- secrets
      NoSecrets(Str("secret_backend_command", "", "Executable that resolves ENC[handle] values.")),
      NoSecrets(List("secret_backend_arguments", "Arguments for the secret backend command.")),
      NoSecrets(Int("secret_backend_timeout", 30, 1, 3600, "Seconds the backend may run.")),
      NoSecrets(
          Int("secret_backend_output_max_size", kMiB, 1024, 64 * kMiB, "Largest backend output accepted.")),
      NoSecrets(Bool("secret_backend_skip_checks", false, "Skip the backend's permission checks.")),
      NoSecrets(Bool("secret_backend_command_allow_group_exec_perm", false,
                     "Let the backend's group read and execute it.")),
      NoSecrets(Bool("secret_backend_remove_trailing_line_break", false,
                     "Strip one trailing line break from resolved values.")),

      // --- IPC and health
      Str("agent_ipc.socket", "/var/run/dogwatch/agent.sock",
          "Core IPC socket (gRPC) used by the sub-agents.", {"DD_AGENT_IPC_SOCKET"}),
      Int("agent_ipc.socket_mode", 0660, 0, 0777, "File mode of the IPC sockets (write it in octal: 0660)."),
      Str("agent_ipc.socket_group", "", "Group owning the IPC sockets; empty: the process's group."),
      List("agent_ipc.allowed_uids",
           "Extra peer uids allowed on IPC sockets, besides root and the agent's uid."),
      Int("agent_ipc.connect_timeout", 30, 1, 3600, "Seconds a sub-agent waits for the core at start."),
      Int("agent_ipc.max_message_bytes", 32 * kMiB, 1024, 256 * kMiB, "Largest IPC message accepted."),
      Int("health_port", 5555, 0, kPortMax, "Health HTTP port (/live, /ready, /startup); 0 = off."),
      Str("health_bind_host", "0.0.0.0",
          "Address the health server binds (Kubernetes probes need it reachable)."),

      // --- forwarder
      Int("forwarder_timeout", 20, 1, 600, "Seconds per intake request."),
      Int("forwarder_backoff_base", 2, 0, 3600, "Retry backoff base, seconds."),
      Int("forwarder_backoff_max", 64, 1, 86400, "Retry backoff cap, seconds."),
      Double("forwarder_backoff_factor", 2.0, "Retry backoff growth factor."),
      Int("forwarder_recovery_interval", 2, 1, 1000, "Errors forgiven per success."),
      Bool("forwarder_recovery_reset", false, "Reset the error count on the first success."),
      Int("forwarder_retry_queue_payloads_max_size", 15 * kMiB, 0, 4096 * kMiB,
          "Bytes of payloads kept in memory awaiting delivery."),
      Int("forwarder_storage_max_size_in_bytes", 0, 0, int64_t{1} << 40,
          "On-disk queue bound in bytes; 0 disables the disk queue."),
      Str("forwarder_storage_path", "", "On-disk queue directory; empty: <run_path>/transactions_to_retry."),
      Map("additional_endpoints", "More metrics intakes: URL → list of API keys."),
      Bool("local_intake.enabled", true, "Deliver to the built-in local intake when no api_key is set."),
      Int("local_intake.port", 5556, 0, kPortMax,
          "Local intake HTTP port (Datadog paths + inspection); 0 = off."),
      Str("local_intake.bind_host", "127.0.0.1", "Address the local intake binds."),
      Str("local_intake.storage_path", "", "Local intake storage; empty: <run_path>/intake."),
      Int("local_intake.max_size_in_bytes", 64 * kMiB, kMiB, int64_t{1} << 40, "Local intake storage bound."),

      // --- supervisor
      Bool("supervisor.enabled", false, "`agent run` starts and supervises the enabled sub-agents."),
      Str("supervisor.bin_dir", "", "Where the sub-agent executables are; empty: next to `agent`."),

      // --- APM (trace-agent)
      Bool("apm_config.enabled", true, "Run the trace-agent.", {"DD_APM_ENABLED"}),
      Int("apm_config.receiver_port", 8126, 0, kPortMax, "Trace intake TCP port; 0 = off.",
          {"DD_APM_RECEIVER_PORT", "DD_RECEIVER_PORT"}),
      Str("apm_config.receiver_socket", "/var/run/dogwatch/apm.socket",
          "Trace intake unix socket; empty = off.", {"DD_APM_RECEIVER_SOCKET"}),
      Bool("apm_config.apm_non_local_traffic", false, "Listen on all interfaces for traces.",
           {"DD_APM_NON_LOCAL_TRAFFIC"}),
      Str("apm_config.apm_dd_url", "", "Override for the trace intake URL.", {"DD_APM_DD_URL"}),
      Map("apm_config.additional_endpoints", "More trace intakes: URL → API keys.",
          {"DD_APM_ADDITIONAL_ENDPOINTS"}),
      Int("apm_config.max_request_bytes", 25 * kMiB, 1024, 1024 * kMiB,
          "Largest trace request accepted (413 above).", {"DD_APM_MAX_REQUEST_BYTES"}),
      Int("apm_config.receiver_timeout", 5, 1, 600, "Seconds to read a request.",
          {"DD_APM_RECEIVER_TIMEOUT"}),
      Double("apm_config.target_traces_per_second", 10.0, "Priority sampler target.",
             {"DD_APM_TARGET_TPS", "DD_APM_MAX_TPS"}),
      Str("apm_config.env", "", "Default env for traces (falls back to `env`)."),
      List("apm_config.ignore_resources",
           "Regular expressions; traces whose root resource matches are dropped.",
           {"DD_APM_IGNORE_RESOURCES"}),
      List("apm_config.filter_tags.require", "Tags (key or key:value) a root span must carry to be kept.",
           {"DD_APM_FILTER_TAGS_REQUIRE"}),
      List("apm_config.filter_tags.reject", "Tags (key or key:value) that make a trace dropped.",
           {"DD_APM_FILTER_TAGS_REJECT"}),
      Double("apm_config.errors_per_second", 10.0, "Error sampler budget.", {"DD_APM_ERROR_TPS"}),
      Bool("apm_config.enable_rare_sampler", false, "Keep traces of rare service/resource combinations.",
           {"DD_APM_ENABLE_RARE_SAMPLER"}),
      Bool("apm_config.compute_stats_by_span_kind", true,
           "Count client/server/producer/consumer spans in stats.", {"DD_APM_COMPUTE_STATS_BY_SPAN_KIND"}),
      Bool("apm_config.peer_tags_aggregation", true, "Aggregate stats by peer tags.",
           {"DD_APM_PEER_TAGS_AGGREGATION", "DD_APM_PEER_SERVICE_AGGREGATION"}),
      List("apm_config.peer_tags", "Extra peer tags for stats aggregation.", {"DD_APM_PEER_TAGS"}),
      Bool("apm_config.evp_proxy_config.enabled", true, "Serve /evp_proxy/.",
           {"DD_APM_EVP_PROXY_CONFIG_ENABLED"}),
      Int("apm_config.evp_proxy_config.max_payload_size", 5 * kMiB, 1024, 256 * kMiB, "EVP proxy body limit.",
          {"DD_APM_EVP_PROXY_CONFIG_MAX_PAYLOAD_SIZE"}),
      Str("apm_config.evp_proxy_config.dd_url", "",
          "EVP proxy intake: a site (payloads go to https://<subdomain>.<site>) or a URL, which may hold "
          "{subdomain}; empty: `site`.",
          {"DD_APM_EVP_PROXY_CONFIG_DD_URL"}),
      Sensitive(Str("apm_config.evp_proxy_config.api_key", "", "API key for the EVP proxy; empty: `api_key`.",
                    {"DD_APM_EVP_PROXY_CONFIG_API_KEY"})),
      Map("apm_config.evp_proxy_config.additional_endpoints", "More EVP intakes: site or URL → API keys.",
          {"DD_APM_EVP_PROXY_CONFIG_ADDITIONAL_ENDPOINTS"}),
      List("apm_config.features", "Feature flags (table_names, quantize_sql_tables, keep_sql_alias, ...).",
           {"DD_APM_FEATURES"}),
      Enum("apm_config.sql_obfuscation_mode", "", {"", "obfuscate_only", "obfuscate_and_normalize"},
           "SQL obfuscation mode (only the default is implemented; others fall back to it).",
           {"DD_APM_SQL_OBFUSCATION_MODE"}),
      Bool("apm_config.obfuscation.sql.table_names", false, "Collect table names into sql.tables.",
           {"DD_APM_OBFUSCATION_SQL_TABLE_NAMES"}),
      Bool("apm_config.obfuscation.sql.replace_digits", false, "Replace digits in identifiers.",
           {"DD_APM_OBFUSCATION_SQL_REPLACE_DIGITS"}),
      Bool("apm_config.obfuscation.sql.keep_sql_alias", false, "Keep SQL aliases.",
           {"DD_APM_OBFUSCATION_SQL_KEEP_SQL_ALIAS"}),
      Bool("apm_config.obfuscation.sql.dollar_quoted_func", false, "Obfuscate $func$ bodies as SQL.",
           {"DD_APM_OBFUSCATION_SQL_DOLLAR_QUOTED_FUNC"}),
      Str("apm_config.obfuscation.sql.dbms", "", "Database dialect (postgresql, mssql).",
          {"DD_APM_OBFUSCATION_SQL_DBMS"}),
      Bool("apm_config.obfuscation.mongodb.enabled", true, "Obfuscate MongoDB queries.",
           {"DD_APM_OBFUSCATION_MONGODB_ENABLED"}),
      List("apm_config.obfuscation.mongodb.keep_values", "MongoDB keys kept verbatim.",
           {"DD_APM_OBFUSCATION_MONGODB_KEEP_VALUES"}),
      List("apm_config.obfuscation.mongodb.obfuscate_sql_values",
           "MongoDB keys whose values are SQL-obfuscated.",
           {"DD_APM_OBFUSCATION_MONGODB_OBFUSCATE_SQL_VALUES"}),
      Bool("apm_config.obfuscation.elasticsearch.enabled", true, "Obfuscate Elasticsearch bodies.",
           {"DD_APM_OBFUSCATION_ELASTICSEARCH_ENABLED"}),
      List("apm_config.obfuscation.elasticsearch.keep_values", "Elasticsearch keys kept verbatim.",
           {"DD_APM_OBFUSCATION_ELASTICSEARCH_KEEP_VALUES"}),
      List("apm_config.obfuscation.elasticsearch.obfuscate_sql_values",
           "Elasticsearch keys whose values are SQL-obfuscated.",
           {"DD_APM_OBFUSCATION_ELASTICSEARCH_OBFUSCATE_SQL_VALUES"}),
      Bool("apm_config.obfuscation.opensearch.enabled", true, "Obfuscate OpenSearch bodies.",
           {"DD_APM_OBFUSCATION_OPENSEARCH_ENABLED"}),
      List("apm_config.obfuscation.opensearch.keep_values", "OpenSearch keys kept verbatim.",
           {"DD_APM_OBFUSCATION_OPENSEARCH_KEEP_VALUES"}),
      List("apm_config.obfuscation.opensearch.obfuscate_sql_values",
           "OpenSearch keys whose values are SQL-obfuscated.",
           {"DD_APM_OBFUSCATION_OPENSEARCH_OBFUSCATE_SQL_VALUES"}),
      Bool("apm_config.obfuscation.http.remove_query_string", false, "Remove query strings from http.url.",
           {"DD_APM_OBFUSCATION_HTTP_REMOVE_QUERY_STRING"}),
      Bool("apm_config.obfuscation.http.remove_paths_with_digits", false,
           "Replace path segments containing digits.", {"DD_APM_OBFUSCATION_HTTP_REMOVE_PATHS_WITH_DIGITS"}),
      Bool("apm_config.obfuscation.redis.enabled", true, "Obfuscate Redis commands.",
           {"DD_APM_OBFUSCATION_REDIS_ENABLED"}),
      Bool("apm_config.obfuscation.redis.remove_all_args", false, "Replace all Redis arguments.",
           {"DD_APM_OBFUSCATION_REDIS_REMOVE_ALL_ARGS"}),
      Bool("apm_config.obfuscation.valkey.enabled", true, "Obfuscate Valkey commands.",
           {"DD_APM_OBFUSCATION_VALKEY_ENABLED"}),
      Bool("apm_config.obfuscation.valkey.remove_all_args", false, "Replace all Valkey arguments.",
           {"DD_APM_OBFUSCATION_VALKEY_REMOVE_ALL_ARGS"}),
      Bool("apm_config.obfuscation.memcached.enabled", true, "Obfuscate Memcached commands.",
           {"DD_APM_OBFUSCATION_MEMCACHED_ENABLED"}),
      Bool("apm_config.obfuscation.memcached.keep_command", false,
           "Keep the Memcached command (without values).", {"DD_APM_OBFUSCATION_MEMCACHED_KEEP_COMMAND"}),
      Bool("apm_config.obfuscation.credit_cards.enabled", true, "Replace credit card numbers in tags.",
           {"DD_APM_OBFUSCATION_CREDIT_CARDS_ENABLED"}),
      Bool("apm_config.obfuscation.credit_cards.luhn", false, "Check the Luhn digit before replacing.",
           {"DD_APM_OBFUSCATION_CREDIT_CARDS_LUHN"}),
      List("apm_config.obfuscation.credit_cards.keep_values", "Tag keys never scanned for card numbers.",
           {"DD_APM_OBFUSCATION_CREDIT_CARDS_KEEP_VALUES"}),
      Bool("apm_config.obfuscation.remove_stack_traces", false, "Replace error.stack with ?.",
           {"DD_APM_OBFUSCATION_REMOVE_STACK_TRACES"}),
      Bool("apm_config.obfuscation.cache.enabled", true, "Cache obfuscated SQL queries.",
           {"DD_APM_OBFUSCATION_CACHE_ENABLED"}),
      Int("apm_config.obfuscation.cache.max_size", 5000000, 0, int64_t{1} << 40, "SQL cache bound in bytes.",
          {"DD_APM_OBFUSCATION_CACHE_MAX_SIZE"}),
      Int("apm_config.obfuscation.cache.max_entries", 100000, 0, 10000000, "SQL cache bound in entries."),

      // --- DogStatsD
      Bool("use_dogstatsd", true, "Run the DogStatsD server.", {"DD_USE_DOGSTATSD"}),
      Int("dogstatsd_port", 8125, 0, kPortMax, "DogStatsD UDP port; 0 = off."),
      Str("dogstatsd_socket", "/var/run/dogwatch/dsd.socket", "DogStatsD unix datagram socket; empty = off."),
      Bool("dogstatsd_non_local_traffic", false, "Listen on all interfaces for DogStatsD."),
      Int("dogstatsd_buffer_size", 8192, 512, 65536,
          "Bytes read per datagram; a longer datagram is counted as oversize and its cut line dropped."),
      Int("dogstatsd_packet_buffer_size", 32, 1, 1024, "Datagrams read per recvmmsg batch."),
      Int("dogstatsd_queue_size", 64, 2, 4096,
          "Batches buffered between the sockets and the parser; when all are in use the reader waits and "
          "the kernel socket buffer absorbs the burst (UDP overflows are counted from SO_RXQ_OVFL)."),
      Int("dogstatsd_so_rcvbuf", 0, 0, int64_t{1} << 30,
          "SO_RCVBUF of the DogStatsD sockets; 0 = OS default."),
      Int("dogstatsd_pipeline_count", 1, 1, 8, "Parser/aggregator threads."),
      Bool("dogstatsd_origin_detection", false,
           "UDS: find the sender's container from its PID (SO_PASSCRED) and add its tags."),
      Bool("dogstatsd_origin_detection_client", false, "Honour the client-sent c:/e:/card: origin fields."),
      Enum("dogstatsd_tag_cardinality", "low", {"none", "low", "orchestrator", "high"},
           "Cardinality of origin tags added to DogStatsD metrics."),
      List("dogstatsd_tags", "Tags added to every DogStatsD metric, event and service check."),
      Str("statsd_metric_namespace", "", "Prefix added to every DogStatsD metric name (a '.' is appended)."),
      Int("dogstatsd_context_expiry_seconds", 20, 1, 86400,
          "A context with no sample for this long is forgotten."),
      Int("dogstatsd_expiry_seconds", 300, 1, 86400,
          "A counter with no sample keeps reporting 0 for this long."),
      Int("dogstatsd_max_contexts", 200000, 100, 100000000,
          "Bound on live metric contexts; samples for new contexts beyond it are shed and counted."),
      ListOf("histogram_aggregates", {"max", "median", "avg", "count"},
             "Aggregates sent for histograms and timers (max, min, median, avg, sum, count)."),
      ListOf("histogram_percentiles", {"0.95"}, "Percentiles sent for histograms and timers (0 < p < 1)."),
      Enum("serializer_compressor_kind", "zstd", {"zstd", "zlib"},
           "Compression of metric payloads (zlib is sent as Content-Encoding: deflate)."),
      Int("serializer_zstd_compressor_level", 1, 1, 22, "zstd level for metric payloads."),
      Bool("enable_payloads.series", true, "Send metric series."),
      Bool("enable_payloads.sketches", true, "Send distribution sketches."),
      Bool("enable_payloads.events", true, "Send events."),
      Bool("enable_payloads.service_checks", true, "Send service checks."),
      Bool("enable_metadata_collection", true, "Send host metadata (at start and every 30 min)."),
      Int("metadata_providers_host_interval", 1800, 300, 14400, "Seconds between host metadata payloads."),
      Int("metrics_flush_interval", 15, 1, 3600,
          "Seconds between metric flushes (closed 10 s buckets, events, service checks); Datadog's is 15."),
      Str("procfs_path", "/proc", "Where the host's /proc is (e.g. /host/proc in a container).",
          {"DD_PROCFS_PATH"}),
      Bool("enable_host_checks", true,
           "Run the built-in host checks (cpu, memory, load, disk, io, network, uptime) every 15 s; "
           "off in sidecar mode (eks_fargate)."),

      // --- containers and the tagger
      Bool("container_tagger.enabled", true,
           "Tag metrics and traces from containers with the runtime's metadata."),
      Str("container_runtime_socket", "",
          "Docker-compatible API socket (docker or podman); empty: /var/run/docker.sock, then "
          "/run/podman/podman.sock.",
          {"DOCKER_HOST"}),
      Map("container_labels_as_tags", "Container labels sent as tags: label → tag name.",
          {"DD_CONTAINER_LABELS_AS_TAGS", "DD_DOCKER_LABELS_AS_TAGS"}),
      Str("container_proc_root", "/proc",
          "The host's /proc (/host/proc when the agent runs in a container)."),
      Str("container_cgroup_root", "/sys/fs/cgroup",
          "The host's cgroup root (/host/sys/fs/cgroup when the agent runs in a container)."),

      // --- processes and containers
      Bool("process_config.process_collection.enabled", false, "Collect live processes.",
           {"DD_PROCESS_AGENT_ENABLED", "DD_PROCESS_CONFIG_ENABLED"}),
      Bool("process_config.container_collection.enabled", true, "Collect containers."),
      Str("process_config.process_dd_url", "", "Override for the process intake URL.",
          {"DD_PROCESS_AGENT_URL", "DD_PROCESS_AGENT_PROCESS_DD_URL"}),
      Map("process_config.additional_endpoints", "More process intakes: URL → API keys.",
          {"DD_PROCESS_ADDITIONAL_ENDPOINTS"}),
      Int("process_config.intervals.process", 10, 1, 3600,
          "Seconds between process check runs (CollectorProc)."),
      Int("process_config.intervals.container", 10, 1, 3600,
          "Seconds between container check runs (CollectorContainer)."),
      Int("process_config.intervals.process_realtime", 2, 1, 3600,
          "Seconds between real-time process check runs (CollectorRealTime)."),
      Int("process_config.intervals.container_realtime", 2, 1, 3600,
          "Seconds between real-time container check runs (CollectorContainerRealTime)."),
      Int("process_config.max_per_message", 100, 1, 10000, "Most processes or containers per message."),
      Int("process_config.max_message_bytes", 1000000, 1024, 4000000,
          "Largest uncompressed process message body, bytes."),
      Bool("process_config.scrub_args", true, "Hide the values of sensitive command-line arguments.",
           {"DD_SCRUB_ARGS"}),
      List("process_config.custom_sensitive_words",
           "More sensitive words for command-line scrubbing ('*' wildcards allowed).",
           {"DD_CUSTOM_SENSITIVE_WORDS"}),
      Bool("process_config.strip_proc_arguments", false, "Send only the executable of each command line.",
           {"DD_STRIP_PROCESS_ARGS"}),
      Bool("process_config.disable_realtime_checks", false,
           "Never run the real-time process and container checks."),
      Bool("process_config.realtime_always", false,
           "Run the real-time checks continuously; Datadog runs them while the web UI watches."),

      // --- system-probe (read by system-probe from system-probe.yaml, by others to find its socket)
      Bool("system_probe_config.enabled", false, "Run system-probe.", {"DD_SYSTEM_PROBE_ENABLED"}),
      Str("system_probe_config.sysprobe_socket", "/var/run/dogwatch/sysprobe.sock", "system-probe's socket.",
          {"DD_SYSPROBE_SOCKET"}),
      Bool("network_config.enabled", false, "Network flow collection.", {"DD_SYSTEM_PROBE_NETWORK_ENABLED"}),
      Str("network_config.tracer_backend", "auto",
          "auto (try each, best first), tracepoint (tp_btf + cgroup hooks) or fexit: which eBPF program set "
          "counts socket I/O."),
      Str("network_config.tcp_counters", "auto",
          "auto (socket storage when the kernel allows it), storage or map: how a live TCP connection's "
          "bytes are counted. storage reads the kernel's own tcp_sock totals at each poll (splice and "
          "sendfile included) and costs each send and receive a pointer off the socket and a PID "
          "compare; map adds each call's bytes after looking the connection up (the only way before "
          "kernel 5.11; splice is not seen)."),
      Str("network_config.io_accounting", "auto",
          "auto (packets when the kernel allows it), packets or calls: whether socket I/O is counted "
          "without a hook on each send and receive. packets: TCP bytes from the kernel's tcp_sock "
          "totals, processes from connect, listen, close and a scan of open sockets at each poll, UDP "
          "from the packet hooks (kernel 6.2+, cgroup2); calls: a hook on every socket send and receive "
          "(the tracepoint or fexit backend), which costs more per message on a busy connection."),
      Int("system_probe_config.max_tracked_connections", 65536, 1024, 4194304,
          "Connections the kernel map tracks at once; new ones beyond it are counted and not tracked."),
      Int("system_probe_config.max_connection_state_buffered", 75000, 100, 10000000,
          "Closed connections buffered per GetConnections client between its calls."),
      Bool("system_probe_config.collect_dns_stats", true,
           "DNS latency and response codes per domain (UDP/53).",
           {"DD_SYSTEM_PROBE_NETWORK_COLLECT_DNS_STATS"}),
      Int("system_probe_config.max_dns_stats", 20000, 100, 1000000,
          "Distinct (domain, query type) DNS entries kept per client between its calls."),
      Int("system_probe_config.dns_timeout_in_s", 15, 1, 600,
          "A DNS query unanswered this long is a timeout."),
      Int("system_probe_config.udp_conn_timeout_in_s", 120, 5, 3600,
          "An unconnected UDP flow idle this long is reported closed."),
      Str("system_probe_config.btf_path", "", "Kernel BTF; empty: /sys/kernel/btf/vmlinux."),
      Bool("system_probe_config.process_config.enabled", true,
           "Serve I/O and file-descriptor counts of any PID to the process-agent (GetProcessStats).",
           {"DD_SYSTEM_PROBE_PROCESS_ENABLED"}),
      Int("process_config.intervals.connections", 30, 5, 3600,
          "Seconds between connections check runs (CollectorConnections, needs system-probe)."),
  };
}

}  // namespace

const OptionTable& DefaultOptions() {
  static const OptionTable* table = new OptionTable(AllOptions());
  return *table;
}

}  // namespace dogwatch::config

/* The one map and event layout shared by every network-tracer backend (tp_btf + cgroup hooks,
 * fexit) and by system-probe's user space. Plain C with fixed-width fields and explicit padding so
 * the BPF object (clang -target bpf) and the C++ reader agree byte for byte; user space checks the
 * sizes with static_assert. */
#ifndef DOGWATCH_SYSPROBE_NETWORK_TYPES_H
#define DOGWATCH_SYSPROBE_NETWORK_TYPES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define DW_COMM_LEN 16
/* Raw DNS question bytes kept per query: qname (wire format) + qtype + qclass. 124 bytes hold any
 * name up to ~118 characters; longer names are reported truncated (and counted). */
#define DW_DNS_QUESTION_MAX 124

enum dw_direction {
  DW_DIRECTION_UNKNOWN = 0,
  DW_DIRECTION_INCOMING = 1,
  DW_DIRECTION_OUTGOING = 2,
};

enum dw_conn_flags {
  DW_FLAG_ESTABLISHED = 1, /* the TCP handshake completed */
  DW_FLAG_CLOSED = 2,      /* closed, but the ring buffer was full: user space finalizes it */
};

/* Map key: the socket cookie identifies the socket across every hook; the remote address splits
 * an unconnected UDP socket's traffic per peer (a connected socket has exactly one). */
struct dw_conn_key {
  __u64 cookie;
  __u8 raddr[16]; /* IPv4 in the first 4 bytes, network order */
  __u16 rport;    /* host order */
  __u16 pad0;
  __u32 pad1;
};

struct dw_conn_stats {
  __u8 laddr[16];
  __u8 raddr[16];
  __u16 lport; /* host order */
  __u16 rport;
  __u8 family;   /* 4 or 6 */
  __u8 protocol; /* IPPROTO_TCP or IPPROTO_UDP */
  __u8 direction;
  __u8 flags;
  __u32 netns; /* network namespace inode */
  __u32 pid;   /* the last process that did I/O on it (the connecting one before any I/O) */
  char comm[DW_COMM_LEN];
  __u64 bytes_sent;
  __u64 bytes_received;
  __u64 packets_sent;
  __u64 packets_received;
  __u32 retransmits;
  __u32 rtt_us;
  __u32 rtt_var_us;
  __u32 failure_errno; /* a failed connect: ECONNREFUSED, ETIMEDOUT, ... */
  __u64 first_seen_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
  __u64 last_update_ns;
};

enum dw_event_kind {
  DW_EVENT_CONN_CLOSED = 1,   /* dw_conn_event: a connection's final record */
  DW_EVENT_SOCK_RELEASED = 2, /* dw_conn_event, key only: a UDP socket went away */
  DW_EVENT_DNS = 3,           /* dw_dns_event */
};

struct dw_conn_event {
  __u32 kind;
  __u32 pad0;
  struct dw_conn_key key;
  struct dw_conn_stats stats;
};

struct dw_dns_key {
  __u8 client_addr[16];
  __u8 server_addr[16];
  __u16 client_port; /* host order */
  __u16 query_id;
  __u8 family;
  __u8 pad0[3];
};

struct dw_dns_pending {
  __u64 start_ns;
  __u16 question_len;
  __u16 pad0;
  __u32 netns;
  __u8 question[DW_DNS_QUESTION_MAX];
};

struct dw_dns_event {
  __u32 kind;
  __u16 rcode;
  __u16 question_len;
  __u64 latency_ns;
  __u8 question[DW_DNS_QUESTION_MAX];
  __u32 pad0;
  /* The querying flow, so the answer can be attached to that connection as Datadog does. */
  __u8 server_addr[16];
  __u16 client_port; /* host order */
  __u8 family;
  __u8 pad1[5];
};

/* Per-CPU counters: everything the programs drop or shed. */
enum dw_telemetry {
  DW_TEL_CONN_MAP_FULL = 0, /* a new connection found max_tracked_connections reached */
  DW_TEL_RINGBUF_FULL,      /* a close was left for user space to finalize */
  DW_TEL_DNS_RINGBUF_FULL,  /* a DNS response could not be reported */
  DW_TEL_DNS_PENDING_FULL,  /* a DNS query could not be remembered */
  DW_TEL_DNS_UNMATCHED,     /* a DNS response without its query */
  DW_TEL_DNS_TRUNCATED,     /* a question longer than DW_DNS_QUESTION_MAX */
  DW_TEL_UDP_PEER_UNKNOWN,  /* unconnected UDP I/O whose peer was not seen */
  DW_TEL_CONNS_OPENED,
  DW_TEL_CONNS_CLOSED,
  DW_TEL_SOCK_STORAGE_FAILED, /* a TCP socket's counter storage could not be created */
  DW_TEL_TCP_ADOPTED,         /* an established TCP socket without a record, found by the scan */
  DW_TEL_COUNT,
};

#endif

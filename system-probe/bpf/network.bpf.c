// SPDX-License-Identifier: GPL-2.0
/* dogwatch network tracer: per-connection bytes, packets, retransmits, RTT, state, failures and
 * DNS latency, keyed by socket cookie (+ remote address for unconnected UDP).
 *
 * Two backends share this object and one map/event layout (network_types.h); the loader picks by
 * loading (see tracer/loader.cc):
 *   - "tracepoint": tp_btf inet_sock_set_state and tcp_retransmit_skb, cgroup sock hooks on the
 *     cgroup2 root for binds and socket release, cgroup_skb for DNS. Works without kprobes or
 *     fentry. Socket I/O is counted in one of two ways:
 *       - from packets and socket state (count_from_packets): no hook on send or receive at all.
 *         A TCP socket's bytes are the kernel's own tcp_sock totals, its process is recorded at
 *         connect, listen (inherited by accepted sockets through a cloned socket storage), close,
 *         and by a scan of every process's open sockets before each poll (iter/task_file), which
 *         also adopts connections older than system-probe. UDP bytes, packets and peers come from
 *         the cgroup_skb programs, which see every packet anyway for DNS.
 *       - per call: tp_btf sock_send_length / sock_recv_length (kernel 6.3+; run in the caller's
 *         context, so the PID is right and the byte count is the application's), with cgroup
 *         sendmsg/recvmsg hooks for unconnected UDP peers.
 *   - "fexit": the per-call accounting from fexit on tcp_sendmsg/tcp_recvmsg/udp(v6)_sendmsg/
 *     udp(v6)_recvmsg, for kernels with BPF trampolines but without the sock_*_length tracepoints.
 *     Everything else is shared with the tracepoint backend.
 */
/* vmlinux.h defines the kernel types the libbpf headers use, so it goes first. */
// clang-format off
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "network_types.h"
// clang-format on

char LICENSE[] SEC("license") = "GPL";

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define MSG_PEEK 2
#define DNS_PORT 53
#define NEXTHDR_HOP 0
#define NEXTHDR_UDP 17

/* Set by user space before load. */
const volatile __u32 ephemeral_port_min = 32768;
const volatile __u8 collect_dns = 1;
/* 1: a TCP socket's byte counters live in its own socket storage (tcp_io below), folded into
 * `conns` by the dw_sync_tcp_io iterator at each user-space scan and at close. Every send and
 * receive then costs a pointer off the socket and one atomic add instead of a cookie, a 40-byte
 * key and a hash lookup. 0 (kernels without sk_storage in tracing programs, before 5.11): the
 * counters go straight into `conns`, as for UDP. */
const volatile __u8 tcp_io_in_sk_storage = 1;
/* Unread ring buffer bytes past which a submit wakes the consumer (set to a quarter of the ring). */
const volatile __u64 ring_wakeup_bytes = 1 << 18;
/* 1: no per-call hooks are attached; see the header. Implies tcp_io_in_sk_storage. */
const volatile __u8 count_from_packets = 0;

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536); /* system_probe_config.max_tracked_connections */
  __type(key, struct dw_conn_key);
  __type(value, struct dw_conn_stats);
} conns SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
} events SEC(".maps");

/* The peer of the unconnected-UDP send/receive in flight on a thread: the cgroup sendmsg/recvmsg
 * hooks see the address, the length tracepoint (same syscall, same thread) sees the byte count. */
struct udp_peer {
  __u64 cookie;
  __u8 addr[16];
  __u16 port;
  __u8 family;
  __u8 pad0[5];
};
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, __u64); /* pid_tgid */
  __type(value, struct udp_peer);
} udp_peers SEC(".maps");

/* UDP sockets bound to an explicit port: their flows are incoming (servers). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64); /* cookie */
  __type(value, __u8);
} udp_bound SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct dw_dns_key);
  __type(value, struct dw_dns_pending);
} dns_pending SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, DW_TEL_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} telemetry SEC(".maps");

/* Scratch space for building a new record: too big for the 512-byte BPF stack with the rest. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct dw_conn_stats);
} scratch SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct dw_dns_pending);
} dns_scratch SEC(".maps");

/* Where a socket storage's pid came from, weakest first: a later source replaces an earlier one
 * of the same or lower rank only. */
enum dw_pid_source {
  DW_PID_NONE = 0,
  DW_PID_INHERITED = 1, /* the listening socket's process, cloned into an accepted socket */
  DW_PID_HOLDER = 2,    /* a process found holding the socket by the scan (dw_scan_task_sockets) */
  DW_PID_CALLER = 3,    /* the process that called connect, send, receive or close on it */
};

/* A TCP socket's link to its record, in the socket itself: no lookup on the I/O path. The byte
 * counts are not kept here: the kernel already counts them in tcp_sock (tcp_bytes_written/_read
 * below). The bases are those totals at the moment the record's counters stood at zero. */
struct dw_sock_io {
  struct dw_conn_key key; /* the `conns` record they belong to, once `linked` */
  __u64 base_written;
  __u64 base_read;
  __u32 pid; /* the process using it (see pid_source) */
  __u8 pid_source;
  __u8 linked; /* key and bases are set: 0 on a listener and on a socket not established yet */
  __u16 pad0;
  char comm[DW_COMM_LEN];
};
/* Bounded by the sockets themselves: one value per TCP socket that has a `conns` record (and, when
 * counting from packets, per listening or connecting socket), freed with the socket or at its
 * close. BPF_F_CLONE copies a listener's value, its process, into each socket it accepts. Charged
 * to system-probe's memory cgroup. */
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
  __type(key, int);
  __type(value, struct dw_sock_io);
} tcp_io SEC(".maps");

/* When counting from packets: the process using a UDP socket, for the packets it receives (the
 * receive hook runs in whichever context delivers the packet). Set by binds, sends and the scan. */
struct dw_sock_owner {
  __u32 pid;
  __u32 pad0;
  char comm[DW_COMM_LEN];
};
struct {
  __uint(type, BPF_MAP_TYPE_SK_STORAGE);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, int);
  __type(value, struct dw_sock_owner);
} udp_owner SEC(".maps");

/* Reads kernel memory through a pointer the program type cannot dereference (a cgroup_skb
 * program's bpf_sock): for the network namespace of a UDP flow first seen in a packet. Weak, and
 * called only from programs loaded when counting from packets, so kernels before 6.2 still load
 * the per-call set. */
extern void* bpf_rdonly_cast(const void* obj, __u32 btf_id) __ksym __weak;

/* Submit flags for a ring buffer event. Waking the consumer (irq_work, then epoll) cost more than
 * all the rest of a connection's close; user space drains the ring every 200 ms and before every
 * poll anyway, so a submit wakes it only when the ring is filling up. */
static __always_inline __u64 ring_submit_flags(void) {
  return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > ring_wakeup_bytes ? BPF_RB_FORCE_WAKEUP
                                                                           : BPF_RB_NO_WAKEUP;
}

static __always_inline void count(__u32 which) {
  __u64* value = bpf_map_lookup_elem(&telemetry, &which);
  if (value) *value += 1; /* per-CPU: no atomics needed */
}

/* Every caller of the helpers below holds a BTF-typed socket (tp_btf, fexit): fields are read
 * with plain loads (CO-RE relocated through vmlinux.h's preserve_access_index), which cost a few
 * ns each, instead of bpf_probe_read_kernel calls at ~35 ns each. Fields past struct sock go
 * through bpf_skc_to_tcp_sock, which gives the verifier a typed tcp_sock. */

static __always_inline __u32 netns_of(const struct sock* sk) {
  return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum); /* two pointer hops: only on creation */
}

static __always_inline __u16 protocol_of(const struct sock* sk) {
  /* A plain u16 since 5.6, a bitfield before: the CO-RE bitfield read handles both. */
  return (__u16)BPF_CORE_READ_BITFIELD(sk, sk_protocol);
}

/* IPv4-mapped IPv6 (::ffff:a.b.c.d) from a dual-stack socket is reported as IPv4, as Datadog does. */
static __always_inline int is_v4_mapped(const __u8* a) {
  return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == 0 && a[4] == 0 && a[5] == 0 && a[6] == 0 &&
         a[7] == 0 && a[8] == 0 && a[9] == 0 && a[10] == 0xff && a[11] == 0xff;
}

/* An IPv6 address from its four 32-bit words (network order), as the kernel's structs and the
 * cgroup hooks' contexts hold it: the words are loaded by the caller, one field at a time. */
static __always_inline void store_v6_words(__u8* out, __u32 w0, __u32 w1, __u32 w2, __u32 w3) {
  __builtin_memcpy(out, &w0, 4);
  __builtin_memcpy(out + 4, &w1, 4);
  __builtin_memcpy(out + 8, &w2, 4);
  __builtin_memcpy(out + 12, &w3, 4);
}

static __always_inline void copy_v6(__u8* out, const struct in6_addr* addr) {
  store_v6_words(out, addr->in6_u.u6_addr32[0], addr->in6_u.u6_addr32[1], addr->in6_u.u6_addr32[2],
                 addr->in6_u.u6_addr32[3]);
}

static __always_inline void unmap_v4(__u8* addr) {
  __builtin_memcpy(addr, addr + 12, 4);
  __builtin_memset(addr + 4, 0, 12);
}

/* The family of an IPv6-layout address: 4 (unmapped in place) for ::ffff:a.b.c.d, else 6. */
static __always_inline __u8 unmap_if_v4(__u8* addr) {
  if (!is_v4_mapped(addr)) return 6;
  unmap_v4(addr);
  return 4;
}

/* The map key of a connected socket: cookie + remote address and port. Returns the family (4 or
 * 6, after unmapping), 0 when the socket is not IPv4/IPv6. Cheap: used on every send and receive. */
static __always_inline __u8 connected_key(const struct sock* sk, __u64 cookie, struct dw_conn_key* key) {
  __builtin_memset(key, 0, sizeof(*key));
  key->cookie = cookie;
  key->rport = bpf_ntohs(sk->__sk_common.skc_dport);
  __u16 family = sk->__sk_common.skc_family;
  if (family == AF_INET) {
    __u32 r = sk->__sk_common.skc_daddr;
    __builtin_memcpy(key->raddr, &r, 4);
    return 4;
  }
  if (family == AF_INET6) {
    copy_v6(key->raddr, &sk->__sk_common.skc_v6_daddr);
    return unmap_if_v4(key->raddr);
  }
  return 0;
}

static __always_inline __u16 local_port(const struct sock* sk) {
  __u16 port = sk->__sk_common.skc_num;
  if (port != 0) return port;
  /* skc_num is already 0 once a TCP socket reaches CLOSE; inet_sport stays. */
  struct tcp_sock* tp = bpf_skc_to_tcp_sock((void*)sk);
  return tp ? bpf_ntohs(tp->inet_conn.icsk_inet.inet_sport) : 0;
}

/* The socket's local address in the record's layout: IPv4 in the first 4 bytes, a dual-stack
 * socket talking IPv4 (`family` 4) unmapped. */
static __always_inline void read_local_addr(const struct sock* sk, __u8 family, __u8* laddr) {
  __builtin_memset(laddr, 0, 16);
  if (sk->__sk_common.skc_family == AF_INET) {
    __u32 l = sk->__sk_common.skc_rcv_saddr;
    __builtin_memcpy(laddr, &l, 4);
    return;
  }
  copy_v6(laddr, &sk->__sk_common.skc_v6_rcv_saddr);
  if (family == 4) {
    if (is_v4_mapped(laddr)) {
      unmap_v4(laddr);
    } else {
      __builtin_memset(laddr, 0, 16); /* unbound dual-stack socket talking IPv4 */
    }
  }
}

/* Fills a new record's addresses, ports, family and protocol. Returns 0 for TCP/UDP over IP. */
static __always_inline int read_tuple(const struct sock* sk, const struct dw_conn_key* key, __u8 family,
                                      struct dw_conn_stats* s) {
  __u16 protocol = protocol_of(sk);
  if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) return -1;
  s->protocol = (__u8)protocol;
  __builtin_memcpy(s->raddr, key->raddr, 16);
  s->family = family;
  read_local_addr(sk, family, s->laddr);
  s->lport = local_port(sk);
  s->rport = key->rport;
  return 0;
}

static __always_inline void copy_tcp_health(const struct tcp_sock* tp, struct dw_conn_stats* s) {
  s->rtt_us = tp->srtt_us >> 3;     /* srtt is stored << 3 */
  s->rtt_var_us = tp->mdev_us >> 2; /* mdev is stored << 2 */
  s->retransmits = tp->total_retrans;
  s->packets_sent = tp->segs_out;
  s->packets_received = tp->segs_in;
}

static __always_inline void read_tcp_health(const struct sock* sk, struct dw_conn_stats* s) {
  struct tcp_sock* tp = bpf_skc_to_tcp_sock((void*)sk);
  if (tp) copy_tcp_health(tp, s);
}

/* Application bytes a TCP socket has had written into it (send, sendfile, splice) since it was
 * created: acknowledged bytes plus what is still queued. The FIN takes one sequence number once
 * queued (FIN_WAIT1 onwards, or LAST_ACK), which is not an application byte. The fields are read
 * in the order that makes a concurrent ACK or send give a total that is too low, never too high:
 * acked first (an ACK moves bytes from "queued" to "acked"), then snd_una, then write_seq. The
 * fold keeps the larger of this and what it had, so a low read is corrected by the next. */
static __always_inline __u64 tcp_bytes_written(const struct tcp_sock* tp, int state) {
  __u64 acked = tp->bytes_acked;
  asm volatile("" ::: "memory");
  __u32 unacked_from = tp->snd_una;
  asm volatile("" ::: "memory");
  __u32 queued_to = tp->write_seq;
  __u64 total = acked + (__u32)(queued_to - unacked_from);
  int fin_queued = state == TCP_FIN_WAIT1 || state == TCP_FIN_WAIT2 || state == TCP_CLOSING ||
                   state == TCP_LAST_ACK || state == TCP_TIME_WAIT;
  return fin_queued && total > 0 ? total - 1 : total;
}

/* Application bytes read from a TCP socket (recv, splice) since it was created: bytes received in
 * order minus those still waiting in the receive queue. A FIN received counts one in
 * bytes_received and rcv_nxt; reading the end of stream moves copied_seq past it, after which it
 * would count as a byte read. Read order for a low-biased total under concurrency: copied_seq,
 * then bytes_received, then rcv_nxt (they advance together). */
static __always_inline __u64 tcp_bytes_read(const struct tcp_sock* tp, int state) {
  __u32 copied_to = tp->copied_seq;
  asm volatile("" ::: "memory");
  __u64 received = tp->bytes_received;
  asm volatile("" ::: "memory");
  __u32 received_to = tp->rcv_nxt;
  __u32 unread = received_to - copied_to;
  __u64 total = received > unread ? received - unread : 0;
  int fin_received =
      state == TCP_CLOSE_WAIT || state == TCP_LAST_ACK || state == TCP_CLOSING || state == TCP_TIME_WAIT;
  return fin_received && unread == 0 && total > 0 ? total - 1 : total;
}

/* The process doing the I/O, into a record's or a socket storage's pid and comm. */
static __always_inline void set_process(__u32* pid, char* comm) {
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (*pid == tgid) return; /* same process as last time: its comm is already there */
  *pid = tgid;
  bpf_get_current_comm(comm, DW_COMM_LEN);
}

/* The process using a UDP socket, from a hook running in its context (bind, send). */
static __always_inline void note_udp_owner(struct bpf_sock* sk) {
  struct dw_sock_owner init = {};
  struct dw_sock_owner* owner = bpf_sk_storage_get(&udp_owner, sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
  if (owner) set_process(&owner->pid, owner->comm);
}

/* Direction of a flow first seen through I/O (no handshake observed: UDP, or TCP older than us). */
static __always_inline __u8 guess_direction(const struct dw_conn_stats* s, __u64 cookie) {
  if (s->protocol == IPPROTO_UDP) {
    return bpf_map_lookup_elem(&udp_bound, &cookie) ? DW_DIRECTION_INCOMING : DW_DIRECTION_OUTGOING;
  }
  /* A local port in the ephemeral range talking to a non-ephemeral one is the client side. */
  if (s->lport >= ephemeral_port_min && s->rport < ephemeral_port_min) return DW_DIRECTION_OUTGOING;
  if (s->rport >= ephemeral_port_min && s->lport < ephemeral_port_min) return DW_DIRECTION_INCOMING;
  return DW_DIRECTION_UNKNOWN;
}

/* Zeroes a new record's counters, process and times. */
static __always_inline void reset_counters(struct dw_conn_stats* fresh) {
  fresh->flags = 0;
  fresh->pid = 0;
  __builtin_memset(fresh->comm, 0, sizeof(fresh->comm));
  fresh->bytes_sent = fresh->bytes_received = 0;
  fresh->packets_sent = fresh->packets_received = 0;
  fresh->retransmits = fresh->rtt_us = fresh->rtt_var_us = 0;
  fresh->failure_errno = 0;
  fresh->first_seen_ns = fresh->last_update_ns = bpf_ktime_get_ns();
}

/* Inserts a record built in `scratch`; the map's copy, or NULL when the map is full (counted). */
static __always_inline struct dw_conn_stats* insert(const struct dw_conn_key* key,
                                                    const struct dw_conn_stats* fresh) {
  long err = bpf_map_update_elem(&conns, key, fresh, BPF_NOEXIST);
  if (err != 0 && err != -17 /* EEXIST: another CPU won the race */) {
    count(DW_TEL_CONN_MAP_FULL);
    return 0;
  }
  if (err == 0) count(DW_TEL_CONNS_OPENED);
  return bpf_map_lookup_elem(&conns, key);
}

/* Creates the record for `key` (not in the map yet) from the socket. NULL when the socket is not
 * TCP/UDP or the map is full (counted). direction 0xff: guess it. */
static __always_inline struct dw_conn_stats* create(const struct sock* sk, struct dw_conn_key* key,
                                                    __u8 family, __u8 direction, int set_pid) {
  __u32 zero = 0;
  struct dw_conn_stats* fresh = bpf_map_lookup_elem(&scratch, &zero);
  if (!fresh) return 0;
  if (read_tuple(sk, key, family, fresh) != 0) return 0;
  reset_counters(fresh);
  fresh->direction = direction == 0xff ? guess_direction(fresh, key->cookie) : direction;
  fresh->netns = netns_of(sk);
  if (set_pid) set_process(&fresh->pid, fresh->comm);
  return insert(key, fresh);
}

static __always_inline struct dw_conn_stats* upsert(const struct sock* sk, __u64 cookie,
                                                    struct dw_conn_key* key, __u8 direction, int set_pid) {
  __u8 family = connected_key(sk, cookie, key);
  if (family == 0) return 0;
  struct dw_conn_stats* s = bpf_map_lookup_elem(&conns, key);
  return s ? s : create(sk, key, family, direction, set_pid);
}

/* Links a TCP socket to its record: its socket storage (created here if needed) gets the record's
 * key and the bases that make the record's counters continue from what they hold, plus
 * `written_now`/`read_now` bytes already in tcp_sock's totals but not in the record. NULL when the
 * storage cannot be created (counted). */
static __always_inline struct dw_sock_io* link_tcp_io(const struct sock* sk, const struct dw_conn_key* key,
                                                      const struct dw_conn_stats* s, __u64 written_now,
                                                      __u64 read_now) {
  struct tcp_sock* tp = bpf_skc_to_tcp_sock((void*)sk);
  if (!tp) return 0;
  struct dw_sock_io init = {};
  struct dw_sock_io* io = bpf_sk_storage_get(&tcp_io, (void*)sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
  if (!io) {
    count(DW_TEL_SOCK_STORAGE_FAILED);
    return 0;
  }
  if (io->linked) return io;
  int state = sk->__sk_common.skc_state;
  __u64 written_before = s->bytes_sent + written_now;
  __u64 read_before = s->bytes_received + read_now;
  __u64 written = tcp_bytes_written(tp, state), read = tcp_bytes_read(tp, state);
  __builtin_memcpy(&io->key, key, sizeof(*key));
  io->base_written = written > written_before ? written - written_before : 0;
  io->base_read = read > read_before ? read - read_before : 0;
  /* The iterator folds linked storage only: key and bases are in place before the flag. Two CPUs
   * linking the same socket at once write the same values. */
  asm volatile("" ::: "memory");
  io->linked = 1;
  return io;
}

/* The first send or receive on a TCP socket (`bytes` of it, already in tcp_sock's totals), when
 * counting per call: its `conns` record (created here if no handshake was seen) and its link. */
static __always_inline struct dw_sock_io* start_tcp_io(const struct sock* sk, int bytes, int sending) {
  struct dw_conn_key key;
  struct dw_conn_stats* s = upsert(sk, bpf_get_socket_cookie((void*)sk), &key, 0xff, 1);
  if (!s) return 0;
  return link_tcp_io(sk, &key, s, sending ? bytes : 0, sending ? 0 : bytes);
}

/* TCP I/O with socket storage, the hot path of a busy connection: only the process is noted. */
static __always_inline void account_tcp_io(const struct sock* sk, int bytes, int sending) {
  struct dw_sock_io* io = bpf_sk_storage_get(&tcp_io, (void*)sk, 0, 0);
  if (!io || !io->linked) io = start_tcp_io(sk, bytes, sending);
  if (!io) return;
  set_process(&io->pid, io->comm);
}

/* Folds a TCP socket's totals and health into its record: at each user-space scan (dw_sync_tcp_io)
 * and at close (`state`: the state the socket is leaving). Totals are computed, not added, and
 * only ever raised, so folding twice is harmless and a read racing an ACK is corrected later. */
static __always_inline void fold_tcp_io(const struct dw_sock_io* io, const struct sock* sk, int state,
                                        struct dw_conn_stats* s) {
  struct tcp_sock* tp = bpf_skc_to_tcp_sock((void*)sk);
  if (!tp) return;
  copy_tcp_health(tp, s);
  __u64 written = tcp_bytes_written(tp, state), read = tcp_bytes_read(tp, state);
  __u64 sent = written > io->base_written ? written - io->base_written : 0;
  __u64 received = read > io->base_read ? read - io->base_read : 0;
  if (sent > s->bytes_sent || received > s->bytes_received) {
    if (sent > s->bytes_sent) s->bytes_sent = sent;
    if (received > s->bytes_received) s->bytes_received = received;
    s->last_update_ns = bpf_ktime_get_ns();
  }
  __u32 pid = io->pid;
  if (pid != 0 && s->pid != pid) {
    s->pid = pid;
    __builtin_memcpy(s->comm, io->comm, sizeof(s->comm));
  }
}

/* One completed send or receive of `bytes` on `sk`, in the context of the process doing it. */
static __always_inline void account_io(const struct sock* sk, int bytes, int sending) {
  if (bytes <= 0 || !sk) return;
  __u16 protocol = protocol_of(sk);
  if (protocol == IPPROTO_TCP && tcp_io_in_sk_storage) {
    account_tcp_io(sk, bytes, sending);
    return;
  }
  if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) return;
  __u64 cookie = bpf_get_socket_cookie((void*)sk);
  struct dw_conn_key key;
  __u8 family = connected_key(sk, cookie, &key);
  if (family == 0) return;
  if (protocol == IPPROTO_UDP && key.rport == 0) {
    /* Unconnected UDP: the peer comes from the cgroup sendmsg/recvmsg hook of this syscall. */
    __u64 id = bpf_get_current_pid_tgid();
    struct udp_peer* peer = bpf_map_lookup_elem(&udp_peers, &id);
    if (peer && peer->cookie == cookie) {
      __builtin_memcpy(key.raddr, peer->addr, 16);
      key.rport = peer->port;
      family = peer->family;
      bpf_map_delete_elem(&udp_peers, &id);
    } else {
      count(DW_TEL_UDP_PEER_UNKNOWN);
    }
  }
  struct dw_conn_stats* s = bpf_map_lookup_elem(&conns, &key);
  if (!s) s = create(sk, &key, family, 0xff, 1);
  if (!s) return;
  if (sending) {
    __sync_fetch_and_add(&s->bytes_sent, bytes);
    if (protocol == IPPROTO_UDP) __sync_fetch_and_add(&s->packets_sent, 1);
  } else {
    __sync_fetch_and_add(&s->bytes_received, bytes);
    if (protocol == IPPROTO_UDP) __sync_fetch_and_add(&s->packets_received, 1);
  }
  if (protocol == IPPROTO_TCP) read_tcp_health(sk, s);
  if (s->lport == 0) s->lport = local_port(sk); /* connect() had not picked it yet at SYN_SENT */
  set_process(&s->pid, s->comm);
  s->last_update_ns = bpf_ktime_get_ns();
}

/* ---- Backend "tracepoint": the sock_*_length tracepoints (kernel 6.3+). ---- */

SEC("tp_btf/sock_send_length")
int BPF_PROG(dw_sock_send_length, struct sock* sk, int ret, int flags) {
  account_io(sk, ret, 1);
  return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(dw_sock_recv_length, struct sock* sk, int ret, int flags) {
  if (flags & MSG_PEEK) return 0; /* the same bytes are read again later */
  account_io(sk, ret, 0);
  return 0;
}

/* ---- Backend "fexit": the same accounting on kernels with trampolines but no such tracepoints. */

SEC("fexit/tcp_sendmsg")
int BPF_PROG(dw_fexit_tcp_sendmsg, struct sock* sk, struct msghdr* msg, size_t size, int ret) {
  account_io(sk, ret, 1);
  return 0;
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(dw_fexit_tcp_recvmsg, struct sock* sk, struct msghdr* msg, size_t len, int flags, int* addr_len,
             int ret) {
  if (flags & MSG_PEEK) return 0;
  account_io(sk, ret, 0);
  return 0;
}

SEC("fexit/udp_sendmsg")
int BPF_PROG(dw_fexit_udp_sendmsg, struct sock* sk, struct msghdr* msg, size_t len, int ret) {
  account_io(sk, ret, 1);
  return 0;
}

SEC("fexit/udp_recvmsg")
int BPF_PROG(dw_fexit_udp_recvmsg, struct sock* sk, struct msghdr* msg, size_t len, int flags, int* addr_len,
             int ret) {
  if (flags & MSG_PEEK) return 0;
  account_io(sk, ret, 0);
  return 0;
}

SEC("fexit/udpv6_sendmsg")
int BPF_PROG(dw_fexit_udpv6_sendmsg, struct sock* sk, struct msghdr* msg, size_t len, int ret) {
  account_io(sk, ret, 1);
  return 0;
}

SEC("fexit/udpv6_recvmsg")
int BPF_PROG(dw_fexit_udpv6_recvmsg, struct sock* sk, struct msghdr* msg, size_t len, int flags,
             int* addr_len, int ret) {
  if (flags & MSG_PEEK) return 0;
  account_io(sk, ret, 0);
  return 0;
}

/* ---- Shared by both backends. ---- */

static __always_inline void emit_closed(struct dw_conn_key* key, struct dw_conn_stats* s) {
  struct dw_conn_event* event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
  if (!event) {
    /* Keep the record: user space finalizes entries flagged closed on its next scan. */
    s->flags |= DW_FLAG_CLOSED;
    count(DW_TEL_RINGBUF_FULL);
    return;
  }
  event->kind = DW_EVENT_CONN_CLOSED;
  event->pad0 = 0;
  __builtin_memcpy(&event->key, key, sizeof(*key));
  __builtin_memcpy(&event->stats, s, sizeof(*s));
  bpf_ringbuf_submit(event, ring_submit_flags());
  bpf_map_delete_elem(&conns, key);
  count(DW_TEL_CONNS_CLOSED);
}

/* The calling process into a TCP socket's storage, created if needed (`source` ranks it). */
static __always_inline void note_tcp_caller(const struct sock* sk, __u8 source) {
  struct dw_sock_io init = {};
  struct dw_sock_io* io = bpf_sk_storage_get(&tcp_io, (void*)sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
  if (!io) {
    count(DW_TEL_SOCK_STORAGE_FAILED);
    return;
  }
  set_process(&io->pid, io->comm);
  io->pid_source = source;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(dw_inet_sock_set_state, const struct sock* sk, const int oldstate, const int newstate) {
  if (protocol_of(sk) != IPPROTO_TCP) return 0;
  __u64 cookie = bpf_get_socket_cookie((void*)sk);
  struct dw_conn_key key;
  if (newstate == TCP_SYN_SENT) {
    /* connect(): runs in the connecting process. The local port is not chosen yet. */
    upsert(sk, cookie, &key, DW_DIRECTION_OUTGOING, 1);
    if (count_from_packets) note_tcp_caller(sk, DW_PID_CALLER);
    return 0;
  }
  if (newstate == TCP_LISTEN) {
    /* listen(): the listener's process, which BPF_F_CLONE hands to every accepted socket. */
    if (count_from_packets) note_tcp_caller(sk, DW_PID_INHERITED);
    return 0;
  }
  if (newstate == TCP_ESTABLISHED) {
    /* SYN_RECV -> ESTABLISHED runs in softirq: the current PID is the peer's, so none is set here;
     * the process comes from the listener's storage or, per call, from the first read or write. */
    __u8 direction = oldstate == TCP_SYN_RECV ? DW_DIRECTION_INCOMING : DW_DIRECTION_OUTGOING;
    struct dw_conn_stats* s = upsert(sk, cookie, &key, direction, 0);
    if (!s) return 0;
    s->flags |= DW_FLAG_ESTABLISHED;
    s->direction = direction;
    if (s->lport == 0) s->lport = local_port(sk);
    s->last_update_ns = bpf_ktime_get_ns();
    if (count_from_packets) {
      /* Every byte from here on is the connection's: the bases are the totals now. */
      struct dw_sock_io* io = link_tcp_io(sk, &key, s, 0, 0);
      if (io && io->pid != 0 && io->pid != s->pid) {
        s->pid = io->pid;
        __builtin_memcpy(s->comm, io->comm, sizeof(s->comm));
      }
    }
    return 0;
  }
  if (count_from_packets && ((oldstate == TCP_ESTABLISHED && newstate == TCP_FIN_WAIT1) ||
                             (oldstate == TCP_CLOSE_WAIT && newstate == TCP_LAST_ACK))) {
    /* close() or shutdown() queues the FIN: process context, the process done with the socket. */
    struct dw_sock_io* io = bpf_sk_storage_get(&tcp_io, (void*)sk, 0, 0);
    if (io) {
      set_process(&io->pid, io->comm);
      io->pid_source = DW_PID_CALLER;
    }
    return 0;
  }
  if (newstate == TCP_CLOSE) {
    __u8 family = connected_key(sk, cookie, &key);
    if (family == 0) return 0;
    struct dw_sock_io* io = tcp_io_in_sk_storage ? bpf_sk_storage_get(&tcp_io, (void*)sk, 0, 0) : 0;
    struct dw_conn_stats* s = bpf_map_lookup_elem(&conns, &key);
    if (!s) {
      if (io) bpf_sk_storage_delete(&tcp_io, (void*)sk);
      return 0; /* never saw traffic or a handshake: nothing to report */
    }
    if (s->lport == 0) s->lport = local_port(sk);
    /* The local address is final now, for either family. */
    read_local_addr(sk, s->family, s->laddr);
    if (io && io->linked) {
      fold_tcp_io(io, sk, oldstate, s);
    } else {
      read_tcp_health(sk, s);
    }
    /* A socket connected again after this close starts a new record from zero. */
    if (io) bpf_sk_storage_delete(&tcp_io, (void*)sk);
    if (oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV) {
      int err = sk->sk_err;
      s->failure_errno = err > 0 ? err : 110 /* ETIMEDOUT: gave up without an error */;
    }
    s->last_update_ns = bpf_ktime_get_ns();
    emit_closed(&key, s);
  }
  return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(dw_tcp_retransmit_skb, const struct sock* sk, const struct sk_buff* skb) {
  __u64 cookie = bpf_get_socket_cookie((void*)sk);
  struct dw_conn_key key;
  if (connected_key(sk, cookie, &key) == 0) return 0;
  struct dw_conn_stats* s = bpf_map_lookup_elem(&conns, &key);
  struct tcp_sock* tp = bpf_skc_to_tcp_sock((void*)sk);
  if (s && tp) {
    /* total_retrans is bumped after this tracepoint: count this one ourselves. */
    __u32 total = tp->total_retrans + 1;
    if (total > s->retransmits) s->retransmits = total;
  }
  return 0;
}

/* ---- The scan's iterator: every TCP socket's storage folded into its record. ---- */

/* Run by user space (a read of the iterator's fd) right before it reads `conns`, so live TCP
 * connections are exact at each scan although the I/O path never touches the map. */
SEC("iter/bpf_sk_storage_map")
int dw_sync_tcp_io(struct bpf_iter__bpf_sk_storage_map* ctx) {
  struct sock* sk = ctx->sk;
  struct dw_sock_io* io = ctx->value;
  if (!sk || !io || !io->linked) return 0;
  struct dw_conn_key key;
  __builtin_memcpy(&key, &io->key, sizeof(key));
  struct dw_conn_stats* s = bpf_map_lookup_elem(&conns, &key);
  if (!s) return 0;
  fold_tcp_io(io, sk, sk->__sk_common.skc_state, s);
  if (s->lport == 0) s->lport = local_port(sk); /* connect() had not picked it yet at SYN_SENT */
  return 0;
}

/* ---- The scan of every process's sockets, when counting from packets. ---- */

/* A process holding the socket, into a storage's pid and comm. */
static __always_inline void set_holder(__u32* pid, char* comm, struct task_struct* task) {
  __u32 tgid = task->tgid;
  if (*pid == tgid) return;
  *pid = tgid;
  bpf_probe_read_kernel(comm, DW_COMM_LEN, task->comm);
}

/* A TCP socket: a listener's process noted for the sockets it will accept; an established socket
 * adopted if it has no record (older than system-probe, or its record could not be made then), and
 * its holder noted unless a caller is known. */
static __always_inline void scan_tcp_socket(struct sock* sk, struct task_struct* task) {
  int state = sk->__sk_common.skc_state;
  if (state == TCP_LISTEN) {
    /* A listener older than system-probe (or than its last restart) hands its process to the
     * sockets it accepts from now on, as one seen calling listen() does. */
    struct dw_sock_io init = {};
    struct dw_sock_io* listener = bpf_sk_storage_get(&tcp_io, sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
    if (listener && listener->pid == 0) {
      set_holder(&listener->pid, listener->comm, task);
      listener->pid_source = DW_PID_INHERITED;
    }
    return;
  }
  struct dw_sock_io* io = bpf_sk_storage_get(&tcp_io, sk, 0, 0);
  if (!io || !io->linked) {
    if (state != TCP_ESTABLISHED && state != TCP_CLOSE_WAIT) return;
    struct dw_conn_key key;
    /* No handshake seen: the direction is guessed from the ports, and counting starts now. */
    struct dw_conn_stats* s = upsert(sk, bpf_get_socket_cookie(sk), &key, 0xff, 0);
    if (!s) return;
    if (state == TCP_ESTABLISHED) s->flags |= DW_FLAG_ESTABLISHED;
    io = link_tcp_io(sk, &key, s, 0, 0);
    if (!io) return;
    count(DW_TEL_TCP_ADOPTED);
  }
  if (io->pid_source > DW_PID_HOLDER) return;
  set_holder(&io->pid, io->comm, task);
  io->pid_source = DW_PID_HOLDER;
}

/* A UDP socket: its owner for the packets it receives, until one of its own sends says better. */
static __always_inline void scan_udp_socket(struct sock* sk, struct task_struct* task) {
  struct dw_sock_owner init = {};
  struct dw_sock_owner* owner = bpf_sk_storage_get(&udp_owner, sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
  if (owner && owner->pid == 0) set_holder(&owner->pid, owner->comm, task);
}

/* Run by user space right before dw_sync_tcp_io at each poll: every open file of every process
 * (threads sharing a file table are visited once). */
SEC("iter/task_file")
int dw_scan_task_sockets(struct bpf_iter__task_file* ctx) {
  struct file* file = ctx->file;
  struct task_struct* task = ctx->task;
  if (!file || !task) return 0;
  struct socket* sock = bpf_sock_from_file(file);
  if (!sock) return 0;
  struct sock* sk = sock->sk;
  if (!sk) return 0;
  __u16 family = sk->__sk_common.skc_family;
  if (family != AF_INET && family != AF_INET6) return 0;
  __u16 protocol = protocol_of(sk);
  if (protocol == IPPROTO_TCP) {
    scan_tcp_socket(sk, task);
  } else if (protocol == IPPROTO_UDP) {
    scan_udp_socket(sk, task);
  }
  return 0;
}

/* ---- cgroup sock hooks on the cgroup2 root: UDP peers, bound servers, released sockets. ---- */

static __always_inline void remember_udp_peer(struct bpf_sock_addr* ctx, int v6) {
  if (ctx->protocol != IPPROTO_UDP) return;
  struct udp_peer peer = {};
  peer.cookie = bpf_get_socket_cookie(ctx);
  if (v6) {
    store_v6_words(peer.addr, ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]);
    peer.family = unmap_if_v4(peer.addr);
  } else {
    __u32 a = ctx->user_ip4;
    __builtin_memcpy(peer.addr, &a, 4);
    peer.family = 4;
  }
  peer.port = bpf_ntohs((__u16)ctx->user_port);
  __u64 id = bpf_get_current_pid_tgid();
  bpf_map_update_elem(&udp_peers, &id, &peer, BPF_ANY);
}

SEC("cgroup/sendmsg4")
int dw_sendmsg4(struct bpf_sock_addr* ctx) {
  remember_udp_peer(ctx, 0);
  return 1;
}

SEC("cgroup/sendmsg6")
int dw_sendmsg6(struct bpf_sock_addr* ctx) {
  remember_udp_peer(ctx, 1);
  return 1;
}

SEC("cgroup/recvmsg4")
int dw_recvmsg4(struct bpf_sock_addr* ctx) {
  remember_udp_peer(ctx, 0);
  return 1;
}

SEC("cgroup/recvmsg6")
int dw_recvmsg6(struct bpf_sock_addr* ctx) {
  remember_udp_peer(ctx, 1);
  return 1;
}

/* A UDP bind: bound to an explicit port makes the socket a server (its flows are incoming); when
 * counting from packets the binding process is also noted as the socket's owner, so the first
 * packet a server receives names its process. */
static __always_inline void on_bind(struct bpf_sock_addr* ctx, int note_owner) {
  /* Each context field read once, into a register: clang otherwise may offset the context pointer
   * itself, which the verifier refuses. */
  __u32 protocol = ctx->protocol;
  if (protocol != IPPROTO_UDP) return;
  __u32 port = ctx->user_port;
  if (port != 0) {
    __u64 cookie = bpf_get_socket_cookie(ctx);
    __u8 one = 1;
    bpf_map_update_elem(&udp_bound, &cookie, &one, BPF_ANY);
  }
  if (!note_owner) return;
  struct bpf_sock* sk = ctx->sk;
  if (sk) note_udp_owner(sk);
}

SEC("cgroup/bind4")
int dw_bind4(struct bpf_sock_addr* ctx) {
  on_bind(ctx, 0);
  return 1;
}

SEC("cgroup/bind6")
int dw_bind6(struct bpf_sock_addr* ctx) {
  on_bind(ctx, 0);
  return 1;
}

SEC("cgroup/bind4")
int dw_bind4_owner(struct bpf_sock_addr* ctx) {
  on_bind(ctx, 1);
  return 1;
}

SEC("cgroup/bind6")
int dw_bind6_owner(struct bpf_sock_addr* ctx) {
  on_bind(ctx, 1);
  return 1;
}

SEC("cgroup/sock_release")
int dw_sock_release(struct bpf_sock* ctx) {
  if (ctx->protocol != IPPROTO_UDP) return 1;
  __u64 cookie = bpf_get_socket_cookie(ctx);
  bpf_map_delete_elem(&udp_bound, &cookie);
  /* The connected flow (if any) is final now. Unconnected per-peer flows are finalized by user
   * space, which gets the cookie below. */
  struct dw_conn_key key = {};
  key.cookie = cookie;
  key.rport = bpf_ntohs(ctx->dst_port);
  if (ctx->family == AF_INET) {
    __u32 a = ctx->dst_ip4;
    __builtin_memcpy(key.raddr, &a, 4);
  } else {
    store_v6_words(key.raddr, ctx->dst_ip6[0], ctx->dst_ip6[1], ctx->dst_ip6[2], ctx->dst_ip6[3]);
    unmap_if_v4(key.raddr);
  }
  if (key.rport != 0) {
    struct dw_conn_stats* s = bpf_map_lookup_elem(&conns, &key);
    if (s) {
      emit_closed(&key, s);
      return 1;
    }
  }
  struct dw_conn_event* event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
  if (!event) {
    count(DW_TEL_RINGBUF_FULL); /* user space still expires idle UDP flows */
    return 1;
  }
  __builtin_memset(event, 0, sizeof(*event));
  event->kind = DW_EVENT_SOCK_RELEASED;
  event->key.cookie = cookie;
  bpf_ringbuf_submit(event, ring_submit_flags());
  return 1;
}

/* ---- DNS over UDP/53: queries leaving a socket, responses arriving at one (any netns). ---- */

struct l4_info {
  __u8 src[16];
  __u8 dst[16];
  __u32 udp_offset;
  __u8 family;
};

/* `l3_protocol`: skb->protocol, read once by the caller (clang otherwise may keep a pointer into
 * the context between reads, which the verifier refuses). */
static __always_inline int parse_udp(struct __sk_buff* skb, __u32 l3_protocol, struct l4_info* info) {
  if (l3_protocol == bpf_htons(ETH_P_IP)) {
    struct iphdr ip;
    if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0) return -1;
    if (ip.protocol != IPPROTO_UDP) return -1;
    if (ip.frag_off & bpf_htons(0x3fff)) return -1; /* fragments carry no UDP header */
    __builtin_memset(info->src, 0, 16);
    __builtin_memset(info->dst, 0, 16);
    __builtin_memcpy(info->src, &ip.saddr, 4);
    __builtin_memcpy(info->dst, &ip.daddr, 4);
    info->udp_offset = ip.ihl * 4;
    info->family = 4;
    return 0;
  }
  if (l3_protocol == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr ip6;
    if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0) return -1;
    __u32 offset = sizeof(ip6);
    __u8 next = ip6.nexthdr;
    if (next == NEXTHDR_HOP) {
      /* Loopback IPv6 often carries a Hop-by-Hop option: skip it. */
      __u8 ext[2];
      if (bpf_skb_load_bytes(skb, offset, ext, 2) < 0) return -1;
      next = ext[0];
      offset += (ext[1] + 1) * 8;
    }
    if (next != NEXTHDR_UDP) return -1;
    __builtin_memcpy(info->src, &ip6.saddr, 16);
    __builtin_memcpy(info->dst, &ip6.daddr, 16);
    info->udp_offset = offset;
    info->family = 6;
    return 0;
  }
  return -1;
}

struct dns_header {
  __be16 id;
  __be16 flags;
  __be16 qdcount;
  __be16 ancount;
  __be16 nscount;
  __be16 arcount;
};

/* ---- UDP flows from packets, when counting from packets. ---- */

/* The network namespace of a packet's socket. A cgroup_skb program's bpf_sock exposes no namespace
 * and no BTF type, so the socket is read through a read-only cast (faulting loads read as zero). */
static __always_inline __u32 packet_sock_netns(struct bpf_sock* sk) {
  struct sock* full = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct sock));
  if (!full) return 0;
  return full->__sk_common.skc_net.net->ns.inum;
}

/* The record of a UDP flow first seen in a packet, built from the packet's headers: a dual-stack
 * socket's IPv4 traffic is IPv4 on the wire, so no unmapping is needed. */
static __always_inline struct dw_conn_stats* create_from_packet(struct bpf_sock* sk,
                                                                const struct dw_conn_key* key,
                                                                const struct l4_info* info,
                                                                __u16 local_port_host, int egress) {
  __u32 zero = 0;
  struct dw_conn_stats* fresh = bpf_map_lookup_elem(&scratch, &zero);
  if (!fresh) return 0;
  reset_counters(fresh);
  __builtin_memcpy(fresh->raddr, key->raddr, 16);
  if (egress) {
    __builtin_memcpy(fresh->laddr, info->src, 16);
  } else {
    __builtin_memcpy(fresh->laddr, info->dst, 16);
  }
  fresh->rport = key->rport;
  fresh->lport = local_port_host;
  fresh->family = info->family;
  fresh->protocol = IPPROTO_UDP;
  fresh->direction = guess_direction(fresh, key->cookie);
  fresh->netns = packet_sock_netns(sk);
  return insert(key, fresh);
}

/* One UDP packet (a GSO packet counts its segments) into the flow of (socket, peer). Egress runs in
 * the sending process; ingress runs wherever the packet is delivered, so a flow first seen
 * receiving takes the socket's owner. */
static __always_inline void count_udp_packet(struct __sk_buff* skb, struct bpf_sock* sk,
                                             const struct l4_info* info, const struct udphdr* udp,
                                             int egress) {
  struct dw_conn_key key = {};
  key.cookie = bpf_get_socket_cookie(skb);
  if (egress) {
    __builtin_memcpy(key.raddr, info->dst, 16);
    key.rport = bpf_ntohs(udp->dest);
  } else {
    __builtin_memcpy(key.raddr, info->src, 16);
    key.rport = bpf_ntohs(udp->source);
  }
  struct dw_conn_stats* s = bpf_map_lookup_elem(&conns, &key);
  if (!s) s = create_from_packet(sk, &key, info, bpf_ntohs(egress ? udp->source : udp->dest), egress);
  if (!s) return;
  __u32 headers = info->udp_offset + sizeof(struct udphdr);
  __u64 bytes = skb->len > headers ? skb->len - headers : 0;
  __u32 segments = skb->gso_segs;
  if (segments == 0) segments = 1;
  if (egress) {
    __sync_fetch_and_add(&s->bytes_sent, bytes);
    __sync_fetch_and_add(&s->packets_sent, segments);
    set_process(&s->pid, s->comm);
    note_udp_owner(sk);
  } else {
    __sync_fetch_and_add(&s->bytes_received, bytes);
    __sync_fetch_and_add(&s->packets_received, segments);
    if (s->pid == 0) {
      struct dw_sock_owner* owner = bpf_sk_storage_get(&udp_owner, sk, 0, 0);
      if (owner && owner->pid != 0) {
        s->pid = owner->pid;
        __builtin_memcpy(s->comm, owner->comm, sizeof(s->comm));
      }
    }
  }
  s->last_update_ns = bpf_ktime_get_ns();
}

/* ---- Every packet leaving or reaching a socket: DNS, and UDP flows when counting from packets. */

static __always_inline void inspect_dns(struct __sk_buff* skb, const struct l4_info* info,
                                        const struct udphdr* udp, int egress);

/* Whether a packet is TCP, from its first bytes read in place: cheaper than asking the socket
 * (a helper call), for the hook's commonest case. 0 when unsure (the caller then asks). */
static __always_inline int packet_is_tcp(struct __sk_buff* skb, __u32 protocol) {
  const __u8* data = (const __u8*)(long)skb->data;
  const __u8* end = (const __u8*)(long)skb->data_end;
  if (protocol == bpf_htons(ETH_P_IP)) {
    if (data + 10 > end) return 0;
    return data[9] == IPPROTO_TCP;
  }
  if (protocol == bpf_htons(ETH_P_IPV6)) {
    if (data + 7 > end) return 0;
    return data[6] == IPPROTO_TCP; /* a TCP packet behind extension headers takes the slow way */
  }
  return 0;
}

static __always_inline void on_packet(struct __sk_buff* skb, int egress, int count_udp) {
  if (!collect_dns && !count_udp) return;
  __u32 l3_protocol = skb->protocol;
  asm volatile("" : "+r"(l3_protocol));
  /* Most packets belong to TCP sockets: rule them out before any helper call. */
  if (count_udp && packet_is_tcp(skb, l3_protocol)) return;
  struct bpf_sock* owner = skb->sk;
  if (owner) {
    if (!count_udp) {
      /* First without a helper call: a socket whose peer is a port other than 53 (every TCP
       * connection, every UDP socket connected elsewhere) carries no DNS this hook inspects,
       * either way. Unconnected and listening sockets (port 0) go on to the protocol check. */
      __u16 peer_port = bpf_ntohs((__u16)owner->dst_port);
      if (peer_port != 0 && peer_port != DNS_PORT) return;
    }
    owner = bpf_sk_fullsock(owner);
    /* Request and time-wait sockets, the only ones that are not full, are TCP. */
    if (!owner || owner->protocol != IPPROTO_UDP) return;
  }
  struct l4_info info;
  if (parse_udp(skb, l3_protocol, &info) != 0) return;
  struct udphdr udp;
  if (bpf_skb_load_bytes(skb, info.udp_offset, &udp, sizeof(udp)) < 0) return;
  if (count_udp && owner) count_udp_packet(skb, owner, &info, &udp, egress);
  if (collect_dns) inspect_dns(skb, &info, &udp, egress);
}

static __always_inline void inspect_dns(struct __sk_buff* skb, const struct l4_info* info_in,
                                        const struct udphdr* udp_in, int egress) {
  struct l4_info info = *info_in;
  struct udphdr udp = *udp_in;
  __u16 sport = bpf_ntohs(udp.source), dport = bpf_ntohs(udp.dest);
  int query = egress && dport == DNS_PORT;
  int response = !egress && sport == DNS_PORT;
  if (!query && !response) return;
  __u32 dns_offset = info.udp_offset + sizeof(udp);
  struct dns_header header;
  if (bpf_skb_load_bytes(skb, dns_offset, &header, sizeof(header)) < 0) return;
  __u16 flags = bpf_ntohs(header.flags);
  int is_response = (flags >> 15) & 1;
  struct dw_dns_key key = {};
  key.query_id = bpf_ntohs(header.id);
  key.family = info.family;
  if (query) {
    if (is_response) return;
    __builtin_memcpy(key.client_addr, info.src, 16);
    __builtin_memcpy(key.server_addr, info.dst, 16);
    key.client_port = sport;
    __u32 zero = 0;
    /* Built in a per-CPU slot: the record does not fit next to the rest on the BPF stack. */
    struct dw_dns_pending* pending = bpf_map_lookup_elem(&dns_scratch, &zero);
    if (!pending) return;
    pending->start_ns = bpf_ktime_get_ns();
    pending->netns = 0;
    __u32 question_offset = dns_offset + sizeof(header);
    __u32 available = skb->len > question_offset ? skb->len - question_offset : 0;
    if (available > DW_DNS_QUESTION_MAX) {
      available = DW_DNS_QUESTION_MAX;
      count(DW_TEL_DNS_TRUNCATED);
    }
    if (available == 0) return;
    pending->question_len = available;
    /* One register, bounded after the barrier: otherwise clang passes an unbounded copy of the
     * length to the helper and the verifier refuses it. */
    __u64 len = available;
    asm volatile("" : "+r"(len));
    if (len == 0 || len > DW_DNS_QUESTION_MAX) return;
    if (bpf_skb_load_bytes(skb, question_offset, pending->question, len) < 0) return;
    if (bpf_map_update_elem(&dns_pending, &key, pending, BPF_ANY) != 0) count(DW_TEL_DNS_PENDING_FULL);
    return;
  }
  if (!is_response) return;
  __builtin_memcpy(key.client_addr, info.dst, 16);
  __builtin_memcpy(key.server_addr, info.src, 16);
  key.client_port = dport;
  struct dw_dns_pending* pending = bpf_map_lookup_elem(&dns_pending, &key);
  if (!pending) {
    count(DW_TEL_DNS_UNMATCHED);
    return;
  }
  struct dw_dns_event* event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
  if (!event) {
    count(DW_TEL_DNS_RINGBUF_FULL);
    bpf_map_delete_elem(&dns_pending, &key);
    return;
  }
  event->kind = DW_EVENT_DNS;
  event->rcode = flags & 0xf;
  event->latency_ns = bpf_ktime_get_ns() - pending->start_ns;
  __u16 qlen = pending->question_len;
  if (qlen > DW_DNS_QUESTION_MAX) qlen = DW_DNS_QUESTION_MAX;
  event->question_len = qlen;
  __builtin_memcpy(event->question, pending->question, DW_DNS_QUESTION_MAX);
  event->pad0 = 0;
  __builtin_memcpy(event->server_addr, key.server_addr, 16);
  event->client_port = key.client_port;
  event->family = key.family;
  __builtin_memset(event->pad1, 0, sizeof(event->pad1));
  bpf_ringbuf_submit(event, ring_submit_flags());
  bpf_map_delete_elem(&dns_pending, &key);
}

SEC("cgroup_skb/egress")
int dw_skb_egress(struct __sk_buff* skb) {
  on_packet(skb, 1, 0);
  return 1;
}

SEC("cgroup_skb/ingress")
int dw_skb_ingress(struct __sk_buff* skb) {
  on_packet(skb, 0, 0);
  return 1;
}

/* The same hooks when counting from packets: UDP flows too. */
SEC("cgroup_skb/egress")
int dw_skb_egress_udp(struct __sk_buff* skb) {
  on_packet(skb, 1, 1);
  return 1;
}

SEC("cgroup_skb/ingress")
int dw_skb_ingress_udp(struct __sk_buff* skb) {
  on_packet(skb, 0, 1);
  return 1;
}

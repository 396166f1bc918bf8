#!/usr/bin/env bash
# Builds deploy/selinux/dogwatch.pp against the reference-policy devel headers, lints the .te for
# least privilege, then links the module with Debian's complete base policy (all 331 modules) and
# expands it to a kernel policy: that proves every require resolves (the "Failed to resolve allow
# statement" failure Datadog's module hit on Amazon Linux) and lets sesearch check the rules the
# kernel would actually enforce, including what must NOT be allowed.
# Usage: tests/deploy/selinux_test.sh   (root installs missing packages; others must have them)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
src=$root/deploy/selinux

fail() { echo "selinux_test: FAIL: $*" >&2; exit 1; }
checks=0
pass() { checks=$((checks + 1)); echo "ok $checks - $*"; }

# Packages (also listed in scripts/deps.d/policy.txt for CI).
packages=(selinux-policy-dev checkpolicy semodule-utils policycoreutils setools)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || fail "missing packages ${missing[*]} (run scripts/install-deps.sh as root)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for tool in make checkmodule semodule_package semodule_link semodule_expand sesearch seinfo; do
  command -v "$tool" >/dev/null || fail "$tool not found after installing ${packages[*]}"
done
pp_to_cil=/usr/libexec/selinux/hll/pp
[[ -x $pp_to_cil ]] || fail "$pp_to_cil (policycoreutils) not found"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$src"/dogwatch.te "$src"/dogwatch.if "$src"/dogwatch.fc "$work"/

# 1. Least-privilege lint of the source, comments stripped (they may explain what is not done).
code=$(sed -e 's/#.*$//' "$work/dogwatch.te")
lint() {  # pattern, message
  if grep -nE "$1" <<<"$code" >"$work/lint.out"; then
    cat "$work/lint.out" >&2
    fail "dogwatch.te: $2"
  fi
}
lint '\*' "wildcard permission or type (allow ... *)"
lint '~' "complemented permission set (~{ ... })"
lint 'unconfined' "unconfined domain or interface"
lint 'permissive' "permissive domain"
lint 'all_[a-z_]*perms|(manage|rw|write|exec|relabel|delete|admin|signal|ptrace)_all_' \
  "permission set or write/exec interface over all types"
lint 'sys_admin|sys_resource|dac_override|sys_module|setuid|setgid|chown|fowner|kill|mac_|net_raw|ipc_lock|sys_rawio' \
  "capability beyond what the unit keeps"
lint 'can_exec\([^,]*, *dogwatch_system_probe_exec_t' "something may execute system-probe outside init"
pass "dogwatch.te has no wildcard, complement, unconfined, permissive or extra capability"

# 2. Build with the devel Makefile (m4 interfaces from the headers, then checkmodule + package).
make -C "$work" -f /usr/share/selinux/devel/Makefile dogwatch.pp >"$work/build.log" 2>&1 ||
  { cat "$work/build.log" >&2; fail "make dogwatch.pp failed"; }
[[ -s $work/dogwatch.pp ]] || fail "dogwatch.pp was not produced"
if grep -iE 'warning|error' "$work/build.log"; then fail "the build printed warnings"; fi
pass "dogwatch.pp built ($(stat -c %s "$work/dogwatch.pp") bytes)"

# 3. What the package contains, decompiled to CIL.
"$pp_to_cil" "$work/dogwatch.pp" "$work/dogwatch.cil" || fail "cannot decompile dogwatch.pp to CIL"
for t in dogwatch_t dogwatch_exec_t dogwatch_system_probe_t dogwatch_system_probe_exec_t \
  dogwatch_conf_t dogwatch_var_run_t dogwatch_sysprobe_sock_t dogwatch_var_lib_t dogwatch_log_t; do
  grep -qx "(type $t)" "$work/dogwatch.cil" || fail "type $t is not declared in the package"
done
pass "the package declares all nine dogwatch types"
expect_fc() {  # path, type
  grep -qF "(filecon \"$1\"" "$work/dogwatch.cil" || fail "no file context for $1"
  grep -F "(filecon \"$1\"" "$work/dogwatch.cil" | grep -q " $2 " || fail "$1 is not labelled $2"
}
expect_fc /opt/dogwatch/bin/agent dogwatch_exec_t
expect_fc /opt/dogwatch/bin/trace-agent dogwatch_exec_t
expect_fc /opt/dogwatch/bin/process-agent dogwatch_exec_t
expect_fc /opt/dogwatch/bin/system-probe dogwatch_system_probe_exec_t
expect_fc '/etc/dogwatch(/.*)?' dogwatch_conf_t
expect_fc '/var/run/dogwatch(/.*)?' dogwatch_var_run_t
expect_fc '/run/dogwatch(/.*)?' dogwatch_var_run_t
expect_fc '/var/run/dogwatch/sysprobe\.sock' dogwatch_sysprobe_sock_t
expect_fc '/var/lib/dogwatch(/.*)?' dogwatch_var_lib_t
expect_fc '/var/log/dogwatch(/.*)?' dogwatch_log_t
pass "file contexts for the binaries, /etc, /var/run, /var/lib and /var/log"

# 4. Link with a complete base policy and expand (neverallow assertions are checked here too).
policy_dir=/usr/share/selinux/default
if [[ ! -f $policy_dir/base.pp.bz2 && ! -f $policy_dir/base.pp ]]; then
  # Not installed: unpack Debian's package into the scratch dir instead of installing it (its
  # postinst would build a policy store on the machine).
  (cd "$work" && apt-get download -qq selinux-policy-default >/dev/null 2>&1) ||
    fail "selinux-policy-default is neither installed nor downloadable from the Debian mirror"
  dpkg-deb -x "$work"/selinux-policy-default_*.deb "$work/policy-root"
  policy_dir=$work/policy-root/usr/share/selinux/default
fi
mkdir -p "$work/modules"
for f in "$policy_dir"/*.pp.bz2 "$policy_dir"/*.pp; do
  [[ -f $f ]] || continue
  name=$(basename "$f" .bz2)
  case $f in *.bz2) bunzip2 -c "$f" >"$work/modules/$name" ;; *) cp "$f" "$work/modules/$name" ;; esac
done
[[ -f $work/modules/base.pp ]] || fail "no base.pp in $policy_dir"
others=()
for m in "$work"/modules/*.pp; do [[ $(basename "$m") == base.pp ]] || others+=("$m"); done
semodule_link -o "$work/all.lnk" "$work/modules/base.pp" "${others[@]}" "$work/dogwatch.pp" \
  >"$work/link.log" 2>&1 || { tail -n 20 "$work/link.log" >&2; fail "semodule_link failed"; }
semodule_expand "$work/all.lnk" "$work/policy.bin" >"$work/expand.log" 2>&1 ||
  { cat "$work/expand.log" >&2; fail "semodule_expand failed: a require does not resolve or a neverallow fires"; }
pass "linked with base + ${#others[@]} modules of $(basename "$policy_dir") and expanded to a kernel policy"

pol=$work/policy.bin
rules() { sesearch "$pol" "$@" 2>&1; }
expect_rule() {  # description, expected line (exact), sesearch args...
  local what=$1 want=$2; shift 2
  local got
  got=$(rules "$@")
  grep -qxF "$want" <<<"$got" || { echo "$got" >&2; fail "$what: expected '$want'"; }
  pass "$what"
}
expect_none() {  # description, sesearch args...
  local what=$1; shift
  local got
  got=$(rules "$@")
  [[ -z $got ]] || { echo "$got" >&2; fail "$what: expected no rule"; }
  pass "$what"
}

seinfo "$pol" -t dogwatch_system_probe_t -x | grep -q 'daemon' || fail "system-probe domain is not a daemon domain"
expect_rule "init transitions system-probe into its domain" \
  "type_transition init_t dogwatch_system_probe_exec_t:process dogwatch_system_probe_t;" \
  -T -s init_t -t dogwatch_system_probe_exec_t -c process
expect_rule "init transitions the agents into dogwatch_t" \
  "type_transition init_t dogwatch_exec_t:process dogwatch_t;" -T -s init_t -t dogwatch_exec_t -c process
expect_rule "system-probe may use bpf on its own objects" \
  "allow dogwatch_system_probe_t dogwatch_system_probe_t:bpf { map_create map_read map_write prog_load prog_run };" \
  -A -s dogwatch_system_probe_t -c bpf
expect_rule "system-probe may open its own perf events" \
  "allow dogwatch_system_probe_t dogwatch_system_probe_t:perf_event { cpu kernel open read tracepoint write };" \
  -A -s dogwatch_system_probe_t -c perf_event
expect_rule "system-probe keeps exactly net_admin, sys_ptrace and dac_read_search" \
  "allow dogwatch_system_probe_t dogwatch_system_probe_t:capability { dac_read_search net_admin sys_ptrace };" \
  -A -s dogwatch_system_probe_t -c capability
expect_rule "system-probe keeps bpf and perfmon" \
  "allow dogwatch_system_probe_t dogwatch_system_probe_t:capability2 { bpf perfmon };" \
  -A -s dogwatch_system_probe_t -c capability2
expect_rule "sysprobe.sock gets its own type when system-probe creates it" \
  "type_transition dogwatch_system_probe_t dogwatch_var_run_t:sock_file dogwatch_sysprobe_sock_t;" \
  -T -s dogwatch_system_probe_t -t dogwatch_var_run_t -c sock_file
expect_rule "the agents may connect to system-probe" \
  "allow dogwatch_t dogwatch_system_probe_t:unix_stream_socket connectto;" \
  -A -s dogwatch_t -t dogwatch_system_probe_t -c unix_stream_socket -p connectto
expect_rule "the agents may write sysprobe.sock (connect)" \
  "allow dogwatch_t dogwatch_sysprobe_sock_t:sock_file { append getattr open write };" \
  -A -s dogwatch_t -t dogwatch_sysprobe_sock_t -c sock_file -ds
expect_rule "system-probe may read the cgroup tree it attaches to" \
  "allow dogwatch_system_probe_t cgroup_t:dir { getattr ioctl lock open read search };" \
  -A -s dogwatch_system_probe_t -t cgroup_t -c dir -ds -dt

expect_none "the agents hold no capability" -A -s dogwatch_t -c capability
expect_none "the agents hold no capability2" -A -s dogwatch_t -c capability2
expect_none "the agents cannot use bpf" -A -s dogwatch_t -c bpf
expect_none "the agents cannot open perf events" -A -s dogwatch_t -c perf_event
expect_none "the agents cannot execute system-probe" -A -s dogwatch_t -t dogwatch_system_probe_exec_t -c file -p execute
expect_none "the agents cannot enter the system-probe domain" -A -s dogwatch_t -t dogwatch_system_probe_t -c process -p transition
expect_none "system-probe cannot ptrace other processes" -A -s dogwatch_system_probe_t -c process -p ptrace
expect_none "system-probe cannot raise its rlimits (init does)" -A -s dogwatch_system_probe_t -c process -p setrlimit
expect_none "system-probe cannot load kernel modules" -A -s dogwatch_system_probe_t -c system -p module_load
expect_none "system-probe cannot write its configuration" -A -s dogwatch_system_probe_t -t dogwatch_conf_t -c file -p write
other_bpf=$(rules -A -c bpf -p prog_load | grep -c dogwatch || true)
[[ $other_bpf -eq 1 ]] || fail "expected exactly one dogwatch rule allowing prog_load, found $other_bpf"
pass "system-probe is the only dogwatch domain that may load BPF programs"
# Writing tracefs/debugfs exists only as a conditional rule: sesearch prints the guarding boolean.
for fs in tracefs_t debugfs_t; do
  got=$(rules -A -s dogwatch_system_probe_t -t "$fs" -c file -p write -dt)
  [[ -n $got ]] || fail "no (conditional) write rule on $fs"
  if grep -v 'dogwatch_system_probe_write_tracefs' <<<"$got"; then
    fail "system-probe may write $fs without the dogwatch_system_probe_write_tracefs tunable"
  fi
done
pass "tracefs/debugfs writes exist only behind the dogwatch_system_probe_write_tracefs tunable"

echo "selinux_test: all $checks checks passed"

#!/usr/bin/env bash
# Checks the .deb and the .rpm that tests/deploy/cpack_packages.sh built into BUILD_DIR/packages
# (ctest runs it first, as the fixture deploy_cpack), without installing them (installing,
# upgrading, removing and purging the .deb under a real systemd is systemd_container_test.sh):
#   - lintian and rpmlint: no error or warning except the ones overridden in
#     deploy/packaging/deb/lintian-overrides and deploy/packaging/rpm/dogwatch.rpmlintrc, each with
#     its reason; an override that no longer matches anything fails too;
#   - the exact file list with modes and owners (binaries 0755 root, configs 0640 root:dogwatch,
#     examples and units 0644, state and log dirs 0750 dogwatch), nothing else;
#   - conffiles (dpkg) and %config(noreplace) (rpm) for every file under /etc;
#   - dependencies computed from the binaries: every shared library they link is covered by the
#     Depends (dpkg-shlibdeps) and Requires (rpm's find-requires);
#   - maintainer scripts present; the SELinux module shipped exactly when it was built.
# Usage: packages_test.sh BUILD_DIR   (by hand: run cpack_packages.sh BUILD_DIR first)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
build=${1:?usage: packages_test.sh BUILD_DIR}
build=$(cd "$build" && pwd)
source_dir=$(cd "$here/../.." && pwd)

require_tools dpkg-deb dpkg-shlibdeps lintian rpmbuild rpm rpmlint objdump
bins=("${dogwatch_agents[@]}")
require_built "$build" "${bins[@]}"
version=$(sed -nE 's/^set\(CPACK_PACKAGE_VERSION "([^"]+)"\)/\1/p' "$build/CPackConfig.cmake")
[[ -n $version ]] || fail "no CPACK_PACKAGE_VERSION in $build/CPackConfig.cmake (is cmake/Packaging.cmake included?)"

work=$(mktemp -d /var/tmp/dogwatch-packages.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The SELinux module is shipped when it was built (cpack_packages.sh builds it when the policy
# devel files are here) or a dogwatch.pp lies in place (the candidates of cmake/Packaging.cmake).
selinux_pp=""
for candidate in "$build/selinux/dogwatch.pp" "$source_dir/deploy/selinux/dogwatch.pp"; do
  [[ -f $candidate ]] && selinux_pp=usr/share/selinux/packages/dogwatch/dogwatch.pp
done
if [[ -f /usr/share/selinux/devel/Makefile && -f $source_dir/deploy/selinux/dogwatch.te ]]; then
  [[ -f $build/selinux/dogwatch.pp ]] ||
    fail "the SELinux module can be built here but $build/selinux/dogwatch.pp is missing: run tests/deploy/cpack_packages.sh $build"
  echo "SELinux module built: the packages must ship /$selinux_pp"
else
  [[ -n $selinux_pp ]] || echo "SELinux module not built (no selinux-policy-dev): the packages must not ship one"
fi

deb=$(built_package "$build" "dogwatch_$version-1_*.deb")
rpm=$(built_package "$build" "dogwatch-$version-1.*.rpm")
echo "checking $(basename "$deb") ($(stat -c %s "$deb") bytes), $(basename "$rpm") ($(stat -c %s "$rpm") bytes)"

# ---- lint --------------------------------------------------------------------------------------
echo "== lintian"
lintian_out=$(lintian --pedantic --show-overrides --display-info "$deb" 2>&1) || true
printf '%s\n' "$lintian_out" | sed 's/^/  /'
if grep -E '^[EW]: ' <<<"$lintian_out"; then
  fail "lintian: errors/warnings without an override (fix them or justify them in deploy/packaging/deb/lintian-overrides)"
fi
if grep -E 'unused-override|mismatched-override' <<<"$lintian_out"; then
  fail "lintian: an override matches nothing any more; drop it from deploy/packaging/deb/lintian-overrides"
fi
grep -qE '^O: dogwatch: dir-or-file-in-opt' <<<"$lintian_out" ||
  fail "lintian did not apply the package's override file (no O: lines)"
echo "ok   lintian: no unjustified error or warning"

echo "== rpmlint"
rc=0
rpmlint_out=$(rpmlint -r "$source_dir/deploy/packaging/rpm/dogwatch.rpmlintrc" "$rpm" 2>&1) || rc=$?
printf '%s\n' "$rpmlint_out" | sed 's/^/  /'
if grep -E ': [EW]: ' <<<"$rpmlint_out"; then
  fail "rpmlint: errors/warnings not filtered (fix them or justify them in deploy/packaging/rpm/dogwatch.rpmlintrc)"
fi
[[ $rc == 0 ]] || fail "rpmlint exited $rc"
grep -qE '0 errors, 0 warnings' <<<"$rpmlint_out" || fail "rpmlint summary is not '0 errors, 0 warnings'"
echo "ok   rpmlint: no unfiltered error or warning (an unused filter would be an error)"

# ---- contents ----------------------------------------------------------------------------------
# "mode owner group path" for every regular file and symlink a package must hold, and nothing else.
expected_files() {  # unit_dir extra...
  local units=$1
  shift
  cat <<EOF
-rwxr-xr-x root root /opt/dogwatch/bin/agent
-rwxr-xr-x root root /opt/dogwatch/bin/trace-agent
-rwxr-xr-x root root /opt/dogwatch/bin/process-agent
-rwxr-xr-x root root /opt/dogwatch/bin/system-probe
-rwxr-xr-x root root /opt/dogwatch/libexec/system-probe-enabled
-rw-r--r-- root root $units/dogwatch-agent.service
-rw-r--r-- root root $units/dogwatch-trace-agent.service
-rw-r--r-- root root $units/dogwatch-process-agent.service
-rw-r--r-- root root $units/dogwatch-system-probe.service
-rw-r--r-- root root /usr/lib/tmpfiles.d/dogwatch.conf
-rw-r--r-- root root /etc/logrotate.d/dogwatch
-rw-r--r-- root root /etc/dogwatch/dogwatch.yaml.example
-rw-r--r-- root root /etc/dogwatch/system-probe.yaml.example
-rw-r--r-- root root /usr/share/doc/dogwatch/copyright
EOF
  for line in "$@"; do echo "$line"; done
  [[ -z $selinux_pp ]] || echo "-rw-r--r-- root root /$selinux_pp"
}
compare() {  # what expected-file actual-file
  if ! diff <(sort "$2") <(sort "$3") >"$work/diff"; then
    echo "$1: contents differ from the expected list (< expected, > package):" >&2
    cat "$work/diff" >&2
    fail "$1 contents"
  fi
}

echo "== .deb contents"
# data.tar carries only root:root; the group of the configs and the owner of the state and log
# dirs come from postinst's dpkg-statoverride (checked by systemd_container_test.sh).
# One listing of data.tar, from which the file list and the directory list are both taken.
dpkg-deb --fsys-tarfile "$deb" | tar -tvf - >"$work/deb.list"
awk '{ split($2, o, "/"); p = $6; sub(/^\./, "", p); if ($1 !~ /^d/) print $1, o[1], o[2], p }' \
  "$work/deb.list" >"$work/deb.files"
expected_files /lib/systemd/system \
  "-rw-r----- root root /etc/dogwatch/dogwatch.yaml" \
  "-rw-r----- root root /etc/dogwatch/system-probe.yaml" \
  "-rw-r--r-- root root /usr/share/doc/dogwatch/changelog.Debian.gz" \
  "-rw-r--r-- root root /usr/share/lintian/overrides/dogwatch" >"$work/deb.expected"
compare .deb "$work/deb.expected" "$work/deb.files"
awk '$1 ~ /^d/ { p = $6; sub(/^\./, "", p); sub(/\/$/, "", p); print $1, $2, p }' "$work/deb.list" >"$work/deb.dirs"
grep -qx 'drwxr-x--- root/root /var/lib/dogwatch' "$work/deb.dirs" || fail ".deb: /var/lib/dogwatch is not 0750"
grep -qx 'drwxr-x--- root/root /var/log/dogwatch' "$work/deb.dirs" || fail ".deb: /var/log/dogwatch is not 0750"
if grep -vE '^drwxr-xr-x root/root |/var/(lib|log)/dogwatch$' "$work/deb.dirs"; then
  fail ".deb: directories other than state/logs must be 0755 root"
fi
if grep -E ' /(var/run|run|usr/local|tmp)(/|$)' "$work/deb.dirs" "$work/deb.files"; then
  fail ".deb ships paths under /run, /usr/local or /tmp"
fi
echo "ok   .deb file list, modes and owners"

dpkg-deb --ctrl-tarfile "$deb" | tar -xf - -C "$work" ./conffiles ./postinst ./prerm ./postrm ./control
grep '^-' "$work/deb.files" | awk '$4 ~ /^\/etc\// { print $4 }' | sort >"$work/etc.files"
diff "$work/etc.files" <(sort "$work/conffiles") ||
  fail ".deb: every file under /etc (and nothing else) must be a conffile"
for script in postinst prerm postrm; do
  [[ $(stat -c %a "$work/$script") == 755 ]] || fail ".deb: $script is not 0755"
done
grep -q 'adduser --system' "$work/postinst" || fail ".deb postinst does not create the system user"
grep -q 'set_override root dogwatch 0640 /etc/dogwatch/dogwatch.yaml' "$work/postinst" ||
  fail ".deb postinst does not give the configs to group dogwatch"
echo "ok   .deb conffiles: $(tr '\n' ' ' <"$work/conffiles")"

echo "== .deb dependencies"
depends=$(sed -n 's/^Depends: //p' "$work/control")
echo "Depends: $depends"
needed=$(for bin in "${bins[@]}"; do objdump -p "$build/bin/$bin" | awk '$1 == "NEEDED" { print $2 }'; done | sort -u)
[[ -n $needed ]] || fail "objdump found no NEEDED libraries in the agents"
# The library each soname resolves to here, and the package that ships that file (with merged
# /usr, dpkg may know it under /lib or /usr/lib).
# (The dynamic loader itself is listed by path only: "/lib64/ld-linux-x86-64.so.2 (0x...)".)
ldd "${bins[@]/#/$build/bin/}" | awk '
  $2 == "=>" && $3 ~ /^\// { print $1, $3 }
  $1 ~ /^\// && $2 ~ /^\(/ { n = split($1, part, "/"); print part[n], $1 }' | sort -u >"$work/ldd"
for soname in $needed; do
  path=$(awk -v s="$soname" '$1 == s { print $2; exit }' "$work/ldd")
  [[ -n $path ]] || fail "ldd does not resolve $soname (needed by the agents)"
  owner=""
  for candidate in "$path" "${path#/usr}" "/usr$path" "$(readlink -f "$path")"; do
    owner=$(dpkg -S "$candidate" 2>/dev/null | head -n 1 | cut -d: -f1) && [[ -n $owner ]] && break
  done
  [[ -n $owner ]] || fail "no installed package ships $path ($soname, needed by the agents)"
  # The shlibs file may name a virtual package the owner Provides (libspdlog1.10 provides
  # libspdlog1.10-fmt9). Package names may hold regex characters (libgrpc++1.51): compare names.
  names=$(printf '%s\n%s\n' "$owner" "$(dpkg-query -W -f='${Provides}' "$owner" 2>/dev/null)" |
    sed 's/, /\n/g; s/ ([^)]*)//g; s/:any//g')
  sed 's/, /\n/g; s/ ([^)]*)//g; s/ | /\n/g' <<<"$depends" | grep -qxF -f <(grep . <<<"$names") ||
    fail "$soname comes from $owner, which is not in Depends (shlibdeps not computed?)"
done
echo "ok   every NEEDED library ($(wc -w <<<"$needed")) is covered by Depends"

echo "== .rpm contents"
# One query of the payload, from which the file list and the directory list are both taken.
rpm -qp --nosignature --qf '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm" \
  >"$work/rpm.list"
grep -v '^d' "$work/rpm.list" >"$work/rpm.files"
expected_files /usr/lib/systemd/system \
  "-rw-r----- root dogwatch /etc/dogwatch/dogwatch.yaml" \
  "-rw-r----- root dogwatch /etc/dogwatch/system-probe.yaml" >"$work/rpm.expected"
compare .rpm "$work/rpm.expected" "$work/rpm.files"
grep '^d' "$work/rpm.list" >"$work/rpm.dirs"
grep -qx 'drwxr-x--- dogwatch dogwatch /var/lib/dogwatch' "$work/rpm.dirs" || fail ".rpm: /var/lib/dogwatch"
grep -qx 'drwxr-x--- dogwatch dogwatch /var/log/dogwatch' "$work/rpm.dirs" || fail ".rpm: /var/log/dogwatch"
if grep -E ' (/|/etc|/opt|/usr|/usr/lib|/usr/share|/usr/share/doc|/var|/var/lib|/var/log|/usr/lib/systemd|/usr/lib/systemd/system|/usr/lib/tmpfiles.d|/etc/logrotate.d)$' "$work/rpm.dirs"; then
  fail ".rpm owns a system directory"
fi
echo "ok   .rpm file list, modes and owners"

rpm -qp --nosignature --qf '[%{FILEFLAGS:fflags}|%{FILENAMES}\n]' "$rpm" >"$work/rpm.flags"
while read -r path; do
  grep -qxF "cn|$path" "$work/rpm.flags" || fail ".rpm: $path is not %config(noreplace)"
done <"$work/etc.files"
if awk -F'|' '$1 ~ /c/ { print $2 }' "$work/rpm.flags" | grep -v '^/etc/'; then
  fail ".rpm: %config outside /etc"
fi
scripts=$(rpm -qp --nosignature --scripts "$rpm")
for phase in preinstall postinstall preuninstall postuninstall posttrans; do
  grep -q "^$phase scriptlet" <<<"$scripts" || fail ".rpm has no $phase scriptlet"
done
grep -q 'useradd -r' <<<"$scripts" || fail ".rpm %pre does not create the system user"
grep -q 'semodule -i' <<<"$scripts" || fail ".rpm %posttrans does not load the SELinux module"
requires=$(rpm -qp --nosignature --requires "$rpm")
for soname in $needed; do
  grep -qF "$soname()(64bit)" <<<"$requires" || fail ".rpm does not require $soname"
done
echo "ok   .rpm %config(noreplace), scriptlets, Requires cover every NEEDED library"

echo "PASS packages_test"

# dogwatch %post ($1: 1 = install, 2 = upgrade). Debian has no systemd RPM macros, so this is what
# %systemd_post does, except that the units are enabled on a first install (the package's purpose
# is to run them; presets would leave them off on most RPM distributions).
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
  systemd-tmpfiles --create /usr/lib/tmpfiles.d/dogwatch.conf >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ]; then
  systemctl --no-reload enable dogwatch-agent.service dogwatch-trace-agent.service \
    dogwatch-process-agent.service dogwatch-system-probe.service >/dev/null 2>&1 || :
fi
exit 0

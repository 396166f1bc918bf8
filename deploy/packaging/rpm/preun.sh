# dogwatch %preun ($1: 0 = erase, 1 = upgrade): on erase, stop and disable (%systemd_preun).
if [ "$1" -eq 0 ]; then
  systemctl --no-reload disable --now dogwatch-agent.service dogwatch-trace-agent.service \
    dogwatch-process-agent.service dogwatch-system-probe.service >/dev/null 2>&1 || :
fi
exit 0

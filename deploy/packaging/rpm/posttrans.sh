# dogwatch %posttrans: runs once the whole transaction (including an old version's %preun and
# %postun) is done, so this is where the units are (re)started and the SELinux module loaded.
if command -v semodule >/dev/null 2>&1 && command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled &&
  [ -f /usr/share/selinux/packages/dogwatch/dogwatch.pp ]; then
  if semodule -i /usr/share/selinux/packages/dogwatch/dogwatch.pp; then
    restorecon -R /opt/dogwatch /etc/dogwatch /var/lib/dogwatch /var/log/dogwatch >/dev/null 2>&1 || :
  else
    echo "dogwatch: could not load the SELinux module /usr/share/selinux/packages/dogwatch/dogwatch.pp" >&2
  fi
fi
if [ -d /run/systemd/system ] && systemctl is-enabled --quiet dogwatch-agent.service 2>/dev/null; then
  # Restarting the core restarts the family (BindsTo= + WantedBy=).
  systemctl restart dogwatch-agent.service >/dev/null 2>&1 || :
fi
exit 0

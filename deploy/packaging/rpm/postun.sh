# dogwatch %postun ($1: 0 = erase, 1 = upgrade). Configs the administrator changed are kept as
# .rpmsave by rpm itself; state, logs and sockets go with the package. The dogwatch user stays
# (Fedora's guidelines: packages never remove the users they create; the uid must not be reused).
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 0 ]; then
  if command -v semodule >/dev/null 2>&1 && command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled; then
    semodule -r dogwatch >/dev/null 2>&1 || :
  fi
  rm -rf /var/lib/dogwatch /var/log/dogwatch /run/dogwatch
fi
exit 0

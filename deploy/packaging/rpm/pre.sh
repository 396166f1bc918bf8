# dogwatch %pre: the system group and user must exist before the files are laid down, because
# %attr gives some of them to dogwatch. $1: 1 = install, 2 = upgrade.
getent group dogwatch >/dev/null || groupadd -r dogwatch
getent passwd dogwatch >/dev/null ||
  useradd -r -g dogwatch -d /var/lib/dogwatch -M -s /sbin/nologin -c "dogwatch agent" dogwatch
exit 0

#!/bin/sh
# After the package's own files are gone (dpkg: "remove"/"purge"; rpm: 0
# packages left). What its users made stays: profiles, secrets, services
# and login items belong to them, and this script runs as root, for no
# user in particular. It only says what is left and how to remove it.
set -e
case "$1" in
  remove|purge|0) ;;
  *) exit 0 ;;
esac
cat >&2 <<'MSG'
OmniClaw was removed; what its users set up was left in place:
  - profiles: ~/.omniclaw and ~/.omniclaw-* (config, state, sessions, workspaces)
  - secrets: in each user's keychain, under the service "omniclaw"
  - gateway services: ~/.config/systemd/user/omniclaw-gateway-*.service
    (they no longer start: each unit's ConditionPathExists= names the removed binary)
  - the login item: ~/.config/autostart/OmniClaw.desktop
To remove them, each user who ran OmniClaw either reinstalls it and runs
  omniclaw --profile NAME remove        (for each profile; see `omniclaw status`)
or, without it:
  systemctl --user disable --now 'omniclaw-gateway-*.service'
  rm -f ~/.config/systemd/user/omniclaw-gateway-*.service ~/.config/autostart/OmniClaw.desktop
  systemctl --user daemon-reload
  secret-tool clear service omniclaw
  rm -rf ~/.omniclaw ~/.omniclaw-*
MSG
exit 0

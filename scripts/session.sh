#!/usr/bin/env bash
# Runs a command the way a desktop session would see it: inside a private
# D-Bus session bus, with a virtual X display (Xvfb) and an unlocked Secret
# Service (gnome-keyring). Tests of the tray, the UI and the keychain run
# under it; nothing of the caller's own desktop session is touched.
#
# usage: scripts/session.sh COMMAND [ARGS...]
set -euo pipefail

if [ -z "${_OC_IN_SESSION:-}" ]; then
  command -v dbus-run-session >/dev/null || { echo "session: dbus-run-session missing: run scripts/install-deps.sh" >&2; exit 1; }
  exec env _OC_IN_SESSION=1 dbus-run-session -- "$0" "$@"
fi

cleanup() {
  [ -n "${keyring_watch:-}" ] && kill "$keyring_watch" 2>/dev/null || true
  [ -n "${xvfb_pid:-}" ] && kill "$xvfb_pid" 2>/dev/null || true
  [ -n "${keyring_pid:-}" ] && kill "$keyring_pid" 2>/dev/null || true
}
trap cleanup EXIT

# A free display number: the first without a lock file.
display=90
while [ -e "/tmp/.X${display}-lock" ] || [ -e "/tmp/.X11-unix/X${display}" ]; do
  display=$((display + 1))
done
Xvfb ":$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb_pid=$!
export DISPLAY=":$display"
for _ in $(seq 1 50); do
  [ -e "/tmp/.X11-unix/X${display}" ] && break
  sleep 0.1
done

# An unlocked login keyring, private to this session. gnome-keyring creates
# the login keyring (the Secret Service's `default` collection) only for a
# non-empty password; the password protects nothing here (a throwaway dir).
export XDG_DATA_HOME="${XDG_DATA_HOME:-$(mktemp -d)}"
keyring_log="$XDG_DATA_HOME/gnome-keyring.log"
eval "$(printf 'omniclaw-session' | gnome-keyring-daemon --unlock --components=secrets 2>>"$keyring_log")" || true
export GNOME_KEYRING_CONTROL SSH_AUTH_SOCK 2>/dev/null || true
# The daemon forks away; its pid is the one that owns the Secret Service
# on this bus.
keyring_pid=
for _ in $(seq 1 50); do
  keyring_pid="$(dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets 2>/dev/null |
    awk '/uint32/ {print $2}')" || true
  [ -n "$keyring_pid" ] && break
  sleep 0.1
done
# Every keychain test fails once the keyring is gone: say when it went (the
# tests running then are the suspects) and what it printed.
if [ -n "$keyring_pid" ]; then
  (
    while kill -0 "$keyring_pid" 2>/dev/null; do sleep 1; done
    echo "session: $(date +%T) gnome-keyring-daemon (pid $keyring_pid) is gone; it printed:" >&2
    cat "$keyring_log" >&2 2>/dev/null || true
  ) &
  keyring_watch=$!
fi

"$@"

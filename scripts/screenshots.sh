#!/usr/bin/env bash
# Renders screenshots of the desktop dashboard for the README: the gateway
# cards (main running, rescue stopped) and the port map with a conflict.
# Runs the real app in a private D-Bus session and virtual display, against
# a temporary home; nothing of the caller's own profiles is read or touched.
#
# usage: scripts/screenshots.sh [OUT_DIR]     (default docs/screenshots)
# needs: Xvfb, dbus-daemon, xdotool, ImageMagick `import`, python3-dbus;
#        the debug binaries (cargo build -p omniclaw-cli -p omniclaw-desktop,
#        or CARGO_TARGET_DIR pointing at another build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/docs/screenshots}"
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
for tool in Xvfb dbus-daemon xdotool import; do
  command -v "$tool" >/dev/null || { echo "screenshots: $tool missing: run scripts/install-deps.sh" >&2; exit 1; }
done
for b in omniclaw omniclaw-desktop; do
  [ -x "$bin/$b" ] || { echo "screenshots: $bin/$b missing: cargo build -p omniclaw-cli -p omniclaw-desktop" >&2; exit 1; }
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # The web view's document portal may leave a mount point behind.
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

export HOME="$work/home"
mkdir -p "$HOME"
unset OMNICLAW_HOME OMNICLAW_PROFILE OMNICLAW_STATE_DIR OMNICLAW_CONFIG_PATH OMNICLAW_GATEWAY_PORT XDG_CONFIG_HOME

bus="$(dbus-daemon --session --fork --print-address=1 --print-pid=3 3>"$work/dbus.pid")"
pids+=("$(cat "$work/dbus.pid")")
export DBUS_SESSION_BUS_ADDRESS="$bus"

exec 4>"$work/display"
Xvfb -displayfd 4 -screen 0 1280x900x24 -nolisten tcp >/dev/null 2>&1 &
pids+=("$!")
for _ in $(seq 1 50); do [ -s "$work/display" ] && break; sleep 0.1; done
export DISPLAY=":$(head -n1 "$work/display")"

"$py" "$root/scripts/tray-dbus.py" watch >"$work/watch.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 50); do grep -q ready "$work/watch.log" 2>/dev/null && break; sleep 0.1; done

# Two profiles: main on the manual's 18789 (or a free base when that is
# taken), rescue 20 ports up, inside main's CDP range: a conflict to show.
base="$("$py" -c '
import socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
for base in [18789] + list(range(28789, 60000, 211)):
    if all(free(base + d) for d in (0, 2, 4)):
        print(base); break')"
"$bin/omniclaw" --profile main --secrets-file setup >/dev/null
"$bin/omniclaw" --profile main config set gateway.port "$base" >/dev/null
"$bin/omniclaw" --profile rescue --secrets-file setup >/dev/null
"$bin/omniclaw" --profile rescue config set gateway.port "$((base + 20))" >/dev/null
printf '{"startWithApp": ["main"]}\n' >"$HOME/.omniclaw/desktop.json"

NO_AT_BRIDGE=1 GDK_BACKEND=x11 WEBKIT_DISABLE_COMPOSITING_MODE=1 "$bin/omniclaw-desktop" >"$work/app.log" 2>&1 &
pids+=("$!")

window=""
for _ in $(seq 1 100); do
  window="$(xdotool search --onlyvisible --name '^OmniClaw$' 2>/dev/null | head -n1 || true)"
  [ -n "$window" ] && break
  sleep 0.1
done
[ -n "$window" ] || { cat "$work/app.log" >&2; echo "screenshots: the dashboard window never appeared" >&2; exit 1; }
xdotool windowsize "$window" 1000 700 windowmove "$window" 0 0
sleep 3   # let main start and the page render

import -window "$window" "$out/dashboard.png"

# The tray's warning item opens the port map, as a user would reach it.
warning="$("$py" "$root/scripts/tray-dbus.py" layout | "$py" -c '
import json, sys
for item in json.load(sys.stdin)["children"]:
    if item["label"].startswith("⚠"):
        print(item["id"]); break')"
[ -n "$warning" ] || { echo "screenshots: no conflict warning in the tray" >&2; exit 1; }
"$py" "$root/scripts/tray-dbus.py" click "$warning"
sleep 1.5
import -window "$window" "$out/port-map.png"

echo "screenshots: wrote $out/dashboard.png and $out/port-map.png"

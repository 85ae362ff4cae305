# Sourced by the scripts that run the real desktop app outside the test
# suite (scripts/bench-desktop.sh, scripts/screenshots.sh): a temporary
# home, a private D-Bus session bus, a virtual X display and a tray watcher
# stand-in, all removed on exit. Nothing of the caller's own desktop
# session or profiles is read or touched.
#
# usage (after `set -euo pipefail`):
#   . "$(dirname "${BASH_SOURCE[0]}")/desktop-env.sh"
#   desktop_env NAME GEOMETRY BIN_DIR     e.g. desktop_env screenshots 1280x900x24 "$bin"
# then: $root, $py, $work, $HOME, $DISPLAY, $DBUS_SESSION_BUS_ADDRESS,
#       "$work/watch.log" (the watcher's "registered ..." lines), `pids+=(PID)`
#       to have a process killed on exit, and `free_base [START...] -- [AVOID...]`.

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
pids=()

desktop_env() {
  local name="$1" geometry="$2" bin="$3" tool b
  for tool in Xvfb dbus-daemon xdotool; do
    command -v "$tool" >/dev/null || { echo "$name: $tool missing: run scripts/install-deps.sh" >&2; exit 1; }
  done
  for b in omniclaw omniclaw-desktop; do
    [ -x "$bin/$b" ] || { echo "$name: $bin/$b missing: cargo build -p omniclaw-cli -p omniclaw-desktop" >&2; exit 1; }
  done

  work="$(mktemp -d)"
  trap desktop_env_cleanup EXIT

  export HOME="$work/home"
  mkdir -p "$HOME"
  unset OMNICLAW_HOME OMNICLAW_PROFILE OMNICLAW_STATE_DIR OMNICLAW_CONFIG_PATH OMNICLAW_GATEWAY_PORT XDG_CONFIG_HOME

  local bus
  bus="$(dbus-daemon --session --fork --print-address=1 --print-pid=3 3>"$work/dbus.pid")"
  pids+=("$(cat "$work/dbus.pid")")
  export DBUS_SESSION_BUS_ADDRESS="$bus"

  exec 4>"$work/display"
  Xvfb -displayfd 4 -screen 0 "$geometry" -nolisten tcp >/dev/null 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 50); do [ -s "$work/display" ] && break; sleep 0.1; done
  export DISPLAY=":$(head -n1 "$work/display")"

  "$py" "$root/scripts/tray-dbus.py" watch >"$work/watch.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 50); do grep -q ready "$work/watch.log" 2>/dev/null && break; sleep 0.1; done

  export NO_AT_BRIDGE=1 GDK_BACKEND=x11 WEBKIT_DISABLE_COMPOSITING_MODE=1
}

desktop_env_cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # The web view's document portal may leave a mount point behind.
  rm -rf "$work" 2>/dev/null || true
}

# The first base port from the candidates (START..., else 31789 up in steps
# of 211) whose gateway, browser control and canvas ports are free and that
# keeps 250 ports away from every AVOID port.
free_base() {
  "$py" -c '
import socket, sys
args = sys.argv[1:]
cut = args.index("--") if "--" in args else len(args)
starts = [int(a) for a in args[:cut]]
avoid = [int(a) for a in args[cut + 1:]]
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
for base in starts + list(range(31789, 60000, 211)):
    if all(abs(base - a) > 250 for a in avoid) and all(free(base + d) for d in (0, 2, 4)):
        print(base); break' "$@"
}

# Prints the X window id of the visible dashboard once it appears (within
# 20 s); prints nothing when it never does.
dashboard_window() {
  local window=""
  for _ in $(seq 1 200); do
    window="$(xdotool search --onlyvisible --name '^OmniClaw$' 2>/dev/null | head -n1 || true)"
    [ -n "$window" ] && break
    sleep 0.1
  done
  echo "$window"
}

# Prints the D-Bus id of the first top-level tray menu item whose label
# starts with PREFIX; prints nothing when there is none.
tray_item() {
  "$py" "$root/scripts/tray-dbus.py" layout | "$py" -c '
import json, sys
for item in json.load(sys.stdin)["children"]:
    if item["label"].startswith(sys.argv[1]):
        print(item["id"]); break' "$1"
}

# Prints the D-Bus id of the item labelled LABEL in the submenu of the
# top-level item whose label starts with PARENT; nothing when there is none.
tray_sub_item() {
  "$py" "$root/scripts/tray-dbus.py" layout | "$py" -c '
import json, sys
for item in json.load(sys.stdin)["children"]:
    if item["label"].startswith(sys.argv[1]):
        for child in item.get("children", []):
            if child["label"] == sys.argv[2]:
                print(child["id"]); break
        break' "$1" "$2"
}

# Starts the model-provider double (`provider-double [REPLY]`, built with
# `cargo build -p omniclaw-agent --features double --bin provider-double`)
# and gives profile PROFILE (default: the default profile) an assistant on
# it: `local/m1`, priced like a mid-size hosted model.
# usage: assistant_on_double BIN_DIR PROFILE_ARGS... -- REPLY
assistant_on_double() {
  local bin="$1" addr
  shift
  local args=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do args+=("$1"); shift; done
  [ "${1:-}" = "--" ] && shift
  [ -x "$bin/provider-double" ] || { echo "$bin/provider-double missing: cargo build -p omniclaw-agent --features double --bin provider-double" >&2; exit 1; }
  "$bin/provider-double" "$@" >"$work/double.addr" 2>/dev/null &
  pids+=("$!")
  for _ in $(seq 1 50); do [ -s "$work/double.addr" ] && break; sleep 0.1; done
  addr="$(head -n1 "$work/double.addr")"
  "$bin/omniclaw" "${args[@]}" config set models.providers.local \
    "{ baseUrl: 'http://$addr/v1', api: 'openai-completions', models: [{ id: 'm1', name: 'Model one', cost: { input: 3, output: 15 } }] }" >/dev/null
  "$bin/omniclaw" "${args[@]}" config set agents.defaults.model '"local/m1"' >/dev/null
}

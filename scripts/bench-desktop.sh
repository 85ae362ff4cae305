#!/usr/bin/env bash
# Measures the desktop app: cold start to the tray icon registered on D-Bus,
# and memory (RSS) with the window closed and two gateways running.
# Runs in a private D-Bus session and virtual display against a temporary
# home with a `main` and a `rescue` profile that start with the app.
#
# usage: scripts/bench-desktop.sh [RUNS]        (default 5)
#        PROFILE=release scripts/bench-desktop.sh   (binaries from target/release)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs="${1:-5}"
bin="${CARGO_TARGET_DIR:-$root/target}/${PROFILE:-debug}"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
for b in omniclaw omniclaw-desktop; do
  [ -x "$bin/$b" ] || { echo "bench-desktop: $bin/$b missing: build it first" >&2; exit 1; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
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
Xvfb -displayfd 4 -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
pids+=("$!")
for _ in $(seq 1 50); do [ -s "$work/display" ] && break; sleep 0.1; done
export DISPLAY=":$(head -n1 "$work/display")"
"$py" "$root/scripts/tray-dbus.py" watch >"$work/watch.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 50); do grep -q ready "$work/watch.log" 2>/dev/null && break; sleep 0.1; done

free_base() {
  "$py" -c '
import socket, sys
avoid = [int(a) for a in sys.argv[1:]]
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
for base in range(31789, 60000, 211):
    if all(abs(base - a) > 250 for a in avoid) and all(free(base + d) for d in (0, 2, 4)):
        print(base); break' "$@"
}
main="$(free_base)"
rescue="$(free_base "$main")"
for p in main rescue; do
  "$bin/omniclaw" --profile "$p" --secrets-file setup >/dev/null
done
"$bin/omniclaw" --profile main config set gateway.port "$main" >/dev/null
"$bin/omniclaw" --profile rescue config set gateway.port "$rescue" >/dev/null

export NO_AT_BRIDGE=1 GDK_BACKEND=x11 WEBKIT_DISABLE_COMPOSITING_MODE=1
now_ms() { date +%s%3N; }

echo "cold start to tray registered (ms), $runs runs:"
for run in $(seq 1 "$runs"); do
  before="$(grep -c '^registered' "$work/watch.log" || true)"
  start="$(now_ms)"
  "$bin/omniclaw-desktop" --hidden >/dev/null 2>&1 &
  app=$!
  while [ "$(grep -c '^registered' "$work/watch.log" || true)" -le "$before" ]; do sleep 0.005; done
  end="$(now_ms)"
  echo "  run $run: $((end - start))"
  kill "$app"; wait "$app" 2>/dev/null || true
  sleep 0.5
done

# Memory: both gateways start with the app, the window stays closed.
printf '{"startWithApp": ["main", "rescue"]}\n' >"$HOME/.omniclaw/desktop.json"
"$bin/omniclaw-desktop" --hidden >/dev/null 2>&1 &
app=$!
pids+=("$app")
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 200); do listening "$main" && listening "$rescue" && break; sleep 0.05; done
listening "$main" && listening "$rescue" || { echo "bench-desktop: the gateways did not start" >&2; exit 1; }
sleep 5
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
own="$(rss_kb "$app")"
children=0
for child in $(pgrep -P "$app" || true); do
  children=$((children + $(rss_kb "$child")))
done
echo "RSS with the window closed and two gateways running:"
echo "  omniclaw-desktop: $((own / 1024)) MB"
echo "  its helper processes (web view): $((children / 1024)) MB"
echo "  total: $(((own + children) / 1024)) MB"

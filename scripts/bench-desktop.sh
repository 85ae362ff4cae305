#!/usr/bin/env bash
# Measures the desktop app: cold start to the tray icon registered on D-Bus,
# memory (RSS) with the window closed and two gateways running (before and
# after the dashboard was opened and closed, then with the chat page open
# and after it was closed), and how fast the tray shows a gateway started
# from a terminal. main's assistant answers from the model-provider double
# (`cargo build -p omniclaw-agent --features double --bin provider-double`).
# Runs in a private D-Bus session and virtual display against a temporary
# home with a `main` and a `rescue` profile that start with the app.
#
# usage: scripts/bench-desktop.sh [RUNS]        (default 5)
#        PROFILE=release scripts/bench-desktop.sh   (binaries from target/release)
set -euo pipefail

bin="${CARGO_TARGET_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target}/${PROFILE:-debug}"
runs="${1:-5}"
# shellcheck source=scripts/desktop-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/desktop-env.sh"
desktop_env bench-desktop 1280x800x24 "$bin"

main="$(free_base)"
rescue="$(free_base -- "$main")"
for p in main rescue; do
  "$bin/omniclaw" --profile "$p" --secrets-file setup >/dev/null
done
"$bin/omniclaw" --profile main config set gateway.port "$main" >/dev/null
"$bin/omniclaw" --profile rescue config set gateway.port "$rescue" >/dev/null
assistant_on_double "$bin" --profile main -- "Hello! This reply comes from the model-provider double."

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
# The app and every process it started (the web view's helpers), in kB.
report() {
  local own children=0 child
  own="$(rss_kb "$app")"
  for child in $(pgrep -P "$app" || true); do
    children=$((children + $(rss_kb "$child" || echo 0)))
  done
  echo "RSS with two gateways running, $1:"
  echo "  omniclaw-desktop: $((own / 1024)) MB"
  echo "  its helper processes (web view): $((children / 1024)) MB"
  echo "  total: $(((own + children) / 1024)) MB"
}
report "dashboard never opened"

# Closes the dashboard as a window manager would, waits until it is gone,
# then 5 s more for its memory to be returned.
close_dashboard() {
  "$py" "$root/scripts/x11-close.py" "$1"
  for _ in $(seq 1 100); do
    xdotool search --onlyvisible --name '^OmniClaw$' >/dev/null 2>&1 || break
    sleep 0.1
  done
  sleep 5
}

# A gateway started from a terminal: from `omniclaw gateway` to the tray
# showing it as external (and back to stopped after SIGTERM).
work_port="$(free_base -- "$main" "$rescue")"
"$bin/omniclaw" --profile work --secrets-file setup --port "$work_port" >/dev/null
echo "external change → tray updated (ms, from spawning \`omniclaw --profile work gateway\` to its tray label), $runs runs:"
"$py" "$root/scripts/tray-dbus.py" latency "work — running · external" "work — stopped" "$runs" \
  -- "$bin/omniclaw" --profile work gateway | sed 's/^/  /'

# Open the dashboard from the tray, as a user would, then close its window.
item="$(tray_item "Open dashboard")"
"$py" "$root/scripts/tray-dbus.py" click "$item"
window="$(dashboard_window)"
[ -n "$window" ] || { echo "bench-desktop: the dashboard never appeared" >&2; exit 1; }
sleep 5
close_dashboard "$window"
report "after opening and closing the dashboard"

# The chat: "Chat…" in main's submenu opens the dashboard on it; a message
# is sent and answered, the RSS read with the page open, then the window
# is closed.
chat="$(tray_sub_item "main — " "Chat…")"
[ -n "$chat" ] || { echo "bench-desktop: no \"Chat…\" item for main in the tray" >&2; exit 1; }
"$py" "$root/scripts/tray-dbus.py" click "$chat"
window="$(dashboard_window)"
[ -n "$window" ] || { echo "bench-desktop: the chat never appeared" >&2; exit 1; }
sleep 3
xdotool windowfocus --sync "$window" type --delay 20 "Hello there"
xdotool key ctrl+Return
sleep 5
report "with the chat page open (one message answered)"
close_dashboard "$window"
report "after the chat page was opened and closed"

#!/usr/bin/env bash
# Renders screenshots of the desktop dashboard for the README: the gateway
# cards (main running, rescue stopped), the port map with a conflict, and
# the first step of the rescue-bot wizard.
# Runs the real app in a private D-Bus session and virtual display, against
# a temporary home; nothing of the caller's own profiles is read or touched.
#
# usage: scripts/screenshots.sh [OUT_DIR]     (default docs/screenshots)
# needs: Xvfb, dbus-daemon, xdotool, ImageMagick `import`, python3-dbus;
#        the debug binaries (cargo build -p omniclaw-cli -p omniclaw-desktop,
#        or CARGO_TARGET_DIR pointing at another build).
set -euo pipefail

out="${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/docs/screenshots}"
bin="${CARGO_TARGET_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target}/debug"
for tool in import; do
  command -v "$tool" >/dev/null || { echo "screenshots: $tool missing: run scripts/install-deps.sh" >&2; exit 1; }
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
# shellcheck source=scripts/desktop-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/desktop-env.sh"
desktop_env screenshots 1280x900x24 "$bin"

# Two profiles: main on the manual's 18789 (or a free base when that is
# taken), rescue 20 ports up, inside main's CDP range: a conflict to show.
base="$(free_base 18789 28789)"
"$bin/omniclaw" --profile main --secrets-file setup >/dev/null
"$bin/omniclaw" --profile main config set gateway.port "$base" >/dev/null
"$bin/omniclaw" --profile rescue --secrets-file setup >/dev/null
"$bin/omniclaw" --profile rescue config set gateway.port "$((base + 20))" >/dev/null
printf '{"startWithApp": ["main"]}\n' >"$HOME/.omniclaw/desktop.json"

"$bin/omniclaw-desktop" >"$work/app.log" 2>&1 &
pids+=("$!")

window="$(dashboard_window)"
[ -n "$window" ] || { cat "$work/app.log" >&2; echo "screenshots: the dashboard window never appeared" >&2; exit 1; }
xdotool windowsize "$window" 1000 700 windowmove "$window" 0 0
sleep 3   # let main start and the page render

import -window "$window" "$out/dashboard.png"

# The tray's warning item opens the port map, as a user would reach it.
warning="$(tray_item "⚠")"
[ -n "$warning" ] || { echo "screenshots: no conflict warning in the tray" >&2; exit 1; }
"$py" "$root/scripts/tray-dbus.py" click "$warning"
sleep 1.5
import -window "$window" "$out/port-map.png"

# "Set up rescue bot…" opens the wizard's first step.
setup="$(tray_item "Set up rescue bot")"
[ -n "$setup" ] || { echo "screenshots: no \"Set up rescue bot…\" item in the tray" >&2; exit 1; }
"$py" "$root/scripts/tray-dbus.py" click "$setup"
sleep 1.5
import -window "$window" "$out/rescue-wizard.png"

echo "screenshots: wrote $out/dashboard.png, $out/port-map.png and $out/rescue-wizard.png"

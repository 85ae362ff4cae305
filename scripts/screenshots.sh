#!/usr/bin/env bash
# Renders screenshots of the desktop dashboard for the README: a healthy
# setup (the main bot on the default profile, running; the rescue bot on
# profile `rescue`, and a remote gateway), its port map, the About
# panel with the versions, the remote gateway's card, the first step of the rescue-bot wizard,
# in a picture of its own, a port conflict with its fix, and the chat with
# the main bot's assistant (on the model-provider double): a command
# waiting for approval, then the reply.
# Runs the real app in a private D-Bus session and virtual display, against
# a temporary home; nothing of the caller's own profiles is read or touched.
#
# usage: scripts/screenshots.sh [OUT_DIR]     (default docs/screenshots)
# needs: Xvfb, dbus-daemon, xdotool, ImageMagick `import`, python3-dbus;
#        the debug binaries (cargo build -p omniclaw-cli -p omniclaw-desktop
#        and cargo build -p omniclaw-agent --features double --bin
#        provider-double, or CARGO_TARGET_DIR pointing at another build).
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

# The manual's layout: the main bot on the default profile (18789, or a
# free base when that is taken), the rescue bot on profile `rescue` (19789,
# or the next free slot). Both isolated: a healthy first look.
base="$(free_base 18789 28789)"
"$bin/omniclaw" --secrets-file setup --port "$base" >/dev/null
"$bin/omniclaw" --profile rescue --secrets-file setup >/dev/null
printf '{"startWithApp": ["default"]}\n' >"$HOME/.omniclaw/desktop.json"
# The main bot's assistant first asks to run a command (exec in ask mode:
# an approval), then answers every message with this reply.
reply="$(cat <<'MD'
The root disk has **38 GB free** of 120 GB:

- logs take *2.1 GB*
- `omniclaw logs` shows what wrote them; see [the manual](https://docs.openclaw.ai)

Raw HTML such as <b>this</b> stays text.
MD
)"
assistant_on_double "$bin" -- "$reply" --call exec '{"command": "df -h /"}'
"$bin/omniclaw" config set tools.exec.mode '"ask"' >/dev/null

# A remote gateway beside them, dialled at its URL (here the main bot's
# own gateway stands in for one on another machine).
"$bin/omniclaw" secrets get gateway.auth.token |
  "$bin/omniclaw" --secrets-file remote add vps --url "ws://127.0.0.1:$base" --token-stdin >/dev/null

# Started as a user who linked the build into ~/.local/bin would: the
# About panel shows the CLI beside that path.
mkdir -p "$HOME/.local/bin"
ln -s "$bin/omniclaw" "$bin/omniclaw-desktop" "$HOME/.local/bin/"
"$HOME/.local/bin/omniclaw-desktop" >"$work/app.log" 2>&1 &
pids+=("$!")

window="$(dashboard_window)"
[ -n "$window" ] || { cat "$work/app.log" >&2; echo "screenshots: the dashboard window never appeared" >&2; exit 1; }
xdotool windowsize "$window" 1000 700 windowmove "$window" 0 0
sleep 3   # let the main gateway start and the page render

import -window "$window" "$out/dashboard.png"

# The port map, reached from the menu as a user would ("Open dashboard",
# then its tab): every surface of both profiles, no conflict.
xdotool mousemove --window "$window" 224 85 click 1
sleep 1.5
import -window "$window" "$out/port-map.png"

# Settings: About OmniClaw, the versions side by side.
xdotool mousemove --window "$window" 310 85 click 1
sleep 1.5
import -window "$window" "$out/about.png"

# Back on the gateways page, down to the remote gateway's card.
xdotool mousemove --window "$window" 60 85 click 1
sleep 1
xdotool mousemove --window "$window" 500 500 click 5 click 5 click 5 click 5 click 5
sleep 1
import -window "$window" "$out/remote.png"
xdotool click 4 click 4 click 4 click 4 click 4

# "Set up rescue bot…" opens the wizard's first step.
setup="$(tray_item "Set up rescue bot")"
[ -n "$setup" ] || { echo "screenshots: no \"Set up rescue bot…\" item in the tray" >&2; exit 1; }
"$py" "$root/scripts/tray-dbus.py" click "$setup"
sleep 1.5
import -window "$window" "$out/rescue-wizard.png"

# "Chat…" in the main gateway's submenu opens the chat on it; a message
# typed and sent with Ctrl+Enter. The assistant asks to run a command:
# the approval waits on the page; "Allow once", then the streamed reply
# is rendered with the tool call folded.
chat="$(tray_sub_item "default — " "Chat…")"
[ -n "$chat" ] || { echo "screenshots: no \"Chat…\" item for the main gateway in the tray" >&2; exit 1; }
"$py" "$root/scripts/tray-dbus.py" click "$chat"
sleep 1.5
xdotool windowfocus --sync "$window" type --delay 20 "How much disk space is left?"
xdotool key ctrl+Return
sleep 3
import -window "$window" "$out/approval.png"
xdotool mousemove --window "$window" 84 266 click 1
sleep 3
import -window "$window" "$out/chat.png"

# "Set up assistant…" opens the assistant wizard; its model step, for the
# rescue profile (no model yet) on "another server" (the double): the
# models fetched, one tested, the reply and its cost shown.
assistant="$(tray_item "Set up assistant")"
[ -n "$assistant" ] || { echo "screenshots: no \"Set up assistant…\" item in the tray" >&2; exit 1; }
"$py" "$root/scripts/tray-dbus.py" click "$assistant"
xdotool windowsize "$window" 1000 900
sleep 1.5
xdotool mousemove --window "$window" 350 256 click 1 key ctrl+a type --delay 20 "rescue"
xdotool mousemove --window "$window" 43 517 click 1
xdotool mousemove --window "$window" 350 550 click 1 type --delay 10 "http://$(head -n1 "$work/double.addr")/v1"
xdotool mousemove --window "$window" 108 627 click 1
sleep 2
xdotool mousemove --window "$window" 120 752 click 1
sleep 2
# Down to the reply's cost line.
xdotool mousemove --window "$window" 600 700 click 5 click 5 click 5
sleep 0.5
import -window "$window" "$out/assistant-wizard.png"
xdotool windowsize "$window" 1000 700

# A conflict, in a picture of its own: rescue moved into the main
# gateway's CDP range (forced: `config set` refuses a conflict), and the
# tray's warning item opens the port map with the fix.
"$bin/omniclaw" --profile rescue config set gateway.port "$((base + 20))" --force >/dev/null 2>&1
sleep 2
warning="$(tray_item "⚠")"
[ -n "$warning" ] || { echo "screenshots: no conflict warning in the tray" >&2; exit 1; }
"$py" "$root/scripts/tray-dbus.py" click "$warning"
sleep 1.5
import -window "$window" "$out/port-conflict.png"

echo "screenshots: wrote $out/dashboard.png, $out/port-map.png, $out/about.png, $out/remote.png, $out/rescue-wizard.png, $out/port-conflict.png, $out/approval.png, $out/chat.png and $out/assistant-wizard.png"

#!/usr/bin/env bash
# Sets up a fresh machine and runs OmniClaw.
#
# With a display ($DISPLAY or $WAYLAND_DISPLAY) it builds and starts the
# desktop tray app `omniclaw-desktop`; without one it builds and runs the
# headless `omniclaw` CLI. Arguments are passed through to the program; the
# CLI defaults to `--help` when none are given.
#
#   scripts/run.sh                                   # tray app, or `omniclaw --help`
#   scripts/run.sh --profile rescue gateway --port 19001
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/scripts/install-deps.sh"

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck source=/dev/null
  . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 ||
  { echo "run: error: cargo not found: install Rust (https://rustup.rs) and re-run" >&2; exit 1; }

if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  echo "run: display found, building and starting omniclaw-desktop (release)" >&2
  exec cargo run --release -p omniclaw-desktop --bin omniclaw-desktop -- "$@"
fi

if [ "$#" -eq 0 ]; then
  set -- --help
fi
echo "run: no display, building and running the omniclaw CLI (release): omniclaw $*" >&2
exec cargo run --release -p omniclaw-cli --bin omniclaw -- "$@"

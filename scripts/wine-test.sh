#!/usr/bin/env bash
# The Windows tests that can run here: the core's unit tests and the OS
# crate's (its pure and command-runner tests), built for
# x86_64-pc-windows-gnu and run under Wine. Tests that need a real Windows
# (its services, its credential store, its lock and TCP-table semantics)
# are ignored there, each with its reason. Then the Windows installer's
# hooks (the CLI onto the user's PATH and off again), built into an
# installer with makensis and run under Wine (tests/windows_installer.rs).
#
# usage: scripts/wine-test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

command -v wine >/dev/null || { echo "wine-test: wine is missing: run scripts/install-deps.sh" >&2; exit 1; }

# A prefix of our own, made once (wineboot takes a few seconds).
export WINEPREFIX="$root/target/wine-prefix"
export WINEDEBUG=-all
if [ ! -d "$WINEPREFIX/drive_c/windows/system32" ]; then
  echo "== making the Wine prefix target/wine-prefix" >&2
  wineboot --init >/dev/null 2>&1 || true
  wineserver --wait || true
fi
dll="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$dll" ] || [ scripts/wine/bcryptprimitives.c -nt "$dll" ]; then
  x86_64-w64-mingw32-gcc -O2 -shared -Wl,--kill-at -o "$dll" scripts/wine/bcryptprimitives.c -ladvapi32
fi

# Under Wine, `cargo metadata` is out of reach of insta: name the workspace.
export INSTA_WORKSPACE_ROOT="$root" INSTA_UPDATE=no
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
# Warnings fail here as in the Windows check (dependencies keep their own).
RUSTFLAGS="-D warnings" cargo test --locked --target x86_64-pc-windows-gnu -p omniclaw-core -p omniclaw-os --no-fail-fast "$@"

# The installer's hooks: a test of the host's workspace, run here because it
# needs this Wine prefix (and nothing else may use the prefix meanwhile).
cargo test --locked -p omniclaw-tests --test windows_installer -- --ignored

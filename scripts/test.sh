#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what is missing,
# checks formatting and lints, then runs every test of the workspace (unit,
# black-box CLI, gateway protocol, desktop) inside a private desktop session.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if [ -f "$HOME/.cargo/env" ] && ! command -v cargo >/dev/null 2>&1; then
  # shellcheck source=/dev/null
  . "$HOME/.cargo/env"
fi

# The real OpenClaw CLI, for the protocol compatibility test (about a minute
# and 900 MB on the first run; kept in the ignored .tools/ folder).
if [ ! -x .tools/openclaw/bin/openclaw ]; then
  echo "== installing the real OpenClaw CLI into .tools/openclaw"
  scripts/install-openclaw.sh .tools/openclaw >/dev/null
fi

# tauri-driver, the WebDriver server the dashboard test drives the desktop
# app through (with WebKitWebDriver from webkit2gtk-driver); built once into
# the ignored .tools/ folder.
if [ ! -x .tools/cargo/bin/tauri-driver ]; then
  echo "== installing tauri-driver into .tools/cargo"
  cargo install tauri-driver --locked --root .tools/cargo >/dev/null 2>&1 ||
    { echo "test: cargo install tauri-driver failed" >&2; exit 1; }
fi

# CI builds once from a fresh clone: an incremental cache only takes disk.
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL=0
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo check for Windows (x86_64-pc-windows-gnu)"
# Platform code stays behind cfg: the libraries and binaries must build for
# Windows too, warnings included (dependencies keep their own lints).
RUSTFLAGS="-D warnings" cargo check --workspace --lib --bins --target x86_64-pc-windows-gnu --locked
echo "== cargo build (the binaries the black-box tests run)"
cargo build --workspace --bins --locked
echo "== cargo test"
scripts/session.sh cargo test --workspace --locked --no-fail-fast
echo "== Windows tests under Wine (the core and OS crates)"
scripts/wine-test.sh
echo "== the installed package (alone: it builds the packages and installs one)"
scripts/session.sh cargo test --locked --test package -- --ignored

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

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
scripts/session.sh cargo test --workspace --locked

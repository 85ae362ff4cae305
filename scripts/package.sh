#!/usr/bin/env bash
# Builds OmniClaw's Linux packages, .deb and .rpm, with Tauri's bundler:
# the tray app and the `omniclaw` CLI (both in /usr/bin), the desktop entry,
# icons in every size and the licence. The other systems' bundles (NSIS,
# dmg) are configured in src-tauri/tauri.<os>.conf.json and are built on
# their own system; on Windows (Git Bash) `--bundles nsis` stages the
# `.exe` binaries where tauri.windows.conf.json takes the CLI from.
#
# usage: scripts/package.sh [--profile dist|release|dev] [--bundles deb,rpm]
#   --profile dist   what releases ship (full LTO, stripped); the default
#   --profile dev    a quick package of the debug build (its debug info
#                    stripped), for tests
# Prints the path of each package built on stdout, one per line; all else
# goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

profile=dist
bundles=deb,rpm
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="${2:?--profile needs dist, release or dev}"; shift 2 ;;
    --bundles) bundles="${2:?--bundles needs a list such as deb,rpm}"; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package: unknown argument '$1' (see scripts/package.sh --help)" >&2; exit 2 ;;
  esac
done
case "$profile" in
  dev) out=debug ;;
  dist | release) out=$profile ;;
  *) echo "package: unknown profile '$profile': use dist, release or dev" >&2; exit 2 ;;
esac

# The pinned Tauri CLI: npm ships it prebuilt, so no one compiles it.
cli="$root/.tools/tauri-cli"
if [ ! -x "$cli/node_modules/.bin/tauri" ] ||
  ! cmp -s scripts/tauri-cli/package-lock.json "$cli/package-lock.json"; then
  echo "== installing the Tauri CLI (scripts/tauri-cli/package-lock.json) into .tools/tauri-cli" >&2
  rm -rf "$cli"
  mkdir -p "$cli"
  cp scripts/tauri-cli/package.json scripts/tauri-cli/package-lock.json "$cli/"
  (cd "$cli" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi

# Where cargo builds: CARGO_TARGET_DIR when set (relative to the repository).
built="${CARGO_TARGET_DIR:-target}"

echo "== cargo build --profile $profile: omniclaw, omniclaw-desktop (embedded web UI)" >&2
cargo build --locked --profile "$profile" -p omniclaw-cli -p omniclaw-desktop \
  --features omniclaw-desktop/custom-protocol >&2

# The bundler takes the binaries from <target dir>/release; a staging
# target dir of their own keeps any profile's build untouched (the bundler
# writes into the app's binary which kind of package it is in).
stage="$root/target/package"
rm -rf "$stage"
mkdir -p "$stage/release"
exe=
case "$(uname -s)" in
  MINGW* | MSYS* | CYGWIN*) exe=.exe ;;
esac
cp "$built/$out/omniclaw$exe" "$built/$out/omniclaw-desktop$exe" "$stage/release/"
if [ "$profile" = dev ]; then
  strip --strip-debug "$stage/release/omniclaw$exe" "$stage/release/omniclaw-desktop$exe"
fi

echo "== bundling $bundles" >&2
# The package is `omniclaw` (the bundler names it after the product name,
# which the app itself keeps as "OmniClaw").
(cd src-tauri && CARGO_TARGET_DIR="$stage" "$cli/node_modules/.bin/tauri" bundle --ci \
  --bundles "$bundles" \
  --config '{"productName": "omniclaw", "mainBinaryName": "omniclaw-desktop"}') >&2

find "$stage/release/bundle" -type f \( -name '*.deb' -o -name '*.rpm' -o -name '*-setup.exe' \) | sort

#!/usr/bin/env bash
# Installs what building and testing the whole OmniClaw workspace needs on a
# fresh Debian 12: the Tauri/WebKitGTK build libraries, a virtual X display,
# a D-Bus session with a Secret Service (gnome-keyring), a browser and its
# WebDriver, systemd-analyze, OpenSSH's server and client (the remote
# gateway tests run a real sshd on a loopback port; the package's own
# service is not needed), rustfmt + clippy for the Rust toolchain, and
# the mingw-w64 toolchain with Rust's x86_64-pc-windows-gnu target for the
# Windows compile lane.
#
# Idempotent and non-interactive: when everything is already there it touches
# neither apt nor rustup, and it always ends with one line saying what it did.
set -euo pipefail

PACKAGES=(
  build-essential
  pkg-config
  libwebkit2gtk-4.1-dev
  libayatana-appindicator3-dev
  librsvg2-dev
  libxdo-dev
  libssl-dev
  libsecret-1-dev
  libdbus-1-dev
  xvfb
  xauth
  dbus
  dbus-x11
  gnome-keyring
  webkit2gtk-driver
  chromium
  systemd
  python3
  python3-dbus
  python3-gi
  xdotool
  imagemagick
  curl
  ca-certificates
  gcc-mingw-w64-x86-64
  # The package test: rpm reads the .rpm scripts/package.sh builds;
  # binutils strips the debug build it packages.
  rpm
  binutils
  # The Windows tests run under Wine (scripts/wine-test.sh), the Windows
  # installer's hooks in an installer makensis builds.
  wine
  wine64
  nsis
  # The remote gateway test runs a real sshd.
  openssh-client
  openssh-server
)
RUST_COMPONENTS=(rustfmt clippy)
# The Windows compile lane: the workspace is checked for this target too.
RUST_TARGETS=(x86_64-pc-windows-gnu)

say() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: error: %s\n' "$*" >&2; exit 1; }

is_installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

# Runs a command as root: directly when we are root, through non-interactive
# sudo otherwise (there is no terminal to type a password into).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@"
  else
    die "need root to install packages: run this script as root or install sudo"
  fi
}

command -v dpkg-query >/dev/null 2>&1 ||
  die "dpkg-query not found: this script supports Debian 12 (or a Debian-based system) only"

missing=()
for package in "${PACKAGES[@]}"; do
  is_installed "$package" || missing+=("$package")
done

apt_done="all ${#PACKAGES[@]} system packages already installed"
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another apt/dpkg run (for example unattended upgrades) instead of failing.
  apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  # apt's chatter goes to a log that is shown only when a step fails.
  apt_log="$(mktemp)"
  trap 'rm -f "$apt_log"' EXIT
  as_root apt-get "${apt_opts[@]}" update -qq </dev/null >"$apt_log" 2>&1 || {
    cat "$apt_log" >&2
    die "apt-get update failed: check the network and /etc/apt/sources.list"
  }
  as_root apt-get "${apt_opts[@]}" install -y -qq "${missing[@]}" </dev/null >"$apt_log" 2>&1 || {
    cat "$apt_log" >&2
    die "apt-get install failed for: ${missing[*]}"
  }
  for package in "${missing[@]}"; do
    is_installed "$package" || die "package $package is still not installed after apt-get install"
  done
  apt_done="installed ${missing[*]}"
fi

# Make cargo visible when rustup installed it for this user but the shell
# profile was not sourced (CI, cron, sudo).
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck source=/dev/null
  . "$HOME/.cargo/env"
fi

rust_done="rustfmt and clippy present"
if command -v rustup >/dev/null 2>&1; then
  installed_components="$(rustup component list --installed 2>/dev/null || true)"
  absent=()
  for component in "${RUST_COMPONENTS[@]}"; do
    grep -q "^${component}\(-\|$\)" <<<"$installed_components" || absent+=("$component")
  done
  if [ "${#absent[@]}" -gt 0 ]; then
    rustup component add "${absent[@]}" </dev/null >/dev/null 2>&1 ||
      die "rustup component add ${absent[*]} failed"
    rust_done="added rust components ${absent[*]}"
  fi
  installed_targets="$(rustup target list --installed 2>/dev/null || true)"
  for target in "${RUST_TARGETS[@]}"; do
    if ! grep -qx "$target" <<<"$installed_targets"; then
      rustup target add "$target" </dev/null >/dev/null 2>&1 ||
        die "rustup target add $target failed"
      rust_done="$rust_done; added the rust target $target"
    fi
  done
else
  cargo fmt --version >/dev/null 2>&1 ||
    die "rustfmt is missing and rustup is not installed: install rustfmt for your Rust toolchain"
  cargo clippy --version >/dev/null 2>&1 ||
    die "clippy is missing and rustup is not installed: install clippy for your Rust toolchain"
fi

say "$apt_done; $rust_done"

#!/usr/bin/env bash
# Instructions an `omniclaw gateway` executes per chat turn, counted by
# callgrind. Unlike CPU time on a shared machine the count repeats to a few
# parts in a hundred thousand, so two builds are compared with one run each
# (how the `dist` profile was checked for "without losing speed").
#
# The chat bench (crates/omniclaw-cli/benches/chat.rs) runs with its first
# gateway under `valgrind --tool=callgrind`: 2,301 turns (100 warm-up,
# 20 sessions of 100 `chat.send` turns, 201 `agent` turns) against the
# provider double; its later parts run natively. The count includes the
# gateway's start and stop. Needs valgrind (`apt-get install valgrind`) and
# the provider double (`cargo build --release -p omniclaw-agent --features
# double --bin provider-double`).
#
# usage: scripts/bench-instructions.sh [OMNICLAW_BINARY ...]
#        (default target/release/omniclaw; several binaries are measured in turn)
# Keep `callgrind_annotate` output: OUT=DIR scripts/bench-instructions.sh BIN
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
command -v valgrind >/dev/null || {
  echo "valgrind is missing: apt-get install valgrind" >&2
  exit 2
}
[ -x "$target/release/provider-double" ] || {
  echo "$target/release/provider-double is missing: cargo build --release -p omniclaw-agent --features double --bin provider-double" >&2
  exit 2
}
bench="$(cd "$root" && cargo bench -p omniclaw-cli --bench chat --no-run --locked --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "chat" and m.get("executable"):
        print(m["executable"])')"
[ -n "$bench" ] || {
  echo "the chat bench did not build: cargo bench -p omniclaw-cli --bench chat --no-run" >&2
  exit 1
}
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
turns=2301

[ $# -gt 0 ] || set -- "$target/release/omniclaw"
for bin in "$@"; do
  bin="$(realpath "$bin")"
  tag="$(basename "$(dirname "$bin")")-$(date +%s)"
  wrapper="$out/$tag.sh"
  # Only the bench's first gateway runs under callgrind; its setup commands
  # and later gateways run natively.
  cat >"$wrapper" <<EOF
#!/bin/sh
case " \$* " in
  *" --profile bench gateway "*) exec valgrind --tool=callgrind --callgrind-out-file="$out/$tag.out" --log-file="$out/$tag.log" "$bin" "\$@";;
esac
exec "$bin" "\$@"
EOF
  chmod +x "$wrapper"
  OMNICLAW_BENCH_BIN="$wrapper" "$bench" --bench --no-openclaw >"$out/$tag.bench" 2>&1 || {
    echo "the bench failed for $bin; its output: $out/$tag.bench" >&2
    exit 1
  }
  total="$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/$tag.log")"
  [ -n "$total" ] || {
    echo "callgrind wrote no count for $bin: $out/$tag.log" >&2
    exit 1
  }
  echo "$bin: $total instructions, $((total / turns)) per turn ($turns turns, start and stop included)"
done
[ -n "${OUT:-}" ] || rm -rf "$out"

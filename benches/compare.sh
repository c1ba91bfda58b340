#!/usr/bin/env bash
# Compares wsd with the tokio-tungstenite peer: builds wsd, wsload and the
# peer (benches/peers/tungstenite-peer, from the crate registry, kept out
# of the workspace), then runs the scenarios of benches/compare.toml with
# `wsload compare`, which starts a fresh server per round, pins servers to
# CPU 0 and itself to CPU 1, reads server CPU and RSS from /proc, and stops
# what it starts (Ctrl-C included).
#
# Usage: benches/compare.sh [scenario...]   names from benches/compare.toml
#                                           (default: all); `sizes` stands
#                                           for the size sweep, echo-1k
#                                           to echo-16m
# Environment: DURATION (each scenario's measured window; default the
# file's), ROUNDS (default the file's), OUT (default target/compare): where
# compare.json, compare.html and the charts (svg/) go.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(nproc)" -ge 2 ] || { echo "compare: needs 2 CPUs to pin server and load apart" >&2; exit 2; }

# The scenario file's commands find the binaries under $TARGET.
export TARGET=${CARGO_TARGET_DIR:-target}
echo "== building wsd, wsload and the tokio-tungstenite peer (release)"
cargo build --release -q -p wsd -p wsload
cargo build --release -q --manifest-path benches/peers/tungstenite-peer/Cargo.toml --target-dir "$TARGET/peers"

OUT=${OUT:-$TARGET/compare}
mkdir -p "$OUT"
args=(--scenarios benches/compare.toml
      --json "$OUT/compare.json" --html "$OUT/compare.html" --svg "$OUT/svg")
[ -z "${ROUNDS:-}" ] || args+=(--rounds "$ROUNDS")
[ -z "${DURATION:-}" ] || args+=(--duration "$DURATION")
names=()
for name in "$@"; do
    case $name in
        sizes) names+=(echo-1k echo-16k echo-64k echo-1m echo-16m) ;;
        *) names+=("$name") ;;
    esac
done
[ ${#names[@]} -eq 0 ] || args+=(--only "$(IFS=,; echo "${names[*]}")")
echo "== wsload compare ${args[*]}"
echo "   (report: $OUT/compare.html; again later: wsload report $OUT/compare.json)"
exec "$TARGET/release/wsload" compare "${args[@]}"

#!/usr/bin/env bash
# Compares wsd with tokio-tungstenite echo and broadcast servers
# (current_thread runtime, benches/peers/tungstenite-peer, built here from the
# crate registry and kept out of the workspace) using `wsload compare`.
#
# The servers run pinned to CPU 0 and wsload to CPU 1 (taskset), so the
# figure that matters, server CPU time per message from /proc, is not mixed
# with the load tool's. Wall-clock rates on a shared VM swing; compare the
# ratios within one run.
#
# Usage: benches/compare.sh [scenario...]   scenarios: echo1 echo16 broadcast idle
#                                           (default: all)
# Environment: DURATION (default 5s), ROUNDS (default 3), IDLE_CONNS (10000),
# BROADCAST_RATES (default "2000 10000 20000" messages/s).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
IDLE_CONNS=${IDLE_CONNS:-10000}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(echo1 echo16 broadcast idle)

command -v taskset >/dev/null || { echo "compare: needs taskset (util-linux)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "compare: needs 2 CPUs to pin server and load apart" >&2; exit 2; }

echo "== building wsd, wsload and the tokio-tungstenite peer (release)"
cargo build --release -q -p wsd -p wsload
PEER_TARGET=${CARGO_TARGET_DIR:-target}/peers
cargo build --release -q --manifest-path benches/peers/tungstenite-peer/Cargo.toml --target-dir "$PEER_TARGET"
BIN=${CARGO_TARGET_DIR:-target}/release

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# start NAME CMD...: runs CMD on CPU 0, waits for its "ws://ADDR" banner,
# and sets URL and PID.
start() {
  local name=$1 out; shift
  out=$(mktemp)
  taskset -c 0 "$@" >"$out" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  for _ in $(seq 100); do
    URL=$(grep -o 'ws://[0-9.:]*' "$out" | head -n1 || true)
    [ -n "$URL" ] && break
    sleep 0.05
  done
  [ -n "$URL" ] || { echo "compare: $name did not start:" >&2; cat "$out" >&2; exit 1; }
  URL=$URL/
  echo "   $name: $URL (pid $PID)"
}

load() { taskset -c 1 "$BIN/wsload" "$@"; }

echo "== machine: $(nproc) CPUs, $(uname -r), $(date -u +%Y-%m-%d)"
start wsd "$BIN/wsd" --listen 127.0.0.1:0 --log-level warn
WSD_URL=$URL WSD_PID=$PID
start tungstenite "$PEER_TARGET/release/tungstenite-peer" 127.0.0.1:0
PEER_URL=$URL PEER_PID=$PID

for s in "${SCENARIOS[@]}"; do
  case $s in
    echo1)
      echo; echo "== echo, 100 connections x 32 B, 1 in flight each"
      load compare --rounds "$ROUNDS" echo -c 100 --depth 1 -s 32 -d "$DURATION" \
        --server-pid "$WSD_PID" --server-pid "$PEER_PID" "$WSD_URL" "$PEER_URL" ;;
    echo16)
      echo; echo "== echo, 100 connections x 32 B, 16 in flight each"
      load compare --rounds "$ROUNDS" echo -c 100 --depth 16 -s 32 -d "$DURATION" \
        --server-pid "$WSD_PID" --server-pid "$PEER_PID" "$WSD_URL" "$PEER_URL" ;;
    broadcast)
      # One wsload thread cannot receive much over 2M deliveries/s, so here
      # wsload runs two threads on both CPUs: the servers' CPU time per
      # delivery still comes from /proc. Both servers send a publisher its
      # own messages too.
      start wsd-broadcast "$BIN/wsd" --listen 127.0.0.1:0 --mode broadcast --log-level warn
      BWSD_URL=$URL BWSD_PID=$PID
      start tungstenite-broadcast "$PEER_TARGET/release/tungstenite-peer" 127.0.0.1:0 --broadcast
      BPEER_URL=$URL BPEER_PID=$PID
      # At high rates the peer closes subscribers that lag, so wsload exits
      # 1; the table says whose errors they are, and the script goes on.
      for rate in ${BROADCAST_RATES:-2000 10000 20000}; do
        echo; echo "== broadcast, 1000 subscribers x 32 B, 2 publishers, $rate msg/s"
        "$BIN/wsload" compare --rounds "$ROUNDS" broadcast -t 2 -c 1000 --publishers 2 -R "$rate" \
          -s 32 -d "$DURATION" --server-pid "$BWSD_PID" --server-pid "$BPEER_PID" "$BWSD_URL" "$BPEER_URL" || true
      done ;;
    idle)
      echo; echo "== $IDLE_CONNS idle connections"
      load compare --rounds 1 conns -c "$IDLE_CONNS" -d 2s \
        --server-pid "$WSD_PID" --server-pid "$PEER_PID" "$WSD_URL" "$PEER_URL" ;;
    *) echo "compare: unknown scenario '$s' (echo1 echo16 broadcast idle)" >&2; exit 2 ;;
  esac
done

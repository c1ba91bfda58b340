#!/usr/bin/env bash
# The bus under load, over each engine: two wsd nodes and one redis-server
# (or nats-server) on this machine, one publisher on node A, subscribers
# split evenly over A and B, 32 B messages. Then the same subscribers on
# one node, for the cost of a local delivery. Reports deliveries/s,
# fan-out latency per node, each node's server CPU per delivery and the
# engine's CPU per message, from /proc.
#
# Servers run on CPU 0 and wsload on CPU 1 (taskset). Needs redis-server
# and nats-server (scripts/test.sh installs both); everything started here
# is stopped by PID.
#
# Usage: benches/bus.sh   Environment: ENGINES ("redis nats"), SUBS (1000),
# RATE (2000 msg/s), DURATION (5s), ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINES=${ENGINES:-redis nats}
SUBS=${SUBS:-1000} RATE=${RATE:-2000} DURATION=${DURATION:-5s} ROUNDS=${ROUNDS:-3}
for e in $ENGINES; do
  command -v "$e-server" >/dev/null || { echo "bus.sh: needs $e-server (scripts/test.sh installs it)" >&2; exit 2; }
done
cargo build --release -q -p wsd -p wsload
BIN=${CARGO_TARGET_DIR:-target}/release
OUT=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# CPU seconds (user + system) of a process so far.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
# wsd NAME ARGS...: starts wsd on CPU 0 and waits for its banner; sets PID.
wsd() {
  local name=$1 log="$OUT/$1.log"; shift
  taskset -c 0 "$BIN/wsd" --log-level warn --mode broadcast --listen "127.0.0.1:$1" "${@:2}" >"$log" 2>&1 &
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 100); do grep -q 'listening' "$log" && return; sleep 0.05; done
  echo "bus.sh: $name did not start" >&2; cat "$log" >&2; exit 1
}
# engine NAME: starts its server on CPU 0; sets ENGINE_PID and BUS (the
# wsd flags that join it).
engine() {
  local p; p=$(port)
  case $1 in
    redis)
      taskset -c 0 redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no >"$OUT/redis.log" 2>&1 &
      BUS=(--redis "redis://127.0.0.1:$p") ;;
    nats)
      taskset -c 0 nats-server -a 127.0.0.1 -p "$p" >"$OUT/nats.log" 2>&1 &
      BUS=(--nats "nats://127.0.0.1:$p") ;;
  esac
  ENGINE_PID=$!; PIDS+=("$ENGINE_PID")
  sleep 0.5
}

L_PORT=$(port); wsd L "$L_PORT"; L=$PID
echo "== $SUBS subscribers x 32 B, 1 publisher at $RATE msg/s, $DURATION, $ROUNDS rounds"
printf '%-28s %10s %10s %10s %12s %12s %14s\n' run "dlv/s" "p50 µs" "p99 µs" "A µs/dlv" "B µs/dlv" "engine µs/msg"
for e in $ENGINES; do
  engine "$e"
  A_PORT=$(port); wsd A "$A_PORT" "${BUS[@]}" --node-id A; A=$PID
  B_PORT=$(port); wsd B "$B_PORT" "${BUS[@]}" --node-id B; B=$PID
  for round in $(seq "$ROUNDS"); do
    # Two nodes: the publisher on A, subscribers alternating A, B.
    a0=$(cpu "$A"); b0=$(cpu "$B"); r0=$(cpu "$ENGINE_PID")
    taskset -c 1 "$BIN/wsload" broadcast -c "$SUBS" --publishers 1 -R "$RATE" -s 32 -d "$DURATION" \
      --json "$OUT/two.json" "ws://127.0.0.1:$A_PORT/room" "ws://127.0.0.1:$B_PORT/room" >/dev/null
    a1=$(cpu "$A"); b1=$(cpu "$B"); r1=$(cpu "$ENGINE_PID")
    # One node, the same subscribers: every delivery local.
    l0=$(cpu "$L")
    taskset -c 1 "$BIN/wsload" broadcast -c "$SUBS" --publishers 1 -R "$RATE" -s 32 -d "$DURATION" \
      --json "$OUT/one.json" "ws://127.0.0.1:$L_PORT/room" >/dev/null
    l1=$(cpu "$L")
    python3 - "$OUT" "$a0" "$a1" "$b0" "$b1" "$r0" "$r1" "$l0" "$l1" "$e, round $round" <<'PY'
import json, sys
out, a0, a1, b0, b1, r0, r1, l0, l1, label = sys.argv[1:]
two = json.load(open(f"{out}/two.json"))
one = json.load(open(f"{out}/one.json"))
def us(c0, c1, n):
    return (float(c1) - float(c0)) * 1e6 / n if n else float("nan")
nodes = two["broadcast"]["nodes"]
a, b = nodes[0], nodes[1]
msgs = two["broadcast"]["published"]
print(f"{'two nodes, ' + label:28} {two['broadcast']['deliveries_per_s']:>10.0f}"
      f" {two['latency']['p50_us']:>10.0f} {two['latency']['p99_us']:>10.0f}"
      f" {us(a0, a1, a['deliveries']):>12.3f} {us(b0, b1, b['deliveries']):>12.3f}"
      f" {us(r0, r1, msgs):>14.2f}")
for name, n in (("A (local)", a), ("B (remote)", b)):
    lat = n["latency"]
    print(f"   {name}: {n['subscribers']} subs, {n['deliveries']} deliveries, lost {n['lost']},"
          f" dup {n['duplicated']}, out of order {n['out_of_order']},"
          f" p50 {lat['p50_us']:.0f} µs, p99 {lat['p99_us']:.0f} µs")
ob = one["broadcast"]
print(f"{'one node, ' + label:28} {ob['deliveries_per_s']:>10.0f}"
      f" {one['latency']['p50_us']:>10.0f} {one['latency']['p99_us']:>10.0f}"
      f" {us(l0, l1, ob['deliveries']):>12.3f}")
PY
  done
  kill "$A" "$B" "$ENGINE_PID"
done

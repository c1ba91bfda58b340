#!/usr/bin/env bash
# History (--history) against the live path, and rewinds at join.
#
# 1. Live path: four wsd, the same load on each in turn: 1,000
#    subscribers, one publisher, 32 B messages. In memory: without history
#    and with --history 100; over a Redis this script starts: --redis
#    without history and with --history 100 (Redis Streams). Reports
#    deliveries/s, latency, and each server's CPU per delivery (from
#    /proc), and each pair's ratio.
# 2. Rewind at join, in memory and over Redis: a room filled with 100
#    messages, then 1,000 connections upgrade at once with ?rewind=100;
#    reports the time from the first request sent until every connection
#    has its 100 messages (benches/history_rewind.py).
#
# Servers run on CPU 0 and the clients and Redis on CPU 1 (taskset);
# everything started here is stopped by PID. Needs redis-server
# (scripts/test.sh installs it).
#
# Usage: benches/history.sh   Environment: SUBS (1000), RATE (100 msg/s;
# at 2,000 the server's core is full and the CPU ratio says nothing),
# DURATION (5s), ROUNDS (3), JOINERS (1000).
set -euo pipefail
cd "$(dirname "$0")/.."
SUBS=${SUBS:-1000} RATE=${RATE:-100} DURATION=${DURATION:-5s} ROUNDS=${ROUNDS:-3} JOINERS=${JOINERS:-1000}
cargo build --release -q -p wsd -p wsload
BIN=${CARGO_TARGET_DIR:-target}/release
OUT=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
ulimit -n 8192 2>/dev/null || true

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
# wsd NAME PORT ARGS...: starts wsd on CPU 0 and waits for its banner; sets PID.
wsd() {
  local name=$1 log="$OUT/$1.log"; shift
  taskset -c 0 "$BIN/wsd" --log-level warn --mode broadcast --max-connections 20000 \
    --listen "127.0.0.1:$1" "${@:2}" >"$log" 2>&1 &
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 100); do grep -q 'listening' "$log" && return; sleep 0.05; done
  echo "history.sh: $name did not start" >&2; cat "$log" >&2; exit 1
}

P_REDIS=$(port)
taskset -c 1 redis-server --port "$P_REDIS" --bind 127.0.0.1 --save '' --appendonly no \
  >"$OUT/redis.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 100); do redis-cli -p "$P_REDIS" ping >/dev/null 2>&1 && break; sleep 0.05; done
URL="redis://127.0.0.1:$P_REDIS"
declare -A PID_OF PORT_OF
P=$(port); wsd plain "$P"; PID_OF[plain]=$PID PORT_OF[plain]=$P
P=$(port); wsd history "$P" --history 100; PID_OF[history]=$PID PORT_OF[history]=$P
P=$(port); wsd redis "$P" --redis "$URL" --node-id bench-a; PID_OF[redis]=$PID PORT_OF[redis]=$P
P=$(port); wsd redis-history "$P" --redis "$URL" --node-id bench-b --redis-prefix h: --history 100
PID_OF[redis-history]=$PID PORT_OF[redis-history]=$P
echo "== live path: $SUBS subscribers x 32 B, 1 publisher at $RATE msg/s, $DURATION, $ROUNDS rounds"
printf '%-24s %10s %10s %10s %12s\n' run "dlv/s" "p50 µs" "p99 µs" "µs/dlv"
for round in $(seq "$ROUNDS"); do
  for name in plain history redis redis-history; do
    pid=${PID_OF[$name]} p=${PORT_OF[$name]}
    c0=$(cpu "$pid")
    taskset -c 1 "$BIN/wsload" broadcast -c "$SUBS" --publishers 1 -R "$RATE" -s 32 -d "$DURATION" \
      --json "$OUT/$name.json" "ws://127.0.0.1:$p/room" >/dev/null
    c1=$(cpu "$pid")
    python3 - "$OUT/$name.json" "$c0" "$c1" "$name, round $round" <<'PY' | tee -a "$OUT/table"
import json, sys
path, c0, c1, label = sys.argv[1:]
r = json.load(open(path))
b = r["broadcast"]
n = b.get("deliveries") or sum(x["deliveries"] for x in b.get("nodes", [])) or 1
print(f"{label:24} {b['deliveries_per_s']:>10.0f} {r['latency']['p50_us']:>10.0f}"
      f" {r['latency']['p99_us']:>10.0f} {(float(c1) - float(c0)) * 1e6 / n:>12.3f}")
PY
  done
done
python3 - "$OUT/table" <<'PY'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
med = lambda k: statistics.median(float(r[-1]) for r in rows if r[0] == k + ",")
for base, hist, where in [("plain", "history", "in memory"), ("redis", "redis-history", "over Redis")]:
    p, h = med(base), med(hist)
    print(f"median µs/delivery {where}: without {p:.3f}, --history 100 {h:.3f}: {h / p:.3f}x")
PY
for name in history redis-history; do
  echo "== rewind at join ($name): $JOINERS connections with ?rewind=100, at once"
  pid=${PID_OF[$name]}
  c0=$(cpu "$pid")
  taskset -c 1 python3 benches/history_rewind.py "127.0.0.1:${PORT_OF[$name]}" "$JOINERS" 100
  c1=$(cpu "$pid")
  python3 -c "import sys; print(f'server CPU for the fill and the joins: {(float(sys.argv[2]) - float(sys.argv[1])) * 1e3:.0f} ms')" "$c0" "$c1"
done

#!/usr/bin/env bash
# History (--history) against the live path, and rewinds at join.
#
# 1. Live path: one wsd without history and one with --history 100 (in
#    memory), the same load on each in turn: 1,000 subscribers, one
#    publisher, 32 B messages. Reports deliveries/s, latency, and each
#    server's CPU per delivery (from /proc), and the ratio.
# 2. Rewind at join: a room filled with 100 messages, then 1,000
#    connections upgrade at once with ?rewind=100; reports the time from
#    the first request sent until every connection has its 100 messages
#    (benches/history_rewind.py).
#
# Servers run on CPU 0 and the clients on CPU 1 (taskset); everything
# started here is stopped by PID. The Redis-backed history (issue 23 part
# 2) is not built yet, so there is no Redis row.
#
# Usage: benches/history.sh   Environment: SUBS (1000), RATE (2000 msg/s),
# DURATION (5s), ROUNDS (3), JOINERS (1000).
set -euo pipefail
cd "$(dirname "$0")/.."
SUBS=${SUBS:-1000} RATE=${RATE:-2000} DURATION=${DURATION:-5s} ROUNDS=${ROUNDS:-3} JOINERS=${JOINERS:-1000}
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

P_PLAIN=$(port); wsd plain "$P_PLAIN"; PLAIN=$PID
P_HIST=$(port); wsd history "$P_HIST" --history 100; HIST=$PID
echo "== live path: $SUBS subscribers x 32 B, 1 publisher at $RATE msg/s, $DURATION, $ROUNDS rounds"
printf '%-24s %10s %10s %10s %12s\n' run "dlv/s" "p50 µs" "p99 µs" "µs/dlv"
for round in $(seq "$ROUNDS"); do
  for name in plain history; do
    if [ "$name" = plain ]; then pid=$PLAIN p=$P_PLAIN; else pid=$HIST p=$P_HIST; fi
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
p, h = med("plain"), med("history")
print(f"median µs/delivery: plain {p:.3f}, --history 100 {h:.3f}: {h / p:.3f}x")
PY
echo "== rewind at join: $JOINERS connections with ?rewind=100, at once"
c0=$(cpu "$HIST")
taskset -c 1 python3 benches/history_rewind.py "127.0.0.1:$P_HIST" "$JOINERS" 100
c1=$(cpu "$HIST")
python3 -c "import sys; print(f'server CPU for the fill and the joins: {(float(sys.argv[2]) - float(sys.argv[1])) * 1e3:.0f} ms')" "$c0" "$c1"

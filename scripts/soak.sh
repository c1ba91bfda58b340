#!/usr/bin/env bash
# soak.sh - connection churn against wsd for a while, then check that wsd
# let go of everything. From the repository root:
#
#   scripts/soak.sh [DURATION]        # default 60s (CI); e.g. scripts/soak.sh 10m
#
# Steps: `cargo build --release -p wsd -p wsload`; start wsd (echo mode) on
# 127.0.0.1:0 and read its port from the banner; note its RSS (VmRSS); run
# `wsload churn -c N -d DURATION --server-pid PID --json FILE`, where each of
# the N slots keeps connecting, echoing --messages messages (every byte
# checked) and ending the connection, cleanly (Close 1000) or, for 30% of
# them, abruptly (FIN or RST, sometimes mid-frame); then poll wsd's
# GET /metrics (curl, else python3, else bash's /dev/tcp) until
# wsd_connections_open is back to 1 (the scrape's own connection) and check
# RSS. Checks, each passed or failed:
#
#   wsload exit       wsload exited 0
#   no mismatches     no echoed message differed from what was sent
#   no lost           every message on a connection not dropped by wsload was echoed
#   no unexpected     wsd never closed, reset or ignored a Close on its own
#   no other errors   no other error of any kind (connect failures, timeouts, ...)
#   both endings      some connections ended cleanly and some abruptly
#   conns to zero     wsd_connections_open back to 0 (besides the scrape)
#                     within SOAK_SETTLE seconds (default 10) after the run
#   rss back          VmRSS after <= max(start + 8 MiB, 2 x start): wsd keeps
#                     up to 64 read buffers of 64 KiB (4 MiB) for reuse by
#                     design; the other 4 MiB is allocator slack
#   wsd alive         wsd still running at the end
#
# The last line is `soak: N passed, M failed`. Exit status: 0 all passed,
# 1 some failed, 2 usage or build error.
#
# Environment: SOAK_CONNS (slots, default 200, capped by `ulimit -n`),
# SOAK_MESSAGES (per connection, default 10), SOAK_ABRUPT (percent, default
# 30), SOAK_SETTLE (seconds, default 10), CARGO_TARGET_DIR (where the
# binaries are built). Only loopback is used; the script stops exactly the
# processes it started.

set -euo pipefail

DURATION=${1:-60s}
if [[ $# -gt 1 || ! $DURATION =~ ^[0-9]+(ms|s|m|h)?$ ]]; then
    echo "usage: scripts/soak.sh [DURATION]   (e.g. 60s, 10m)" >&2
    exit 2
fi
CONNS=${SOAK_CONNS:-200}
MESSAGES=${SOAK_MESSAGES:-10}
ABRUPT=${SOAK_ABRUPT:-30}
SETTLE=${SOAK_SETTLE:-10}
RSS_SLACK_KIB=8192

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wsd-soak.XXXXXX")
WSD_PID=
LOAD_PID=

cleanup() {
    # Only what this script started, by PID.
    if [[ -n $LOAD_PID ]] && kill -0 "$LOAD_PID" 2>/dev/null; then
        kill "$LOAD_PID" 2>/dev/null || true
        wait "$LOAD_PID" 2>/dev/null || true
    fi
    if [[ -n $WSD_PID ]] && kill -0 "$WSD_PID" 2>/dev/null; then
        kill "$WSD_PID" 2>/dev/null || true
        wait "$WSD_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "soak: building release wsd and wsload"
if ! cargo build --release -p wsd -p wsload; then
    echo "soak: build failed" >&2
    exit 2
fi

# Each slot is one fd in wsload and one in wsd: stay well inside the limit.
NOFILE=$(ulimit -n)
if [[ $NOFILE != unlimited ]] && ((CONNS > (NOFILE - 64) / 2)); then
    CONNS=$(((NOFILE - 64) / 2))
    echo "soak: ulimit -n is $NOFILE: using $CONNS connection slots"
fi
if ((CONNS < 1)); then
    echo "soak: ulimit -n $NOFILE leaves no room for connections" >&2
    exit 2
fi

# --- wsd ---------------------------------------------------------------
# Created first: the background child opens it only once it runs.
: >"$WORK/wsd.log"
"$BIN/wsd" --listen 127.0.0.1:0 --mode echo >"$WORK/wsd.log" 2>&1 &
WSD_PID=$!
PORT=
for _ in $(seq 100); do
    PORT=$(sed -n 's|^wsd listening on ws://127\.0\.0\.1:\([0-9]*\) (echo mode).*|\1|p' "$WORK/wsd.log" | head -n 1 || true)
    [[ -n $PORT ]] && break
    kill -0 "$WSD_PID" 2>/dev/null || break
    sleep 0.1
done
if [[ -z $PORT ]]; then
    echo "soak: wsd did not start; its log:" >&2
    cat "$WORK/wsd.log" >&2
    exit 2
fi
URL="ws://127.0.0.1:$PORT/"

# VmRSS / VmHWM of wsd in KiB.
proc_kib() {
    sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$WSD_PID/status" 2>/dev/null || true
}

# GET /metrics, with whatever this machine has.
metrics() {
    if command -v curl >/dev/null; then
        curl -fsS --max-time 2 "http://127.0.0.1:$PORT/metrics"
    elif command -v python3 >/dev/null; then
        python3 - "$PORT" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=2) as r:
    sys.stdout.write(r.read().decode())
PY
    else
        exec 3<>"/dev/tcp/127.0.0.1/$PORT"
        printf 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        timeout 2 cat <&3
        exec 3<&-
    fi
}

open_conns() {
    { metrics 2>/dev/null || true; } | sed -n 's/^wsd_connections_open \([0-9.]*\).*/\1/p' | head -n 1 | cut -d. -f1
}

sleep 0.2
RSS_START=$(proc_kib VmRSS)
OPEN_START=$(open_conns)
echo "soak: wsd pid $WSD_PID on $URL, RSS ${RSS_START} KiB, wsd_connections_open ${OPEN_START:-?} while scraping"

# --- the churn ---------------------------------------------------------
echo "soak: wsload churn -c $CONNS -d $DURATION --messages $MESSAGES --abrupt $ABRUPT"
set +e
"$BIN/wsload" churn -c "$CONNS" -d "$DURATION" --warmup 0s --messages "$MESSAGES" \
    --abrupt "$ABRUPT" --server-pid "$WSD_PID" --json "$WORK/churn.json" "$URL" \
    >"$WORK/wsload.txt" 2>&1 &
LOAD_PID=$!
wait "$LOAD_PID"
LOAD_RC=$?
LOAD_PID=
set -e
cat "$WORK/wsload.txt"

# --- afterwards --------------------------------------------------------
# The scrape holds one connection itself while the gauge is read.
OPEN_AFTER=
deadline=$((SECONDS + SETTLE))
while :; do
    OPEN_AFTER=$(open_conns)
    [[ -n $OPEN_AFTER && $OPEN_AFTER -le 1 ]] && break
    ((SECONDS >= deadline)) && break
    sleep 0.2
done
RSS_AFTER=$(proc_kib VmRSS)
RSS_PEAK=$(proc_kib VmHWM)

# A number from the wsload JSON at a dotted path (missing: empty).
jnum() {
    jnum_raw "$1" || true
}
jnum_raw() {
    if command -v python3 >/dev/null; then
        python3 - "$WORK/churn.json" "$1" <<'PY' 2>/dev/null
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[k]
print(v if not isinstance(v, float) else f"{v:.0f}")
PY
    elif command -v jq >/dev/null; then
        jq -r ".$1 | floor" "$WORK/churn.json" 2>/dev/null
    else
        # The JSON is pretty-printed with sorted keys: the key's line inside
        # its object (or at the top level).
        local obj=${1%.*} key=${1##*.}
        [[ $obj == "$1" ]] && obj=
        awk -v obj="$obj" -v key="$key" '
            /^  "[a-z_]+": \{/ { cur = $1; gsub(/[":]/, "", cur); next }
            /^  }/ { cur = ""; next }
            (obj == "" ? /^  "/ : cur == obj) && $1 == "\"" key "\":" {
                v = $2; sub(/,$/, "", v); printf "%d\n", v; exit }
        ' "$WORK/churn.json"
    fi
}

PASSED=0
FAILED=0
check() { # NAME CONDITION-EXIT-STATUS DETAIL
    if [[ $2 == 0 ]]; then
        PASSED=$((PASSED + 1))
        printf '  ok    %-16s %s\n' "$1" "$3"
    else
        FAILED=$((FAILED + 1))
        printf '  FAIL  %-16s %s\n' "$1" "$3"
    fi
}
is() { "$@" && echo 0 || echo 1; }
zero() { [[ ${1:-x} == 0 ]]; }

OPENED=$(jnum churn.opened)
CLEAN=$(jnum churn.closed_clean)
ABRUPTN=$(jnum churn.closed_abrupt)
MID=$(jnum churn.abrupt_mid_frame)
RESETS=$(jnum churn.abrupt_reset)
SENT=$(jnum sent)
RECEIVED=$(jnum received)
DROPPED=$(jnum churn.abandoned)
HS=$(jnum churn.handshakes_per_s)
MISMATCH=$(jnum churn.mismatches)
LOST=$(jnum churn.lost)
UNEXPECTED=$(jnum churn.unexpected_closes)
ERRORS=$(jnum errors_total)
RSS_LIMIT=$((RSS_START + RSS_SLACK_KIB))
((2 * RSS_START > RSS_LIMIT)) && RSS_LIMIT=$((2 * RSS_START))

echo
echo "soak summary ($DURATION, $CONNS slots, $MESSAGES messages each, $ABRUPT% abrupt)"
echo "  connections  ${OPENED:-?} opened (${HS:-?}/s): ${CLEAN:-?} closed clean, ${ABRUPTN:-?} abrupt (${MID:-?} mid-frame, ${RESETS:-?} reset)"
echo "  messages     ${SENT:-?} sent, ${RECEIVED:-?} echoed, ${DROPPED:-?} dropped with abrupt connections"
echo "  wsd RSS      ${RSS_START:-?} KiB at start, ${RSS_PEAK:-?} KiB peak, ${RSS_AFTER:-?} KiB after (limit ${RSS_LIMIT} KiB)"
echo "  wsd open     ${OPEN_AFTER:-?} after the run (1 is the scrape itself)"
check "wsload exit" "$(is test "$LOAD_RC" = 0)" "exit status $LOAD_RC"
check "no mismatches" "$(is zero "$MISMATCH")" "${MISMATCH:-?} mismatched echoes"
check "no lost" "$(is zero "$LOST")" "${LOST:-?} messages never echoed"
check "no unexpected" "$(is zero "$UNEXPECTED")" "${UNEXPECTED:-?} closes wsload did not ask for"
check "no other errors" "$(is zero "$ERRORS")" "${ERRORS:-?} errors in all"
check "both endings" "$(is test "${CLEAN:-0}" -gt 0 -a "${ABRUPTN:-0}" -gt 0 -o "$ABRUPT" -eq 0)" \
    "${CLEAN:-?} clean, ${ABRUPTN:-?} abrupt"
check "conns to zero" "$(is test -n "$OPEN_AFTER" -a "${OPEN_AFTER:-2}" -le 1)" \
    "wsd_connections_open ${OPEN_AFTER:-?} within ${SETTLE}s"
check "rss back" "$(is test -n "$RSS_AFTER" -a "${RSS_AFTER:-0}" -le "$RSS_LIMIT")" \
    "${RSS_START:-?} KiB -> ${RSS_AFTER:-?} KiB (peak ${RSS_PEAK:-?} KiB)"
check "wsd alive" "$(is kill -0 "$WSD_PID")" "pid $WSD_PID"
if ((FAILED > 0)); then
    echo "  wsd log (last lines):"
    tail -n 20 "$WORK/wsd.log" | sed 's/^/    /'
    echo "  files kept in $WORK"
else
    rm -rf "$WORK"
fi
echo "soak: $PASSED passed, $FAILED failed"
[[ $FAILED == 0 ]]

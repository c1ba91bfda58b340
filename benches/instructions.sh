#!/usr/bin/env bash
# User-space instructions per message in release wsd, counted by valgrind's
# callgrind: a figure that does not swing with a shared machine's load the
# way times do, so two builds can be compared to a fraction of a percent.
#
#   benches/instructions.sh [scenario...]
#
# Scenarios (default: all): echo-d1 (32 B, 10 connections, depth 1),
# echo-d16 (32 B, 10 connections, depth 16), rate (32 B open loop at 5,000
# msg/s over 1,000 connections: about one message per wake-up), broadcast
# (1,000 subscribers, 32 B at 20 msg/s: slow enough that even under
# callgrind each message is fanned out on its own, so the count does not
# depend on how messages happened to batch), tls (echo-d1 over wss://),
# deflate (1 KiB text echo with permessage-deflate).
#
# How: each scenario runs wsd under callgrind twice with the same
# connections, once with a short load and once with a long one, and reads
# from /metrics how many messages wsd received and sent in each. What the
# two runs share (start, handshakes, shutdown, the scrape) cancels out of
# (instructions_long - instructions_short) / (messages_long - messages_short).
# Per message is per message received; broadcast also prints per delivery
# (per message sent).
#
# Environment: SHORT and LONG (the two loads' windows; default 2s and 6s),
# CARGO_TARGET_DIR, OUT (default target/instructions: callgrind files and
# logs), WSD (another wsd binary to count, e.g. an older build, instead of
# this tree's). Installs valgrind (apt-get, as root) if missing. Everything runs on
# 127.0.0.1; every process it starts is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

SHORT=${SHORT:-2s}
LONG=${LONG:-6s}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET/instructions}
mkdir -p "$OUT"

if ! command -v valgrind >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "instructions: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
    apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi
cargo build --release -q -p wsd -p wsload
WSD=${WSD:-$TARGET/release/wsd}
WSLOAD=$TARGET/release/wsload

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A certificate for the tls scenario, made here (no key is committed).
tls_files() {
    if [ ! -f "$OUT/cert.pem" ]; then
        command -v openssl >/dev/null || apt-get install -y -qq openssl >/dev/null
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
            -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null ||
            { echo "instructions: openssl could not make a certificate" >&2; exit 1; }
    fi
}

metric() { # metric BODY NAME: the sample's value, 0 if absent
    awk -v n="$2" '$1 == n { print $2; found=1 } END { if (!found) print 0 }' <<<"$1"
}

# run NAME WINDOW SCHEME WSD_ARGS... -- WSLOAD_ARGS...: prints
# "instructions received sent" of one run under callgrind.
run() {
    local name=$1 window=$2 scheme=$3
    shift 3
    local wsd_args=() load_args=()
    while [ "$1" != -- ]; do wsd_args+=("$1"); shift; done
    shift
    load_args=("$@")
    local port metrics_port
    port=$(free_port)
    metrics_port=$(free_port)
    local file="$OUT/$name-$window.callgrind"
    valgrind --tool=callgrind --callgrind-out-file="$file" --dump-instr=no \
        "$WSD" --listen "127.0.0.1:$port" --metrics-listen "127.0.0.1:$metrics_port" \
        --ping-interval off "${wsd_args[@]}" >"$OUT/$name-$window.wsd.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 1 200); do
        curl -fsS "http://127.0.0.1:$metrics_port/healthz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    "$WSLOAD" "${load_args[@]}" -d "$window" --warmup 1s \
        "$scheme://127.0.0.1:$port/bench" >"$OUT/$name-$window.load.log" 2>&1 ||
        { echo "instructions: $name: wsload failed (see $OUT/$name-$window.load.log)" >&2; exit 1; }
    local body
    body=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics")
    kill -TERM "$pid"
    wait "$pid" || true
    local total
    total=$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$file")
    [ -n "$total" ] || total=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$file")
    echo "$total $(metric "$body" wsd_messages_received_total) $(metric "$body" wsd_messages_sent_total)"
}

# scenario NAME SCHEME WSD_ARGS... -- WSLOAD_ARGS...
scenario() {
    local name=$1
    shift
    read -r i1 r1 s1 < <(run "$name" "$SHORT" "$@")
    read -r i2 r2 s2 < <(run "$name" "$LONG" "$@")
    python3 - "$name" "$i1" "$r1" "$s1" "$i2" "$r2" "$s2" <<'EOF'
import sys
name, i1, r1, s1, i2, r2, s2 = sys.argv[1], *map(float, sys.argv[2:])
if r2 <= r1:
    sys.exit(f"instructions: {name}: the long run received no more messages than the short one")
per_msg = (i2 - i1) / (r2 - r1)
line = f"{name:10} {per_msg:10.0f} instructions per message received ({r2 - r1:.0f} messages)"
if s2 > s1 and abs((s2 - s1) - (r2 - r1)) > 0.5 * (r2 - r1):
    line += f"; {(i2 - i1) / (s2 - s1):.0f} per delivery"
print(line)
EOF
}

selected=("$@")
is() { [ ${#selected[@]} -eq 0 ] || [[ " ${selected[*]} " == *" $1 "* ]]; }

echo "instructions: user-space instructions per message (callgrind; windows $SHORT and $LONG)"
is echo-d1 && scenario echo-d1 ws -- echo -c 10 -s 32 --depth 1
is echo-d16 && scenario echo-d16 ws -- echo -c 10 -s 32 --depth 16
is rate && scenario rate ws -- rate -c 1000 -s 32 -R 5000
is broadcast && scenario broadcast ws --mode broadcast --exclude-sender -- \
    broadcast -c 1000 --publishers 1 -R 20 -s 32
if is tls; then
    tls_files
    scenario tls wss --tls-cert "$OUT/cert.pem" --tls-key "$OUT/key.pem" -- \
        echo -c 10 -s 32 --depth 1 --insecure
fi
is deflate && scenario deflate ws --deflate -- echo -c 10 -s 1024 --depth 1 --deflate --payload text
exit 0

#!/usr/bin/env bash
# Handshakes per second and server CPU per handshake with access control:
# no auth, HS256 and ES256 tokens (a fresh token per connection, minted by
# wsload, so every handshake verifies one it has not seen), interleaved.
#
#   benches/auth_handshakes.sh [rounds]
#
# Each run is `wsload churn` (50 connection slots, one 64 B echo per
# connection, clean closes) against a fresh release wsd on 127.0.0.1,
# DURATION long (default 6s); server CPU from /proc (--server-pid). Keys are
# made here, in a temporary directory; every process started is stopped by
# PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
DURATION=${DURATION:-6s}
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release -q -p wsd -p wsload
WSD=$TARGET/release/wsd
WSLOAD=$TARGET/release/wsload
dir=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
openssl rand -hex 32 >"$dir/secret"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/es.pem" 2>/dev/null
openssl pkey -in "$dir/es.pem" -pubout -out "$dir/es.pub"
claims='{"wsd":{"read":["*"],"write":["*"]}}'
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

run() { # run NAME [wsd args] -- [wsload args]
    local name=$1; shift
    local server=() load=()
    while [ "$1" != "--" ]; do server+=("$1"); shift; done; shift
    load=("$@")
    "$WSD" --listen "127.0.0.1:$port" --ping-interval off "${server[@]}" >"$dir/wsd.log" 2>&1 &
    pid=$!
    sleep 0.3
    local out
    out=$("$WSLOAD" churn "ws://127.0.0.1:$port/r" -c 50 -d "$DURATION" --warmup 1s \
        --messages 1 --abrupt 0 --server-pid "$pid" "${load[@]}" 2>&1)
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    local rate cpu
    rate=$(sed -n 's/.* \([0-9]*\) handshakes\/s.*/\1/p' <<<"$out")
    cpu=$(sed -n 's/.*: \([0-9.]*\)s CPU in window.*/\1/p' <<<"$out")
    awk -v n="$name" -v r="$rate" -v c="$cpu" -v d="${DURATION%s}" \
        'BEGIN { printf "%-8s %6d handshakes/s  %6.1f us server CPU per handshake\n", n, r, c * 1e6 / (r * d) }'
}

for _ in $(seq "$ROUNDS"); do
    run none --
    run hs256 --auth-key "$dir/secret" -- --jwt-key "$dir/secret" --jwt-claims "$claims"
    run es256 --auth-key "$dir/es.pub" -- --jwt-key "$dir/es.pem" --jwt-claims "$claims"
done

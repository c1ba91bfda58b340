#!/usr/bin/env bash
# Browser test of the page wsd serves at `/`: headless Chromium opens it
# against a real wsd and checks what arrives.
#
#   echo   a page on an echo server sends a typed message (Enter) and sees it back
#   rooms  two pages in /r1 see each other's messages; a page in /r2, connected
#          all along, sees neither
#   tls    the page served over https (a throwaway certificate from
#          `cargo run --example test_certs`) connects over wss:// and echoes
#   deflate  against `wsd --deflate`, Chromium agrees permessage-deflate and
#          echoes text and binary from 0 B to 1 MiB, compared byte for byte;
#          wsd's /metrics must show the negotiation and inflated messages
#
# Installs Debian's chromium if missing (apt, as root), builds the release
# wsd, starts one echo and one broadcast server on free loopback ports, and
# stops exactly what it started. Prints PASS/FAIL per check and a final
# `browser: N passed, M failed`; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/browser/lib.sh
. tests/browser/lib.sh

pids=()
tmp=$(mktemp -d)
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

find_chromium browser

cargo build --release --quiet --bin wsd

cargo run --quiet --example test_certs -- "$tmp/pki"

# Starts wsd in MODE (with TLS if a second argument says `tls`, with
# --deflate if it says `deflate`); sets `base` to the page's URL once it
# listens.
start_wsd() {
    local mode=$1 name=$1${2:-} line="" extra=() scheme=ws http=http
    local out=$tmp/wsd-$name.out
    if [[ ${2:-} == tls ]]; then
        extra=(--tls-cert "$tmp/pki/cert.pem" --tls-key "$tmp/pki/key.pem")
        scheme=wss
        http=https
    elif [[ ${2:-} == deflate ]]; then
        extra=(--deflate)
    fi
    target/release/wsd --listen 127.0.0.1:0 --mode "$mode" "${extra[@]}" >"$out" 2>"$tmp/wsd-$name.err" &
    pids+=($!)
    for _ in $(seq 100); do
        line=$(head -n 1 "$out")
        [[ -n $line ]] && break
        sleep 0.05
    done
    # `wsd listening on ws://127.0.0.1:PORT (MODE mode)`, or wss://
    if [[ $line =~ ^wsd\ listening\ on\ $scheme://(127\.0\.0\.1:[0-9]+)\  ]]; then
        base=$http://${BASH_REMATCH[1]}
    else
        echo "browser: wsd --mode $mode ${2:-} did not start: ${line:-no output}" >&2
        cat "$tmp/wsd-$name.err" >&2
        exit 1
    fi
}
start_wsd echo
echo_base=$base
start_wsd broadcast
broadcast_base=$base
start_wsd echo tls
tls_base=$base
start_wsd echo deflate
deflate_base=$base

# The driver bounds every step itself; the timeout is the backstop.
status=0
CHROMIUM_LOG=$tmp/chromium.log timeout -k 5 90 \
    python3 tests/browser/drive.py "$chromium" "$echo_base" "$broadcast_base" "$tls_base" \
    "$deflate_base" >"$tmp/results" || status=$?
# The deflate page's side is only half the story: wsd must have agreed the
# extension and inflated what the browser compressed.
metric() {
    python3 -c 'import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=5).read().decode().splitlines():
    name, _, value = line.rpartition(" ")
    if name == sys.argv[2]:
        print(int(float(value)))' "$deflate_base" "$1"
}
negotiated=$(metric wsd_deflate_negotiated_total || true)
inflated=$(metric wsd_deflate_messages_inflated_total || true)
if [[ ${negotiated:-0} -ge 1 && ${inflated:-0} -ge 1 ]]; then
    echo "PASS deflate metrics: $negotiated negotiated, $inflated messages inflated" >>"$tmp/results"
else
    echo "FAIL deflate metrics: negotiated ${negotiated:-?}, inflated ${inflated:-?}" >>"$tmp/results"
fi
tally browser 5 "$status" "$tmp/results" "$tmp/chromium.log"

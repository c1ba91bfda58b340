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
#   auth   against `wsd --auth-key`, a page connects with `?token=` (an HS256
#          token minted here with Python's standard library) and echoes;
#          without a token the upgrade is refused (401, so the browser sees
#          close 1006) and counted
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
    elif [[ ${2:-} == auth ]]; then
        extra=(--auth-key "$tmp/secret")
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
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tmp/secret"
start_wsd echo auth
auth_base=$base
# An hour's token for every room, signed without wsd's code.
token=$(python3 -c 'import base64, hashlib, hmac, json, sys, time
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=")
head = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b(json.dumps({"exp": int(time.time()) + 3600, "wsd": {"read": ["*"], "write": ["*"]}}).encode())
sig = b(hmac.new(open(sys.argv[1], "rb").read(), head + b"." + body, hashlib.sha256).digest())
print((head + b"." + body + b"." + sig).decode())' "$tmp/secret")

# The driver bounds every step itself; the timeout is the backstop.
status=0
CHROMIUM_LOG=$tmp/chromium.log timeout -k 5 90 \
    python3 tests/browser/drive.py "$chromium" "$echo_base" "$broadcast_base" "$tls_base" \
    "$deflate_base" "$auth_base" "$token" >"$tmp/results" || status=$?
# The deflate page's side is only half the story: wsd must have agreed the
# extension and inflated what the browser compressed.
metric() {
    python3 -c 'import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1] + "/metrics", timeout=5).read().decode().splitlines():
    name, _, value = line.rpartition(" ")
    if name == sys.argv[2]:
        print(int(float(value)))' "${2:-$deflate_base}" "$1"
}
missing=$(metric 'wsd_auth_denied_total{reason="missing"}' "$auth_base" || true)
if [[ ${missing:-0} -ge 1 ]]; then
    echo "PASS auth metrics: $missing upgrades without a token refused" >>"$tmp/results"
else
    echo "FAIL auth metrics: wsd_auth_denied_total{reason=\"missing\"} is ${missing:-?}" >>"$tmp/results"
fi
negotiated=$(metric wsd_deflate_negotiated_total || true)
inflated=$(metric wsd_deflate_messages_inflated_total || true)
if [[ ${negotiated:-0} -ge 1 && ${inflated:-0} -ge 1 ]]; then
    echo "PASS deflate metrics: $negotiated negotiated, $inflated messages inflated" >>"$tmp/results"
else
    echo "FAIL deflate metrics: negotiated ${negotiated:-?}, inflated ${inflated:-?}" >>"$tmp/results"
fi
tally browser 7 "$status" "$tmp/results" "$tmp/chromium.log"

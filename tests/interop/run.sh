#!/usr/bin/env bash
# Interop over wss://: other people's WebSocket clients against wsd with
# TLS, each trusting only a throwaway test CA and checking the host name.
#
#   python  `websockets` (asyncio) with an ssl context: text and binary echo
#           up to 1 MiB, ping, close 1000, TLS 1.2 and 1.3, and /healthz and
#           /metrics over https with urllib
#   node    the `ws` package: echo of the same sizes, ping, close 1000
#
# Installs what it needs into a cache (${WSD_INTEROP_HOME:-~/.cache/wsd-interop}):
# `websockets` with pip, `ws` with npm; nodejs and npm from Debian (apt, as
# root) if node is missing. Fails, never skips, when it cannot install.
# Builds the release wsd and the test_certs example, starts one wsd on a
# free loopback port, stops exactly what it started. Prints PASS/FAIL per
# check and a final `interop: N passed, M failed`; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY_WEBSOCKETS=websockets==15.0.1
NODE_WS=ws@8.18.3
cache=${WSD_INTEROP_HOME:-$HOME/.cache/wsd-interop}
tmp=$(mktemp -d)
pids=()
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
die() {
    echo "interop: $*" >&2
    echo "interop: 0 passed, 1 failed"
    exit 1
}

# ---- clients ------------------------------------------------------------------
mkdir -p "$cache"
if [[ ! -f $cache/py/.$PY_WEBSOCKETS ]]; then
    echo "interop: pip install $PY_WEBSOCKETS"
    rm -rf "$cache/py"
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --target "$cache/py" "$PY_WEBSOCKETS" ||
        die "pip install $PY_WEBSOCKETS failed"
    touch "$cache/py/.$PY_WEBSOCKETS"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "node and npm are missing and installing them needs root"
    echo "interop: installing nodejs and npm (apt)"
    apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null ||
        die "apt-get install nodejs npm failed"
fi
if [[ ! -f $cache/node/.$NODE_WS ]]; then
    echo "interop: npm install $NODE_WS"
    rm -rf "$cache/node"
    mkdir -p "$cache/node"
    npm install --silent --no-audit --no-fund --prefix "$cache/node" "$NODE_WS" >/dev/null ||
        die "npm install $NODE_WS failed"
    touch "$cache/node/.$NODE_WS"
fi

# ---- the server ---------------------------------------------------------------
cargo build --release --quiet --bin wsd
cargo run --quiet --example test_certs -- "$tmp/pki" || die "test_certs failed"
target/release/wsd --listen 127.0.0.1:0 --mode echo \
    --tls-cert "$tmp/pki/cert.pem" --tls-key "$tmp/pki/key.pem" >"$tmp/wsd.out" 2>"$tmp/wsd.err" &
pids+=($!)
line=""
for _ in $(seq 100); do
    line=$(head -n 1 "$tmp/wsd.out")
    [[ -n $line ]] && break
    sleep 0.05
done
# `wsd listening on wss://127.0.0.1:PORT (echo mode)`
[[ $line =~ ^wsd\ listening\ on\ wss://127\.0\.0\.1:([0-9]+)\  ]] ||
    { cat "$tmp/wsd.err" >&2; die "wsd did not start: ${line:-no output}"; }
# The certificate names localhost: the clients check it.
url="wss://localhost:${BASH_REMATCH[1]}/"
echo "interop: wsd on $url"

# ---- the checks ---------------------------------------------------------------
status=0
PYTHONPATH="$cache/py" timeout -k 5 60 python3 tests/interop/client.py "$url" "$tmp/pki/ca.pem" \
    >>"$tmp/results" 2>"$tmp/python.err" || status=$?
WS_MODULE_DIR="$cache/node/node_modules" timeout -k 5 60 node tests/interop/client.mjs "$url" "$tmp/pki/ca.pem" \
    >>"$tmp/results" 2>"$tmp/node.err" || status=$?
cat "$tmp/results"
passed=$(grep -c '^PASS ' "$tmp/results" || true)
failed=$(grep -c '^FAIL ' "$tmp/results" || true)
for who in python node; do
    if ! grep -q "^PASS $who " "$tmp/results"; then
        echo "FAIL $who: no check passed"
        sed 's/^/    /' "$tmp/$who.err"
        failed=$((failed + 1))
    fi
done
if [[ $status -ne 0 && $failed -eq 0 ]]; then
    echo "FAIL a client exited with status $status"
    failed=1
fi
if ! kill -0 "${pids[0]}" 2>/dev/null; then
    echo "FAIL wsd died during the run"
    sed 's/^/    /' "$tmp/wsd.err"
    failed=$((failed + 1))
fi
echo "interop: $passed passed, $failed failed"
[[ $failed -eq 0 ]]

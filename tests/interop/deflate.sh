#!/usr/bin/env bash
# deflate.sh - permessage-deflate interop: the Python `websockets` client
# against `wsd --deflate`, and against `wsd --deflate --deflate-context-takeover`.
#
#   tests/interop/deflate.sh
#
# Creates a venv (target/interop-venv) and installs a pinned `websockets`
# into it, builds the release wsd, starts it on a free loopback port, and
# runs tests/interop/deflate_client.py: several offers, each answered as
# expected, each echoing text and binary messages from 0 B to 1 MiB. If the
# venv or the install cannot be made, it fails; it never skips.
# The last line is `interop: N passed, M failed`; exit status 0 only if all
# passed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
WEBSOCKETS=websockets==15.0.1
VENV=target/interop-venv

say() { echo "interop: $*"; }
fail() {
  echo "interop: error: $*" >&2
  echo "interop: 0 passed, 1 failed"
  exit 1
}

if ! "$VENV/bin/python" -c 'import websockets, sys; sys.exit(websockets.__version__ != sys.argv[1])' \
  "${WEBSOCKETS#*==}" 2>/dev/null; then
  say "creating $VENV with $WEBSOCKETS"
  rm -rf "$VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    # Debian's python3 keeps venv's ensurepip in a package of its own.
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
      fail "python3 -m venv failed; install python3-venv"
    say "python3 -m venv failed: apt-get install python3-venv"
    rm -rf "$VENV"
    DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends python3-venv >/dev/null ||
      fail "apt-get install python3-venv failed"
    python3 -m venv "$VENV" || fail "python3 -m venv failed"
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$WEBSOCKETS" ||
    fail "pip install $WEBSOCKETS failed"
fi

say "cargo build --release --bin wsd"
cargo build --release --bin wsd -q || fail "cargo build failed"
wsd_bin=target/release/wsd
[ -n "${CARGO_TARGET_DIR:-}" ] && wsd_bin="$CARGO_TARGET_DIR/release/wsd"

logs=$(mktemp -d "${TMPDIR:-/tmp}/wsd-interop.XXXXXX")
wsd_pid=""
stop_wsd() {
  if [ -n "$wsd_pid" ]; then
    kill "$wsd_pid" 2>/dev/null || true
    wait "$wsd_pid" 2>/dev/null || true
    wsd_pid=""
  fi
}
trap 'stop_wsd; rm -rf "$logs"' EXIT

passed=0
failed=0
for flags in "--deflate" "--deflate --deflate-context-takeover"; do
  # shellcheck disable=SC2086 # the flags are words
  "$wsd_bin" --listen 127.0.0.1:0 --ping-interval off $flags >"$logs/out" 2>"$logs/err" &
  wsd_pid=$!
  port=""
  for _ in $(seq 100); do
    port=$(sed -n '1s|^wsd listening on ws://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$logs/out")
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || fail "wsd $flags did not start: $(cat "$logs/err")"
  say "wsd $flags on port $port"
  if timeout 300 "$VENV/bin/python" tests/interop/deflate_client.py "ws://127.0.0.1:$port" |
    tee "$logs/client" | grep -v '^interop: [0-9]* passed'; then :; fi
  last=$(tail -n 1 "$logs/client")
  if [[ $last =~ ^interop:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
  else
    say "the client did not finish: $last"
    failed=$((failed + 1))
  fi
  stop_wsd
done
say "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

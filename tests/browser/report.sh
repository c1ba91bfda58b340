#!/usr/bin/env bash
# Browser test of the HTML report `wsload compare --html` writes: a short
# real comparison (two release wsd servers, started and stopped by wsload,
# two scenarios, two rounds) is opened in headless Chromium, which checks:
#
#   render   a section and a results table per scenario
#   ratios   at 1,200 px, each table's ratio columns show without scrolling
#   charts   every chart is an SVG with drawn elements and text, laid out
#   console  no console error, exception or failed load
#   shot     a full-page screenshot, kept at target/browser/report.png
#
# Installs Debian's chromium if missing (apt, as root), builds the release
# wsd and wsload, and keeps the report, its JSON and the screenshot under
# target/browser/. Prints PASS/FAIL per check and a final
# `report: N passed, M failed`; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/browser/lib.sh
. tests/browser/lib.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=target/browser
mkdir -p "$out"

find_chromium report

cargo build --release --quiet -p wsd -p wsload
bin=target/release

# Two scenarios: echo (CPU per message: cost, latency and throughput
# charts) and idle connections (memory per connection: cost and handshake
# latency; no messages, so no throughput), plus the summary: 6 charts.
cat >"$tmp/compare.toml" <<EOF
rounds = 2

[[server]]
name = "wsd-a"
command = "$bin/wsd --listen 127.0.0.1:{port} --log-level warn"

[[server]]
name = "wsd-b"
command = "$bin/wsd --listen 127.0.0.1:{port} --log-level warn"

[[scenario]]
name = "echo"
mode = "echo"
flags = "-c 4 --depth 2 -d 1s --warmup 300ms --grace 500ms"

[[scenario]]
name = "idle"
mode = "conns"
flags = "-c 200 -d 300ms"
EOF
status=0
timeout -k 5 120 "$bin/wsload" compare --scenarios "$tmp/compare.toml" \
    --json "$out/report.json" --html "$out/report.html" --svg "$tmp/svg" \
    >"$tmp/compare.out" 2>"$tmp/compare.err" || status=$?
if [[ $status -ne 0 ]]; then
    echo "FAIL compare: exited with status $status"
    tail -n 20 "$tmp/compare.err"
    echo "report: 0 passed, 1 failed"
    exit 1
fi
# The charts --svg wrote are the charts the page must show.
charts=$(find "$tmp/svg" -name '*.svg' | wc -l)
if [[ $charts -ne 6 ]]; then
    echo "FAIL compare: --svg wrote $charts charts, not 6: $(ls "$tmp/svg")"
    echo "report: 0 passed, 1 failed"
    exit 1
fi

status=0
CHROMIUM_LOG=$tmp/chromium.log timeout -k 5 60 \
    python3 tests/browser/report.py "$chromium" "$out/report.html" 2 "$charts" "$out/report.png" \
    >"$tmp/results" || status=$?
tally report 5 "$status" "$tmp/results" "$tmp/chromium.log"

#!/usr/bin/env bash
# stress-tests.sh - the test suite on a busy machine. From the repository
# root:
#
#   scripts/stress-tests.sh [ROUNDS [NAME...]]   # default 3 rounds
#
# Builds every test binary of the workspace (`cargo test --workspace
# --no-run`: the unit tests of wsd and wsload, tests/*.rs and
# loadtest/tests/*.rs), then runs all of them ROUNDS times, one binary after
# another as `cargo test` does, while one busy loop per core runs at normal
# priority. The tests run at STRESS_NICE (default 0): at equal priority a
# test's threads get half the cores and wait whole time slices to run, as
# beside a build; `STRESS_NICE=19` starves them to about 1.5% of a core,
# a machine some 70 times slower, for rounds of an hour or more. A test
# that passes only when its threads are scheduled promptly (a reader that
# must keep up, a step that must happen "soon") fails here; a test whose
# timeouts are only watchdogs does not. NAME (a substring of a binary's
# source path, e.g. `hostile` or `loadtest/tests`) runs only the matching
# binaries.
#
# Every test that failed in at least one round is listed with how often and
# its first failure message. A binary that ends without a test summary (a
# watchdog abort, a crash, STRESS_BINARY_TIMEOUT) counts as a failure of
# that binary, shown with the end of its stderr. The last line is
# `stress: R rounds, T tests run, F failures in N tests, S s`; the exit
# status is 0 only if nothing failed (1), 2 for a usage or build error.
# Logs of every run stay in STRESS_LOGS (default target/stress).
#
# Takes about a minute a round on 2 busy cores (10 rounds: 11 minutes):
# not part of CI.
#
# Environment: STRESS_BUSY (busy loops, default: the number of cores),
# STRESS_NICE (the tests' niceness, default 0),
# STRESS_BINARY_TIMEOUT (seconds one test binary may run, default 600; the
# tests' own watchdogs abort a stuck test long before), STRESS_LOGS,
# CARGO_TARGET_DIR. The script stops exactly the processes it started.

set -euo pipefail

ROUNDS=${1:-3}
if [[ ! $ROUNDS =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/stress-tests.sh [ROUNDS [NAME...]]" >&2
    exit 2
fi
shift $(($# > 0 ? 1 : 0))
FILTERS=("$@")
BUSY=${STRESS_BUSY:-$(nproc)}
BINARY_TIMEOUT=${STRESS_BINARY_TIMEOUT:-600}
NICE=${STRESS_NICE:-0}

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LOGS=${STRESS_LOGS:-${CARGO_TARGET_DIR:-$ROOT/target}/stress}
rm -rf "$LOGS"
mkdir -p "$LOGS"
RESULTS=$LOGS/results.tsv
: >"$RESULTS"

BUSY_PIDS=()
CHILD=
cleanup() {
    # Only what this script started, by PID.
    if [[ -n $CHILD ]]; then
        kill "$CHILD" 2>/dev/null || true
    fi
    for pid in "${BUSY_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${BUSY_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# Build, and list the test binaries: label (source path), directory to run
# in (the package root, as cargo does), executable.

echo "stress: building test binaries"
if ! cargo test --workspace --no-run --message-format=json >"$LOGS/build.json" 2>"$LOGS/build.err"; then
    cat "$LOGS/build.err" >&2
    echo "stress: build failed" >&2
    exit 2
fi

LABELS=()
DIRS=()
EXES=()
while IFS= read -r line; do
    exe=$(grep -o '"executable":"[^"]*"' <<<"$line" | sed 's/^"executable":"//; s/"$//')
    src=$(grep -o '"src_path":"[^"]*"' <<<"$line" | sed 's/^"src_path":"//; s/"$//')
    manifest=$(grep -o '"manifest_path":"[^"]*"' <<<"$line" | sed 's/^"manifest_path":"//; s/"$//')
    label=${src#"$ROOT"/}
    if ((${#FILTERS[@]} > 0)); then
        keep=
        for f in "${FILTERS[@]}"; do
            [[ $label == *"$f"* ]] && keep=1
        done
        [[ -n $keep ]] || continue
    fi
    LABELS+=("$label")
    DIRS+=("$(dirname "$manifest")")
    EXES+=("$exe")
done < <(grep '"reason":"compiler-artifact"' "$LOGS/build.json" |
    grep '"profile":{[^}]*"test":true' | grep '"executable":"')

if ((${#EXES[@]} == 0)); then
    echo "stress: no test binary matches: ${FILTERS[*]}" >&2
    exit 2
fi

# ---------------------------------------------------------------------------
# Parsing one binary's output into RESULTS lines:
#   round <TAB> label <TAB> test <TAB> ok|FAILED <TAB> message

# The first lines of a failed test's panic message, from its
# `---- NAME stdout ----` section, joined with " / ".
failure_message() {
    local out=$1 name=$2
    awk -v head="---- $name stdout ----" '
        $0 == head { inside = 1; next }
        inside && (/^---- .* stdout ----$/ || /^failures:$/) { exit }
        inside && !found && /panicked at/ {
            found = 1
            # Before Rust 1.73 the message follows on the same line.
            sub(/^.*panicked at [^:]*:[0-9]+:[0-9]+:? ?/, "")
            if ($0 != "") { msg = $0; n = 1 }
            next
        }
        inside && found && /^(note: |stack backtrace:)/ { found = 0 }
        inside && found && n < 4 && $0 != "" {
            msg = (n ? msg " / " : "") $0; n++
        }
        END { print (msg == "" ? "(no panic message)" : msg) }
    ' "$out" | tr '\t' ' ' | cut -c1-400
}

record() {
    local round=$1 label=$2 out=$3 err=$4 rc=$5 name status msg
    while IFS= read -r line; do
        name=${line#test }
        status=${name##* ... }
        name=${name% ... *}
        msg=
        if [[ $status == FAILED ]]; then
            msg=$(failure_message "$out" "$name")
        fi
        printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$label" "$name" "$status" "$msg" >>"$RESULTS"
    done < <(grep -E '^test .* \.\.\. (ok|FAILED)$' "$out" || true)
    # A binary must end with libtest's summary and status 0 (all passed)
    # or 101 (some failed, each already recorded). Anything else, a
    # watchdog's abort above all, fails the binary itself.
    if ! grep -q '^test result:' "$out" || [[ $rc != 0 && $rc != 101 ]]; then
        if ((rc == 124)); then
            msg="still running after ${BINARY_TIMEOUT}s, stopped"
        elif ((rc > 128)); then
            msg="killed by signal $((rc - 128))"
        else
            msg="exit status $rc"
        fi
        msg="$msg; stderr: $(tail -n 5 "$err" | tr '\t\n' '  ' | cut -c1-600)"
        printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$label" "(the test binary)" FAILED "$msg" >>"$RESULTS"
    fi
}

# ---------------------------------------------------------------------------
# Busy loops at normal priority, one per core. Each also ends by itself
# when this script is gone (kill -0 on its PID), whatever killed it.

for ((i = 0; i < BUSY; i++)); do
    # In a subshell $$ is still this script's PID.
    (while kill -0 $$ 2>/dev/null; do :; done) &
    BUSY_PIDS+=($!)
done

# ---------------------------------------------------------------------------
# The rounds.

echo "stress: $ROUNDS rounds of ${#EXES[@]} test binaries under nice -n $NICE, $BUSY busy loops"
START=$(date +%s)
for ((round = 1; round <= ROUNDS; round++)); do
    round_start=$(date +%s)
    for i in "${!EXES[@]}"; do
        label=${LABELS[$i]}
        out="$LOGS/round$round-${label//\//_}.out"
        err="$LOGS/round$round-${label//\//_}.err"
        (cd "${DIRS[$i]}" && exec nice -n "$NICE" timeout "$BINARY_TIMEOUT" "${EXES[$i]}") \
            >"$out" 2>"$err" </dev/null &
        CHILD=$!
        rc=0
        wait "$CHILD" || rc=$?
        CHILD=
        record "$round" "$label" "$out" "$err" "$rc"
    done
    failed=$(awk -F'\t' -v r="$round" '$1 == r && $4 == "FAILED"' "$RESULTS" | wc -l)
    echo "stress: round $round: $(awk -F'\t' -v r="$round" '$1 == r && $3 != "(the test binary)"' "$RESULTS" | wc -l) tests, $failed failed, $(($(date +%s) - round_start))s"
done
ELAPSED=$(($(date +%s) - START))

# ---------------------------------------------------------------------------
# Summary: every test that failed at least once, with its first message.

echo
awk -F'\t' -v rounds="$ROUNDS" '
    $4 == "FAILED" {
        key = $2 "  " $3
        if (!(key in fails)) { order[++n] = key; first[key] = $5 }
        fails[key]++
    }
    END {
        for (i = 1; i <= n; i++) {
            k = order[i]
            printf "FAILED %d/%d  %s\n    %s\n", fails[k], rounds, k, first[k]
        }
    }
' "$RESULTS"
runs=$(awk -F'\t' '$3 != "(the test binary)"' "$RESULTS" | wc -l)
failures=$(awk -F'\t' '$4 == "FAILED"' "$RESULTS" | wc -l)
failed_tests=$(awk -F'\t' '$4 == "FAILED" { print $2 "\t" $3 }' "$RESULTS" | sort -u | wc -l)
echo "stress: $ROUNDS rounds, $runs tests run, $failures failures in $failed_tests tests, ${ELAPSED}s (logs in $LOGS)"
[[ $failures -eq 0 ]] || exit 1

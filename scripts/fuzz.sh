#!/usr/bin/env bash
# Coverage-guided fuzzing of the sans-IO protocol core (fuzz/, cargo-fuzz +
# libFuzzer): every target for SECONDS (default 30) each.
#
#   scripts/fuzz.sh [SECONDS]
#
# Each target first replays its committed seed corpus (fuzz/corpus/<target>/,
# which includes the minimised inputs of bugs found before), then fuzzes a
# scratch copy of it, so the corpus libFuzzer grows is thrown away and the
# repository stays clean. A crash, leak, timeout or out-of-memory fails the
# run: the artifact is kept under fuzz/artifacts/<target>/ and a command to
# reproduce it is printed. The last line is `fuzz: N passed, M failed`.
#
# Environment:
#   FUZZ_TARGETS     the targets to run (default: all of `cargo fuzz list`)
#   FUZZ_SANITIZER   address (default) or none; a failed build fails the run
#                    (asking for none is a choice, never a silent fallback)
#   CARGO_TARGET_DIR where to build (default: fuzz/target)
#
# Needs only the stable toolchain: cargo-fuzz's nightly flags are allowed
# with RUSTC_BOOTSTRAP=1. cargo-fuzz itself is installed if missing.
set -uo pipefail

seconds="${1:-30}"
case "$seconds" in
    '' | *[!0-9]*)
        echo "usage: $0 [SECONDS]" >&2
        exit 2
        ;;
esac

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 2
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked || exit 2
fi

sanitizer="${FUZZ_SANITIZER:-address}"
echo "fuzz: building the targets (sanitizer: $sanitizer)"
if ! cargo fuzz build --sanitizer "$sanitizer"; then
    echo "fuzz: the build with sanitizer $sanitizer failed" >&2
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/wsd-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

passed=0
failed=0
failures=()
for t in $targets; do
    corpus="$scratch/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    if [ -d "fuzz/corpus/$t" ]; then
        cp -R "fuzz/corpus/$t/." "$corpus/"
    fi
    # Artifacts newer than this marker are this run's.
    marker="$scratch/$t.start"
    touch "$marker"
    log="$scratch/$t.log"
    echo "fuzz: $t for ${seconds}s"
    cargo fuzz run --sanitizer "$sanitizer" "$t" "$corpus" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1
    status=$?
    # The last status line: "#runs DONE cov: C ft: F corp: N/S ... exec/s: E".
    done_line="$(grep -E '^#[0-9]+' "$log" | tail -n 1)"
    runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -n 1)"
    rate="$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$log" | tail -n 1)"
    cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")"
    ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")"
    corp="$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<<"$done_line")"
    artifact="$(find "fuzz/artifacts/$t" -type f -newer "$marker" 2>/dev/null | head -n 1)"
    if [ "$status" -eq 0 ] && [ -z "$artifact" ]; then
        passed=$((passed + 1))
        echo "fuzz: $t ok: ${runs:-?} runs, ${rate:-?} exec/s, cov ${cov:-?}, features ${ft:-?}, corpus ${corp:-?}"
    else
        failed=$((failed + 1))
        failures+=("$t")
        echo "fuzz: $t FAILED (exit $status)"
        # The panic message or sanitizer report, without libFuzzer's noise.
        grep -E -A3 "panicked at" "$log" | grep -vE "^ *(stack backtrace|[0-9]+:)" | head -n 12
        grep -E -A15 "ERROR: (AddressSanitizer|LeakSanitizer)" "$log" | head -n 30
        grep -E "ERROR: libFuzzer: (timeout|out-of-memory)" "$log"
        if [ -n "$artifact" ]; then
            echo "fuzz: artifact: $artifact"
            echo "fuzz:   hex: $(head -c 256 "$artifact" | od -An -tx1 -v | tr -d ' \n')"
            echo "fuzz:   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer $t $artifact"
            echo "fuzz:   minimise:  RUSTC_BOOTSTRAP=1 cargo fuzz tmin --sanitizer $sanitizer $t $artifact"
        else
            echo "fuzz: no artifact; the full log follows"
            tail -n 60 "$log"
        fi
    fi
done

if [ "$failed" -ne 0 ]; then
    echo "fuzz: failing targets: ${failures[*]}"
fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# Runs the integration tests under valgrind's memcheck: every test binary
# below, one test at a time, with full leak checking. A definite leak, an
# invalid read or write, or a use of uninitialised memory fails the binary
# (--error-exitcode), and so does a failing test.
#
#   scripts/memcheck.sh              # every in-process test binary
#   scripts/memcheck.sh echo close   # only these
#
# Installs valgrind with apt-get if it is missing (as root). Uses the
# default target directory (CARGO_TARGET_DIR if set). The last line is
# `memcheck: N passed, M failed` (binaries); the exit status is 0 only if
# none failed.
set -eu

cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update && apt-get install -y valgrind
    else
        echo "memcheck: valgrind is not installed (apt-get install valgrind, as root)" >&2
        exit 2
    fi
fi

if [ "$#" -gt 0 ]; then
    TESTS="$*"
else
    # Every integration test binary that runs wsd's code in its own process
    # (a TestServer, a Server or Process, a RedisBus), found by what it
    # calls, so a new test file is checked without anyone listing it. Not
    # those that only start the wsd binary as a child (binary.rs,
    # daemon.rs): valgrind does not follow children.
    TESTS=$(grep -lE '(TestServer|Server::bind|RedisBus|start_all)|(^|[^A-Za-z])Process::start' tests/*.rs |
        sed 's|^tests/||; s|\.rs$||' | tr '\n' ' ')
    if [ -z "$TESTS" ]; then
        echo "memcheck: found no in-process test binary under tests/" >&2
        exit 2
    fi
fi

# Tests left out under valgrind, by name (substring, as `--skip` takes it),
# one per line, for a binary. Valgrind runs the server some 20-50x slower,
# yet nearly every test, floods of tens of megabytes included, passes under
# it within its timeouts on this 2-core machine. A test whose outcome
# depends on speed (a deadline or a reader racing the traffic) goes here,
# with the reason.
skips_for() {
    case "$1" in
        # Its RSS bound would measure valgrind's shadow memory too.
        tls) echo idle_tls_connections_stay_small ;;
        # Its server is a child process, which valgrind does not follow.
        large) echo memory_is_given_back ;;
        # 32 MiB of pipelined requests through a server valgrind slows 20-50x
        # outlasts the request deadline the test's other clients live by.
        api) echo a_client_that_pipelines_and_never_reads_is_paused_not_buffered ;;
        # A 2 s rewind window, measured on the wall clock, that valgrind's
        # slowdown can outlast between the publish and the join.
        history) echo rewind_by_time_sends_only_the_recent_messages ;;
        *) ;;
    esac
}

args=""
for t in $TESTS; do
    args="$args --test $t"
done

echo "memcheck: building test binaries ($TESTS)"
# shellcheck disable=SC2086
json=$(cargo test --no-run --message-format=json $args)
bins=$(printf '%s\n' "$json" | grep '"profile":{[^}]*"test":true' |
    grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//')

log_dir=${MEMCHECK_LOGS:-target/memcheck}
mkdir -p "$log_dir"
passed=0
failed=0
failed_names=""
for t in $TESTS; do
    bin=$(printf '%s\n' "$bins" | grep "/$t-[0-9a-f]*\$" | head -n 1)
    if [ -z "$bin" ]; then
        echo "memcheck: $t: no test binary built" >&2
        failed=$((failed + 1))
        failed_names="$failed_names $t"
        continue
    fi
    skip_args=""
    for s in $(skips_for "$t"); do
        skip_args="$skip_args --skip $s"
    done
    log="$log_dir/$t.log"
    start=$(date +%s)
    # The watchdog in every test still applies (60 s); timeout(1) bounds the
    # whole binary and stops only the valgrind it started.
    # shellcheck disable=SC2086
    if timeout 420 valgrind --tool=memcheck --leak-check=full \
        --suppressions=scripts/memcheck.supp \
        --errors-for-leak-kinds=definite --error-exitcode=1 \
        --log-file="$log" \
        "$bin" --test-threads=1 $skip_args >"$log_dir/$t.out" 2>&1; then
        status=ok
        passed=$((passed + 1))
    else
        status="FAILED (see $log and $log_dir/$t.out)"
        failed=$((failed + 1))
        failed_names="$failed_names $t"
    fi
    summary=$(grep -h "ERROR SUMMARY" "$log" | tail -n 1 | sed 's/^==[0-9]*== //')
    tests=$(grep -h "^test result" "$log_dir/$t.out" | tail -n 1)
    echo "memcheck: $t: $status in $(($(date +%s) - start))s; $tests; $summary"
done

[ -z "$failed_names" ] || echo "memcheck: failed:$failed_names"
echo "memcheck: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

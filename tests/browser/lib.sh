# Shared by run.sh and report.sh (sourced, after `set -euo pipefail`).

# Sets `chromium` to the browser's path, installing Debian's package if it
# is missing (apt, as root). NAME prefixes the messages.
find_chromium() {
    local name=$1
    chromium=$(command -v chromium || true)
    if [[ -z $chromium ]]; then
        echo "$name: installing chromium (apt)"
        if [[ $(id -u) -ne 0 ]]; then
            echo "$name: chromium is missing and installing it needs root" >&2
            exit 1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        chromium=$(command -v chromium)
    fi
}

# Prints RESULTS (one `PASS name` or `FAIL name: why` line per check) and
# `NAME: N passed, M failed`; a driver that ended with STATUS before all
# EXPECTED checks, or failed without saying which, is one failure more,
# and any failure shows the end of the chromium log LOG. Returns 1 on any
# failure.
tally() {
    local name=$1 expected=$2 status=$3 results=$4 log=$5 passed failed
    cat "$results"
    passed=$(grep -c '^PASS ' "$results" || true)
    failed=$(grep -c '^FAIL ' "$results" || true)
    if ((passed + failed < expected)); then
        echo "FAIL driver: exited with status $status after $((passed + failed)) of $expected checks"
        failed=$((failed + 1))
    elif [[ $status -ne 0 && $failed -eq 0 ]]; then
        echo "FAIL driver: exited with status $status"
        failed=1
    fi
    if [[ $failed -ne 0 ]]; then
        echo "--- chromium log (last lines)"
        grep -v dbus "$log" | tail -n 20 || true
    fi
    echo "$name: $passed passed, $failed failed"
    [[ $failed -eq 0 ]]
}

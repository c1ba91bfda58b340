#!/usr/bin/env bash
# autobahn.sh - RFC 6455 conformance run of wsd with the Autobahn TestSuite
# (wstest's fuzzingclient). From the repository root:
#
#   scripts/autobahn.sh [--deflate | --deflate-all] [--wsd-arg ARG]...
#                       [--cases LIST] [--exclude LIST] [--report DIR]
#                       [--timeout SECS] [--url ws://127.0.0.1:PORT] [--tls]
#                       [--install-only]
#
#   (no mode)        cases 1-10 against `wsd` (no compression; the
#                    permessage-deflate cases 12.* and 13.* are left out)
#   --deflate        cases 1-10 and a subset of 12.* and 13.* that covers
#                    every group (each group's cases 1-6 and 11: 84 cases)
#                    against `wsd --deflate`: 385 cases, about 4 min
#   --deflate-all    every case, 12.* and 13.* in full, against
#                    `wsd --deflate`: 40 min or more (wstest is the slow side)
#   --wsd-arg ARG    one more flag for wsd (repeatable), e.g.
#                    --wsd-arg --deflate-context-takeover
#   --cases LIST     comma-separated case patterns (default: as the mode says)
#   --exclude LIST   patterns to leave out (default: as the mode says)
#   --report DIR     where the report goes (default target/autobahn)
#   --timeout SECS   limit for the wstest run (default 600, 5400 with
#                    --deflate-all; or AUTOBAHN_TIMEOUT)
#   --url URL        test a server that is already running on loopback instead
#                    of building and starting wsd (or set WSD_AUTOBAHN_URL);
#                    ws:// or wss://
#   --tls            run over wss://: wsd serves TLS with a throwaway
#                    certificate (`cargo run --example test_certs`); the
#                    fuzzingclient does not verify it. The report goes to
#                    target/autobahn-tls unless --report says otherwise
#   --install-only   install the suite and stop
#
# Steps: install wstest (once, into ${AUTOBAHN_HOME:-$HOME/.cache/wsd-autobahn}),
# `cargo build --release --bin wsd`, start wsd in echo mode on a free loopback
# port, run the fuzzingclient, stop wsd, and summarise the report with
# scripts/autobahn/summary.py. The last line is `autobahn: N passed, M failed`.
# A case passes when its behavior is OK, NON-STRICT or INFORMATIONAL and its
# behaviorClose is OK or INFORMATIONAL; a case without a result fails.
#
# Exit status: 0 all cases passed; 1 some failed (or wstest timed out, or wsd
# died); 2 usage, build or install error.
#
# Installing needs a Debian 12 amd64 machine, root (for apt), python3 and
# network access to the Debian archive and PyPI. wstest is Python 2 code and
# Debian 12 has no Python 2, so Debian 11's python2.7 packages are fetched with
# `apt-get download` through a private apt list and unpacked with `dpkg -x`
# into AUTOBAHN_HOME; nothing is installed into the system except python3-pip
# if python3 has no pip. Then pip 20.3.4 (the last for Python 2.7) installs the
# pinned set in scripts/autobahn/requirements-py2.txt, and wsaccel (C speed-ups
# for wstest) is compiled when gcc is there.
# Environment: AUTOBAHN_HOME, AUTOBAHN_TIMEOUT, WSD_AUTOBAHN_URL,
# AUTOBAHN_DEBIAN_MIRROR (an archive URI carrying bullseye, instead of the one
# in /etc/apt), AUTOBAHN_NO_ACCEL=1 (do not build wsaccel).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPERS="$ROOT/scripts/autobahn"
AB_HOME=${AUTOBAHN_HOME:-$HOME/.cache/wsd-autobahn}
AGENT=wsd

say() { echo "autobahn: $*"; }
die() {
  echo "autobahn: error: $*" >&2
  exit 2
}
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }

# ---- installing wstest --------------------------------------------------------

# Bumped when the install steps change, so an old install is redone.
INSTALL_REVISION=1
PIP_VERSION=20.3.4
PIP_BOOTSTRAP=(setuptools==44.0.0 wheel==0.37.1) # autobahntestsuite pins setuptools
SDIST_ONLY=autobahn,txaio                         # pure Python, no wheels on PyPI
WSACCEL=wsaccel==0.6.3

# Debian 11 packages: the interpreter and its standard library; the libraries
# it links that Debian 12 dropped or may lack (taken only when the system does
# not have the package); the C headers, only to build wsaccel.
PY2_DEBS=(python2.7-minimal libpython2.7-minimal libpython2.7-stdlib)
PY2_LIB_DEBS=(libssl1.1 libffi7 libexpat1 libbz2-1.0 libcrypt1 libdb5.3 libsqlite3-0
  libncursesw6 libtinfo6 libreadline8 libnsl2 libtirpc3)
PY2_DEV_DEBS=(libpython2.7-dev)

PY2_ROOT="$AB_HOME/root" # the unpacked Debian 11 packages
PY2="$AB_HOME/bin/python2"
WSTEST="$AB_HOME/bin/wstest"
PY2_SITE="$PY2_ROOT/usr/lib/python2.7/dist-packages"

want_accel() {
  [ "${AUTOBAHN_NO_ACCEL:-}" != 1 ] && command -v x86_64-linux-gnu-gcc >/dev/null
}

install_stamp() {
  local accel=no
  if want_accel; then accel=yes; fi
  {
    echo "revision $INSTALL_REVISION pip $PIP_VERSION ${PIP_BOOTSTRAP[*]} accel $accel $WSACCEL"
    cat "$HELPERS/requirements-py2.txt"
  } | sha256sum | cut -d' ' -f1
}

# apt-get with a private bullseye source list, lists and cache: the system's
# apt configuration and package state are left alone.
apt_bullseye() {
  local opts=(
    -o "Dir::Etc::SourceList=$AB_HOME/apt/sources.list"
    -o "Dir::Etc::SourceParts=$AB_HOME/apt/empty"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$AB_HOME/apt/empty"
    -o "Dir::State::Lists=$AB_HOME/apt/lists"
    -o "Dir::Cache=$AB_HOME/apt/cache"
    -o APT::Architectures::=amd64
    -o Acquire::Languages=none
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
    -o Acquire::Check-Valid-Until=false # a dated snapshot archive works too
  )
  if [ "$(id -u)" = 0 ]; then opts+=(-o APT::Sandbox::User=root); fi
  apt-get "${opts[@]}" "$@"
}

# Refresh the bullseye list and download the given packages into the current
# directory.
fetch_debs() {
  apt_bullseye -qq update >"$AB_HOME/apt/log" 2>&1 &&
    apt_bullseye -qq download "$@" >>"$AB_HOME/apt/log" 2>&1
}

install_suite() {
  mkdir -p "$AB_HOME"
  exec 8>"$AB_HOME/.lock"
  flock 8 # concurrent runs install once

  local stamp
  stamp=$(install_stamp)
  if [ "$(cat "$AB_HOME/stamp" 2>/dev/null)" = "$stamp" ] &&
    "$PY2" -c 'import autobahntestsuite.fuzzing' 2>/dev/null; then
    exec 8>&-
    return 0
  fi

  local t0=$SECONDS
  say "installing the Autobahn TestSuite into $AB_HOME"
  if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
    die "installing needs Debian's apt-get and dpkg"
  fi
  [ "$(dpkg --print-architecture)" = amd64 ] || die "installing supports amd64 only"
  command -v python3 >/dev/null || die "installing needs python3"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [ -f "$keyring" ] || die "$keyring is missing (apt-get install debian-archive-keyring)"

  if ! python3 -m pip --version >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "python3 has no pip; install python3-pip (needs root)"
    say "python3 has no pip: apt-get install python3-pip"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -qq update >/dev/null || die "apt-get update failed"
    apt-get -qq install -y --no-install-recommends python3-pip >/dev/null ||
      die "apt-get install python3-pip failed"
  fi

  local mirror=${AUTOBAHN_DEBIAN_MIRROR:-}
  if [ -z "$mirror" ]; then
    mirror=$(python3 "$HELPERS/debian_mirror.py") ||
      die "no Debian archive found in /etc/apt; set AUTOBAHN_DEBIAN_MIRROR to one that carries bullseye"
  fi

  (cd "$AB_HOME" && rm -rf stamp apt debs root bin)
  mkdir -p "$AB_HOME/apt/lists/partial" "$AB_HOME/apt/cache/archives/partial" \
    "$AB_HOME/apt/empty" "$AB_HOME/debs" "$AB_HOME/wheels" "$AB_HOME/bin"
  echo "deb [signed-by=$keyring] $mirror bullseye main" >"$AB_HOME/apt/sources.list"

  local debs=("${PY2_DEBS[@]}") p
  for p in "${PY2_LIB_DEBS[@]}"; do
    if [ "$(dpkg-query -W -f '${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
      debs+=("$p")
    fi
  done
  if want_accel; then debs+=("${PY2_DEV_DEBS[@]}"); fi

  say "apt-get download from $mirror bullseye: ${debs[*]}"
  if ! (cd "$AB_HOME/debs" && fetch_debs "${debs[@]}"); then
    say "apt-get failed; retrying once in 5s"
    sed 's/^/    /' "$AB_HOME/apt/log" >&2
    sleep 5
    (cd "$AB_HOME/debs" && fetch_debs "${debs[@]}") || {
      sed 's/^/    /' "$AB_HOME/apt/log" >&2
      die "could not download Debian 11 packages from $mirror (set AUTOBAHN_DEBIAN_MIRROR to an archive that carries bullseye)"
    }
  fi

  local deb
  for deb in "$AB_HOME/debs"/*.deb; do
    dpkg -x "$deb" "$PY2_ROOT" || die "dpkg -x $deb failed"
  done

  cat >"$PY2" <<EOF
#!/bin/sh
# Debian 11's python2.7, unpacked by scripts/autobahn.sh; not installed system-wide.
root='$PY2_ROOT'
LD_LIBRARY_PATH="\$root/usr/lib/x86_64-linux-gnu:\$root/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
PYTHONNOUSERSITE=1
export LD_LIBRARY_PATH PYTHONNOUSERSITE
unset PYTHONHOME PYTHONPATH PYTHONSTARTUP
exec "\$root/usr/bin/python2.7" "\$@"
EOF
  cat >"$WSTEST" <<EOF
#!/bin/sh
exec '$PY2' -m autobahntestsuite.wstest "\$@"
EOF
  chmod +x "$PY2" "$WSTEST"
  "$PY2" -c 'import ssl, ctypes, zlib, hashlib, pyexpat, bz2' ||
    die "the unpacked python2.7 cannot load its standard library (a shared library is missing?)"
  mkdir -p "$PY2_SITE"

  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1 PIP_NO_INPUT=1
  if [ -z "${PIP_CERT:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    # pip 20.3's bundled CA list is from 2020; use the system's.
    export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
  fi
  say "pip $PIP_VERSION and the pinned Python 2 packages"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$AB_HOME/wheels" "pip==$PIP_VERSION" ||
    die "python3 -m pip download pip==$PIP_VERSION failed"
  local pip_wheel="$AB_HOME/wheels/pip-$PIP_VERSION-py2.py3-none-any.whl"
  [ -f "$pip_wheel" ] || die "pip download did not produce $pip_wheel"
  "$PY2" "$pip_wheel/pip" install -q --no-deps --no-warn-script-location --target "$PY2_SITE" \
    "$pip_wheel" "${PIP_BOOTSTRAP[@]}" || die "installing pip into Python 2 failed"
  "$PY2" -m pip install -q --upgrade --no-deps --no-warn-script-location --target "$PY2_SITE" \
    --only-binary=:all: --no-binary="$SDIST_ONLY" -r "$HELPERS/requirements-py2.txt" ||
    die "pip install -r scripts/autobahn/requirements-py2.txt failed"
  "$PY2" -m pip check >"$AB_HOME/pip-check.log" 2>&1 || {
    cat "$AB_HOME/pip-check.log" >&2
    die "pip check: the pinned package set is inconsistent"
  }

  if want_accel; then
    if CFLAGS="-I$PY2_ROOT/usr/include" "$PY2" -m pip install -q --no-deps \
      --no-warn-script-location --target "$PY2_SITE" "$WSACCEL" >"$AB_HOME/wsaccel.log" 2>&1; then
      say "built $WSACCEL"
    else
      say "warning: building $WSACCEL failed (see $AB_HOME/wsaccel.log); wstest runs without it, slower"
    fi
  else
    say "no x86_64-linux-gnu-gcc (or AUTOBAHN_NO_ACCEL=1): wsaccel skipped, cases 9.* run slower"
  fi

  local version
  version=$("$WSTEST" --autobahnversion 2>&1) || {
    echo "$version" >&2
    die "wstest does not start"
  }
  echo "$stamp" >"$AB_HOME/stamp"
  rm -rf "$AB_HOME/debs" "$AB_HOME/apt/cache"
  say "installed in $((SECONDS - t0))s: $(echo "$version" | tr '\n' ' ')"
  exec 8>&-
}

# ---- options ------------------------------------------------------------------

cases=''
exclude=''
mode=plain
wsd_args=()
report=""
timeout=${AUTOBAHN_TIMEOUT:-}
url=${WSD_AUTOBAHN_URL:-}
install_only=no
tls=no
while [ $# -gt 0 ]; do
  case $1 in
  --cases | --exclude | --report | --timeout | --url)
    [ $# -ge 2 ] || die "$1 needs a value"
    case $1 in
    --cases) cases=$2 ;;
    --exclude) exclude=$2 ;;
    --report) report=$2 ;;
    --timeout) timeout=$2 ;;
    --url) url=$2 ;;
    esac
    shift 2
    ;;
  --install-only)
    install_only=yes
    shift
    ;;
  --deflate)
    mode=deflate
    shift
    ;;
  --deflate-all)
    mode=deflate-all
    shift
    ;;
  --wsd-arg)
    [ $# -ge 2 ] || die "$1 needs a value"
    wsd_args+=("$2")
    shift 2
    ;;
  --tls)
    tls=yes
    shift
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    usage >&2
    die "unknown argument '$1'"
    ;;
  esac
done
# Each permessage-deflate group's cases 1-6 and 11 (groups 12.1-12.5 and
# 13.1-13.7): every payload kind and parameter set, messages of 16 bytes to
# 64 KiB, some auto-fragmented. Listed one by one: wstest matches patterns
# at the start only, so '12.*.1' would take 12.1.10-18 too.
deflate_subset() {
  local g n out=()
  for g in 12.1 12.2 12.3 12.4 12.5 13.1 13.2 13.3 13.4 13.5 13.6 13.7; do
    for n in 1 2 3 4 5 6 11; do out+=("$g.$n"); done
  done
  local IFS=,
  echo "${out[*]}"
}
case $mode in
plain) : "${cases:=*}" "${exclude:=12.*,13.*}" ;;
deflate)
  : "${cases:=1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*,$(deflate_subset)}"
  wsd_args=(--deflate "${wsd_args[@]}")
  ;;
deflate-all)
  : "${cases:=*}" "${timeout:=5400}"
  wsd_args=(--deflate "${wsd_args[@]}")
  ;;
esac
: "${timeout:=600}"
[[ $cases =~ ^[0-9.*,\ ]+$ ]] || die "--cases takes patterns such as '1.*,9.1.1'"
[[ $exclude =~ ^[0-9.*,\ ]*$ ]] || die "--exclude takes patterns such as '12.*,13.*'"
[[ $timeout =~ ^[1-9][0-9]*$ ]] || die "--timeout takes a whole number of seconds"
if [ -z "$report" ]; then
  if [ "$tls" = yes ]; then report=target/autobahn-tls; else report=target/autobahn; fi
fi
if [ -n "$url" ]; then
  [[ $url =~ ^wss?://(127\.[0-9.]+|localhost|\[::1\]):([0-9]+)(/[^[:space:]\"]*)?$ ]] ||
    die "--url must be ws://HOST:PORT[/path] or wss://... on loopback (127.x.x.x, localhost or [::1]), not '$url'"
fi

mkdir -p "$report"
report=$(cd "$report" && pwd)
cd "$ROOT"

install_suite
if [ "$install_only" = yes ]; then
  say "wstest is installed: $WSTEST"
  exit 0
fi

# ---- the server ---------------------------------------------------------------

wsd_pid=""
stop_wsd() {
  if [ -n "$wsd_pid" ]; then
    kill "$wsd_pid" 2>/dev/null || true
    wait "$wsd_pid" 2>/dev/null || true
    wsd_pid=""
  fi
}
trap stop_wsd EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -z "$url" ]; then
  say "cargo build --release --bin wsd"
  # The JSON messages name the built binary, wherever the target dir is.
  wsd_bin=$(cargo build --release --bin wsd --message-format=json-render-diagnostics |
    python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == "wsd":
        print(msg["executable"])
') || die "cargo build failed"
  [ -x "$wsd_bin" ] || die "cargo build did not report the wsd binary"

  tls_args=()
  scheme=ws
  if [ "$tls" = yes ]; then
    say "cargo run --example test_certs (a throwaway CA and server certificate)"
    cargo run --quiet --example test_certs -- "$report/pki" || die "test_certs failed"
    tls_args=(--tls-cert "$report/pki/cert.pem" --tls-key "$report/pki/key.pem")
    scheme=wss
  fi
  "$wsd_bin" --listen 127.0.0.1:0 --mode echo "${tls_args[@]}" "${wsd_args[@]}" >"$report/wsd.out" 2>"$report/wsd.log" &
  wsd_pid=$!
  port=""
  for _ in $(seq 100); do
    port=$(sed -n "1s|^wsd listening on $scheme://127\\.0\\.0\\.1:\\([0-9]*\\) .*|\\1|p" "$report/wsd.out")
    [ -z "$port" ] || break
    kill -0 "$wsd_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    tail -n 20 "$report/wsd.out" "$report/wsd.log" >&2 || true
    die "wsd did not report its listening port (expected 'wsd listening on $scheme://127.0.0.1:PORT ...' on stdout)"
  fi
  url="$scheme://127.0.0.1:$port"
  say "wsd ${wsd_args[*]} (pid $wsd_pid) listening on $url; its log: $report/wsd.log"
else
  [[ $url =~ ^wss?://\[?([^]/]+)\]?:([0-9]+) ]]
  python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5).close()' \
    "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" 2>/dev/null ||
    die "nothing accepts connections at $url; start the server first"
fi

# ---- the run ------------------------------------------------------------------

json_patterns() { # '1.*, 9.1.1' -> ["1.*", "9.1.1"]
  python3 -c 'import json, sys; print(json.dumps([p.strip() for p in sys.argv[1].split(",") if p.strip()]))' "$1"
}

rm -rf "$report"/*.html "$report"/*.json "$report/wstest.log" "$report/expected-cases.txt"
spec="$report/spec.json"
cat >"$spec" <<EOF
{
  "outdir": "$report",
  "servers": [{"agent": "$AGENT", "url": "$url"}],
  "cases": $(json_patterns "$cases"),
  "exclude-cases": $(json_patterns "$exclude"),
  "exclude-agent-cases": {}
}
EOF

# The case ids the spec selects, from wstest's own code, so that a run that
# stops early shows which cases have no result.
"$PY2" - "$spec" >"$report/expected-cases.txt" <<'EOF' || die "could not list the cases the spec selects"
import json, sys
from autobahntestsuite import case
from autobahntestsuite.caseset import CaseSet
spec = json.load(open(sys.argv[1]))
cases = CaseSet(case.CaseSetname, case.CaseBasename, case.Cases,
                case.CaseCategories, case.CaseSubCategories)
for case_id in cases.parseSpecCases(spec):
    print(case_id)
EOF
ncases=$(wc -l <"$report/expected-cases.txt")
[ "$ncases" -gt 0 ] || die "no case matches --cases '$cases' --exclude '$exclude'"

say "running $ncases cases against $url (timeout ${timeout}s; log: $report/wstest.log)"
t0=$SECONDS
rc=0
timeout -k 10 "$timeout" "$WSTEST" -m fuzzingclient -s "$spec" >"$report/wstest.log" 2>&1 || rc=$?
say "wstest finished in $((SECONDS - t0))s"

problems=()
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  problems+=("wstest did not finish within ${timeout}s")
elif [ "$rc" != 0 ]; then
  problems+=("wstest exited with status $rc")
  tail -n 15 "$report/wstest.log" | sed 's/^/    /'
fi
if [ -n "$wsd_pid" ] && ! kill -0 "$wsd_pid" 2>/dev/null; then
  wsd_rc=0
  wait "$wsd_pid" || wsd_rc=$?
  wsd_pid=""
  problems+=("wsd exited during the run with status $wsd_rc; its log: $report/wsd.log")
  tail -n 10 "$report/wsd.log" | sed 's/^/    /'
fi
stop_wsd

status=0
python3 "$HELPERS/summary.py" --report "$report" --agent "$AGENT" \
  --expected "$report/expected-cases.txt" "${problems[@]/#/--problem=}" || status=$?
exit "$status"

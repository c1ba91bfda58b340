#!/usr/bin/env bash
# The test suite, as the README and CI run it: installs what the tests need
# (Debian's redis-server and nats-server, for the bus tests, which start
# their own on free loopback ports and never use a system service;
# iproute2, for wsload's agent tests in network namespaces), then runs
# `cargo test --workspace` with any arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
updated=
# install PACKAGE: apt-get installs it, and stops and disables the system
# service the package starts (the tests never use it, and it would hold a
# port for nothing).
install() {
  echo "test.sh: installing $1 (the bus tests start their own)" >&2
  if [ -z "$updated" ]; then $SUDO apt-get update -qq; updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$1" >/dev/null
  $SUDO systemctl disable --now "$1" >/dev/null 2>&1 || true
}
command -v redis-server >/dev/null || install redis-server
command -v nats-server >/dev/null || install nats-server
redis-server --version
nats-server --version

# wsload's agent tests make network namespaces and veth pairs with `ip`.
command -v ip >/dev/null || install iproute2

exec cargo test --workspace "$@"

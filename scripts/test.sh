#!/usr/bin/env bash
# The test suite, as the README and CI run it: installs what the tests need
# (Debian's redis-server, for the bus tests, which start their own on a
# free loopback port and never use the system service; iproute2, for
# wsload's agent tests in network namespaces), then runs
# `cargo test --workspace` with any arguments given.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null; then
  echo "test.sh: installing redis-server (the bus tests start their own)" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  # The package starts the system service; the tests never use it, and
  # it would hold port 6379 for nothing.
  $SUDO systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
redis-server --version

# wsload's agent tests make network namespaces and veth pairs with `ip`.
if ! command -v ip >/dev/null; then
  echo "test.sh: installing iproute2 (wsload's agent tests use ip netns)" >&2
  if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends iproute2 >/dev/null
fi

exec cargo test --workspace "$@"

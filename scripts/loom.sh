#!/usr/bin/env bash
# Model-checks what the reactors of one process share (--threads): the room
# directory, the bus's room changes, the mailboxes and the process-wide
# connection count, under loom, which runs each test in every interleaving
# of its threads' synchronization steps (src/net/cluster.rs, loom_tests).
# ThreadSanitizer would need a nightly toolchain's instrumented std; loom
# runs on stable. Its own target directory keeps the --cfg loom build apart.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}/loom
export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3}
cargo test --lib net::cluster::loom_tests "$@"

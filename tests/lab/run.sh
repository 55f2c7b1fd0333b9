#!/usr/bin/env bash
# The eventcast network lab: as root, builds 4 hosts in network
# namespaces joined by a bridge (netlab.sh), then lab.js runs Node and Rust CLI
# peers on them under nftables loss and prints the results table.
#
#   h1  sender (Node)            h2  receiver (Node)
#   h3  receiver (Rust CLI) and a second Node receiver sharing its port
#   h4  second sender / late joiner (Node)
#   h2–h17  the group-scaling scenario's 16 receivers (scale-16, only with --only)
#
# Exit status: 0 all required results met, 1 a result missed or the lab broke,
# 77 skipped (not root, no nftables, or namespaces cannot be created here).
# Usage: tests/lab/run.sh [--only small,big-5,...] [--json FILE]
# Env: EVENTCAST_CLI (path of the CLI binary; default: builds target/release/eventcast),
#      LAB_SMALL, LAB_SMALL_RATE, LAB_BIG, LAB_BIG_RATE, LAB_SETTLE_MS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=netlab.sh
. "$here/netlab.sh"

if ! why=$(lab_can_run); then
    echo "SKIPPED: network lab: $why"
    exit 77
fi

# Only scenarios with a CLI receiver need it (lab.js --needs-cli answers for the selection).
if [ -z "${EVENTCAST_CLI:-}" ] && node "$here/lab.js" --needs-cli "$@"; then
    echo "[lab] building the Rust CLI (cargo build --release --bin eventcast)" >&2
    buildlog=$(mktemp)
    if ! (cd "$root" && cargo build --release --bin eventcast) >"$buildlog" 2>&1; then
        cat "$buildlog" >&2; rm -f "$buildlog"; exit 1
    fi
    rm -f "$buildlog"
    export EVENTCAST_CLI="$root/target/release/eventcast"
fi
node -e "require('$root')" || { echo "[lab] the Node addon does not load; run npm install" >&2; exit 1; }

export LAB_PREFIX
# 4 hosts, or as many as the selected scenarios use (scale-16: 17).
hosts=$(node "$here/lab.js" --hosts "$@")
lab_up "$hosts"   # installs the EXIT trap that removes every namespace (and kills what runs in them)
trap 'exit 130' INT TERM   # the EXIT trap still runs lab_down
status=0
node "$here/lab.js" "$@" || status=$?
exit "$status"

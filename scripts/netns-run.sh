#!/bin/sh
# Runs a command inside a private network namespace that has only the loopback
# interface, with the multicast ranges routed to it (IPv6's as a local route:
# the kernel turns a plain route through loopback into a reject route). Nothing sent inside can
# reach a real network. Usage: scripts/netns-run.sh cargo test
# As root a plain `unshare -n` is used; otherwise a user namespace maps us to root.
set -e
if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi
if [ "$(id -u)" = 0 ]; then
    flags="-n"
else
    flags="-r -n"
fi
# shellcheck disable=SC2086
exec unshare $flags sh -c 'ip link set lo up && ip route add 224.0.0.0/4 dev lo \
    && (ip -6 route add local ff00::/8 dev lo table local 2>/dev/null || true) && exec "$@"' netns-run "$@"

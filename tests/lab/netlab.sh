#!/usr/bin/env bash
# The network lab: N hosts in their own network namespaces, joined by a bridge
# that lives in a namespace of its own, so nothing in the lab can reach the
# machine's real network. Addresses come from TEST-NET-1 (192.0.2.0/24) and,
# for IPv6, from the documentation prefix 2001:db8::/32 (2001:db8:ec::N/64,
# plus each host's link-local address), neither ever routed anywhere;
# duplicate address detection is off, so addresses are usable at once.
# Loss is applied with nftables (an inet table: IPv4 and IPv6) on the hosts' input.
#
# Source it, then:  lab_up 3; lab_exec h1 CMD...; lab_loss h2 10; lab_drops h2; lab_down
# lab_up installs a trap so the namespaces are removed even when the caller fails.

LAB_PREFIX=${LAB_PREFIX:-ecl$$}
LAB_SWITCH="${LAB_PREFIX}-sw"
LAB_HOSTS=()

lab_can_run() {
    [ "$(id -u)" = 0 ] || { echo "netlab: needs root"; return 1; }
    command -v nft >/dev/null || { echo "netlab: nft (nftables) is not installed"; return 1; }
    ip netns add "${LAB_PREFIX}-probe" 2>/dev/null || { echo "netlab: cannot create network namespaces here"; return 1; }
    ip netns del "${LAB_PREFIX}-probe"
}

lab_ns() { echo "${LAB_PREFIX}-$1"; }

lab_up() {
    local n=$1 i ns
    trap lab_down EXIT
    ip netns add "$LAB_SWITCH"
    ip -n "$LAB_SWITCH" link add br0 type bridge
    # Snooping would drop group traffic for hosts whose IGMP reports it has not
    # seen yet; the lab wants plain flooding like a small unmanaged switch.
    ip -n "$LAB_SWITCH" link set br0 type bridge mcast_snooping 0
    ip -n "$LAB_SWITCH" link set br0 up
    for i in $(seq 1 "$n"); do
        ns=$(lab_ns "h$i")
        ip netns add "$ns"
        # Before eth0 exists, so that it is made with DAD off.
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0
        ip link add "v${LAB_PREFIX}h$i" type veth peer name eth0 netns "$ns"
        ip link set "v${LAB_PREFIX}h$i" netns "$LAB_SWITCH"
        ip -n "$LAB_SWITCH" link set "v${LAB_PREFIX}h$i" master br0 up
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "192.0.2.$i/24" dev eth0
        ip -n "$ns" -6 addr add "2001:db8:ec::$i/64" dev eth0 nodad
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route add 224.0.0.0/4 dev eth0
        # Stop the host answering the group's loopback copies with ICMP noise.
        ip netns exec "$ns" sysctl -qw net.ipv4.icmp_echo_ignore_broadcasts=1
        ip netns exec "$ns" nft add table inet lab
        ip netns exec "$ns" nft add chain inet lab input '{ type filter hook input priority 0; }'
        LAB_HOSTS+=("h$i")
    done
    # IPv6 comes up on a link once the veth reports carrier, asynchronously:
    # until then there is no ff00::/8 route (sending to a group fails) and no link-local address.
    for i in $(seq 1 "$n"); do
        ns=$(lab_ns "h$i")
        local tries=0
        until ip -n "$ns" -6 route show table local | grep -q 'ff00::/8 dev eth0 ' \
            && ip -n "$ns" -6 addr show dev eth0 scope link | grep -q inet6; do
            tries=$((tries + 1))
            if [ "$tries" -gt 200 ]; then echo "netlab: h$i: IPv6 did not come up on eth0" >&2; return 1; fi
            sleep 0.05
        done
    done
}

# lab_loss HOST PERCENT [PORT]: drop PERCENT% of UDP datagrams arriving at HOST (on PORT, if given).
lab_loss() {
    local ns; ns=$(lab_ns "$1")
    ip netns exec "$ns" nft flush chain inet lab input
    [ "$2" -gt 0 ] || return 0
    local match=(meta l4proto udp)
    [ -n "${3:-}" ] && match=(udp dport "$3")
    if [ "$2" -ge 100 ]; then
        ip netns exec "$ns" nft add rule inet lab input "${match[@]}" drop
    else
        # counter: lab_drops reads how many it dropped (the group-scaling scenario reports it).
        ip netns exec "$ns" nft add rule inet lab input "${match[@]}" numgen random mod 100 '<' "$2" counter drop
    fi
}

# lab_drops HOST: datagrams the loss rule of HOST dropped so far (0 without one).
lab_drops() {
    local ns; ns=$(lab_ns "$1")
    ip netns exec "$ns" nft list chain inet lab input | sed -n 's/.* counter packets \([0-9]*\) .*/\1/p' | head -1 | grep . || echo 0
}

# lab_exec HOST CMD...: run CMD on HOST.
lab_exec() {
    local ns; ns=$(lab_ns "$1"); shift
    ip netns exec "$ns" "$@"
}

lab_down() {
    local ns
    for ns in $(ip netns list | awk '{print $1}' | grep "^${LAB_PREFIX}-"); do
        # Kill what still runs in the host before removing it.
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    LAB_HOSTS=()
}

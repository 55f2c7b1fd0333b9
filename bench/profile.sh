#!/bin/sh
# Profiles a sender and a receiver of one bench implementation with `perf record`
# (software cpu-clock sampling; works without hardware counters), inside a private
# network namespace. Prints the top symbols of each side; keeps the data in
# target/bench-prof/{send,recv}.data for `perf report -i ...`.
#
#   sh bench/profile.sh ours|rust-api [RATE] [SECONDS]
#
# Needs root (unshare), perf, and built peers (run `npm run bench -- --quick` once).
set -e
KIND=${1:-ours}
RATE=${2:-200000}
SECS=${3:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/target/bench-prof
mkdir -p "$OUT"
if [ "$(tail -n +3 /proc/self/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')" != "lo " ]; then
  exec unshare -n sh -c 'ip link set lo up && ip route add 224.0.0.0/4 dev lo && exec sh "$0" "$@"' "$0" "$@"
fi
case $KIND in
  ours) SEND="node --perf-basic-prof $ROOT/bench/peer.js --impl ours --role send --port 31999"
        RECV="node --perf-basic-prof $ROOT/bench/peer.js --impl ours --role recv --port 31999" ;;
  rust-api) SEND="$ROOT/target/release/examples/bench_rust_peer send 31999"
            RECV="$ROOT/target/release/examples/bench_rust_peer recv 31999" ;;
  *) echo "usage: sh bench/profile.sh ours|rust-api [RATE] [SECONDS]"; exit 2 ;;
esac
WAIT=$((SECS + 3))
cd "$OUT" # node --perf-basic-prof leaves isolate-*.log files in its working directory
(echo '{"cmd":"reset","trial":1}'; sleep $((WAIT + 1)); echo '{"cmd":"report"}'; sleep 1; echo '{"cmd":"quit"}') |
  perf record -q -o "$OUT/recv.data" -F 1999 -g -- $RECV > "$OUT/recv.out" 2>&1 &
sleep 1
(sleep 0.5; echo "{\"cmd\":\"rate\",\"trial\":1,\"rate\":$RATE,\"dur\":$SECS}"; sleep $WAIT; echo '{"cmd":"quit"}') |
  perf record -q -o "$OUT/send.data" -F 1999 -g -- $SEND > "$OUT/send.out" 2>&1
wait
for side in send recv; do
  echo "== $side: CPU by thread, then top symbols"
  perf report -i "$OUT/$side.data" --no-children --sort comm --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -4
  perf report -i "$OUT/$side.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -25
done
echo "receiver: $(grep count "$OUT/recv.out" | cut -c1-200)"

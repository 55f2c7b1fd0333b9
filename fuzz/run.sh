#!/usr/bin/env bash
# A short libFuzzer pass over both targets without cargo-fuzz (same flags as
# `cargo fuzz build`, minus AddressSanitizer: the crate has no unsafe code in
# the fuzzed paths). Needs a nightly toolchain; skips (exit 77) without one.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET (default 60)]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "SKIPPED: no nightly toolchain (cargo test --test fuzz_decode runs the stable equivalent)"
    exit 77
fi
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS (instrumentation) off build scripts and proc macros.
triple=$(rustc +nightly -vV | sed -n 's/^host: //p')
cargo +nightly build --release --bins --target "$triple"
# Seed empty corpora with valid datagrams (single, chunked, repair request) built
# by the hostile-input tests' PROTOCOL.md writer; the endpoint target gets them
# in its [op][len u16 LE][bytes] framing, a chunk group in one input.
if command -v node >/dev/null && [ ! -d corpus/decode_datagram ]; then
    mkdir -p corpus/decode_datagram corpus/endpoint
    node -e '
      const fs = require("fs"); const w = require("../__test__/hostile-wire.js")
      const V = w.V, id = "0123456789abcdef"
      const single = w.eventDatagram({ id, name: "x", values: [V.str("a"), V.i32(5), V.doc(w.docOf([["k", V.bool(true)]]))] })
      const chunks = w.chunkedDatagrams({ id, name: "big", values: [V.bin(Buffer.alloc(2500, 7))] })
      const req = w.frame(w.docOf(w.metaFields({ id, seqId: "ab".repeat(20), name: "__ec_retx" })),
        w.docOf([["payload", V.doc(w.docOf([["id", V.str("fedcba9876543210")], ["seqId", V.str("cd".repeat(20))],
          ["missedSeq", V.arr(w.arrOf([V.i32(0), V.i32(2)]))], ["host", V.str("192.0.2.1")], ["port", V.i32(9000)]]))]]))
      const frameOp = (op, d) => { const h = Buffer.alloc(3); h[0] = op; h.writeUInt16LE(d.length, 1); return Buffer.concat([h, d]) }
      ;[single, req, ...chunks].forEach((d, k) => fs.writeFileSync(`corpus/decode_datagram/seed${k}`, d))
      fs.writeFileSync("corpus/endpoint/single", frameOp(0, single))
      fs.writeFileSync("corpus/endpoint/chunks", Buffer.concat(chunks.map((d, k) => frameOp(k === 1 ? 41 : 0, d))))
      fs.writeFileSync("corpus/endpoint/request", frameOp(0, req))
    '
fi
for t in decode_datagram endpoint; do
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== fuzzing $t for ${secs}s"
    "target/$triple/release/$t" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" "corpus/$t"
done

'use strict'
// The group-scaling scenario (issue 26), the network lab's check of
// crates/eventcast-engine/tests/sim_scale.rs: one Node sender on h1, R
// receivers on h2..h(R+1) (Node and Rust CLI alternately), 5% loss on every
// receiver's input, 2,000 small events and 5 × 100 KiB messages. Reports the
// simulator's figures as far as real sockets show them:
//
// * losses per receiver: the datagrams its host's nftables loss rule dropped
//   (`lab_drops`: every datagram to the port, repairs and others' requests
//   included);
// * the union of losses, *estimated*: real sockets do not say which datagram
//   each receiver lost, so it is D × (1 − Π(1 − pᵢ)) with D the sender's
//   first transmissions of data (datagramsSent − repairsSent − heartbeats −
//   beacons) and pᵢ receiver i's measured loss rate (drops / (drops +
//   datagramsReceived)), which is exact in expectation for independent loss;
// * repairs sent (the sender's repairsSent), repair requests per receiver
//   (their repairsRequested), the sender process's CPU time per receiver.

const SMALL = 2000
const BIG = 5
const BIG_SIZE = 100 * 1024

/** The scenario with `r` receivers (`judge`: every event exactly once). */
function scaleScenario (r, judge) {
  const receivers = []
  for (let k = 0; k < r; k++) {
    const host = `h${k + 2}`
    receivers.push({ name: `${k % 2 ? 'cli' : 'node'}@${host}`, host, kind: k % 2 ? 'cli' : 'node' })
  }
  return {
    name: `scale-${r}`,
    explicit: true, // 17 hosts: its own lab run (__test__/lab.test.js runs it as a test of its own)
    scale: true,
    loss: 5,
    count: SMALL,
    rate: 2500,
    big: { count: BIG, size: BIG_SIZE },
    senders: [{ label: 'h1', host: 'h1' }],
    receivers,
    judge
  }
}

/** The figures of one run: `rows` the receivers' rows, `drops` by host, `sender` its final message. */
function scaleSummary (rows, drops, sender) {
  const st = (sender && sender.stats) || {}
  const r = rows.length
  const data = (st.datagramsSent || 0) - (st.repairsSent || 0) - (st.heartbeatsSent || 0) - (st.beaconsSent || 0)
  let allHave = 1
  let lost = 0
  let requests = 0
  for (const row of rows) {
    const d = drops[row.host] || 0
    const received = row.stats.datagramsReceived ?? row.stats.datagrams_received ?? 0
    allHave *= 1 - d / Math.max(1, d + received)
    lost += d
    requests += row.stats.repairsRequested ?? row.stats.repairs_requested ?? 0
  }
  const union = data * (1 - allHave)
  const cpu = sender && sender.cpu ? (sender.cpu.user + sender.cpu.system) / 1000 : null
  return {
    receivers: r,
    complete: rows.filter((row) => row.ok).length,
    dataDatagrams: data,
    unionEstimate: Math.round(union),
    lossesPerReceiver: lost / r,
    repairsSent: st.repairsSent,
    ratio: union ? st.repairsSent / union : null,
    requestsPerReceiver: requests / r,
    senderCpuMsPerReceiver: cpu === null ? null : cpu / r
  }
}

/** One line for the lab's notes (and bench/README.md's table). */
function formatScale (s) {
  const f = (x, d = 1) => (x === null || x === undefined ? '-' : Number(x).toFixed(d))
  return `R=${s.receivers}: complete ${s.complete}/${s.receivers}, union of losses ≈${s.unionEstimate} of ${s.dataDatagrams} data datagrams (estimated), ` +
    `losses per receiver ${f(s.lossesPerReceiver)}, repairs sent ${s.repairsSent}, repairs/union ${f(s.ratio, 2)}, ` +
    `repair requests per receiver ${f(s.requestsPerReceiver)}, sender CPU per receiver ${f(s.senderCpuMsPerReceiver, 2)} ms`
}

module.exports = { scaleScenario, scaleSummary, formatScale, SCALE_RECEIVERS: 16 }

'use strict'
// Child process of the hostile/flood tests (kept out of the test process so
// its allocations do not blur the RSS measurement of the node under test).
// Sends datagrams to the group on the given port at a paced rate and reports
// what it sent as JSON lines on stdout. Run only by the tests, inside their
// private network namespace.
//
// argv[2] = JSON {mode: 'hostile'|'flood', port, seed, ...}
const dgram = require('node:dgram')
const path = require('node:path')
const w = require('./hostile-wire.js')

const cfg = JSON.parse(process.argv[2])
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const GROUP = '224.0.0.1'
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function paced (sock, total, rate, next) {
  const t0 = Date.now()
  let sent = 0
  let inflight = 0
  while (sent < total) {
    const batch = Math.min(256, total - sent)
    for (let k = 0; k < batch; k++) {
      const dgs = next(sent + k)
      for (const d of dgs) {
        inflight++
        sock.send(d, cfg.port, GROUP, () => { inflight-- })
      }
    }
    sent += batch
    const due = t0 + (sent / rate) * 1000
    const wait = due - Date.now()
    await (wait > 0 ? sleep(wait) : new Promise((resolve) => setImmediate(resolve)))
    while (inflight > 4096) await new Promise((resolve) => setImmediate(resolve))
  }
  while (inflight > 0) await new Promise((resolve) => setImmediate(resolve))
  return Date.now() - t0
}

/**
 * A real node on the attacked group emitting `cfg.real` events named 'real'
 * (arguments `args(k)`), one every `everyMs`, while the attack runs.
 * `finish()` waits until all are sent, lets the node answer repair requests
 * for `cfg.lingerMs`, stops it, and resolves with how many it sent.
 */
async function realNode (everyMs, args) {
  const Eventcast = require(path.resolve(__dirname, '..'))
  const node = Eventcast({ port: cfg.port })
  await node.start()
  let sent = 0
  const timer = setInterval(() => {
    if (sent < cfg.real) node.emit('real', ...args(sent++))
  }, everyMs)
  return {
    node,
    async finish () {
      while (sent < cfg.real) await sleep(10)
      clearInterval(timer)
      await sleep(cfg.lingerMs)
      await node.stop()
      return sent
    }
  }
}

async function hostile (sock) {
  const rng = w.prng(cfg.seed)
  const gen = w.makeMalformed(rng)
  const kinds = {}
  let certain = 0
  let datagrams = 0
  const valid = []
  const chunkedValid = []
  // A real node sending real events during the attack, to the same group.
  const real = await realNode(4, (k) => [k, { from: 'a real node' }])
  const ms = await paced(sock, cfg.count, cfg.rate, (i) => {
    const dgs = []
    if (i % cfg.validEvery === 0) {
      const k = valid.length
      valid.push(k)
      dgs.push(w.eventDatagram({ id: 'feedfacecafe0001', name: 'valid', values: [w.V.i32(k), w.V.str(`valid event ${k}`), w.V.doc(w.docOf([['k', w.V.i32(k)]]))] }))
    }
    if (i % cfg.chunkedEvery === 0) {
      const k = chunkedValid.length
      chunkedValid.push(k)
      const blob = Buffer.alloc(3000, k & 0xff)
      dgs.push(...w.chunkedDatagrams({ id: 'feedfacecafe0002', name: 'validChunked', values: [w.V.i32(k), w.V.bin(blob)] }))
    }
    const m = gen()
    kinds[m.kind] = (kinds[m.kind] || 0) + 1
    if (m.certain) certain++
    dgs.push(m.dg)
    datagrams += dgs.length
    return dgs
  })
  const realSent = await real.finish()
  out({ type: 'done', ms, malformed: cfg.count, datagrams, certain, kinds, valid: valid.length, chunkedValid: chunkedValid.length, real: realSent, realStats: real.node.stats() })
}

async function flood (sock) {
  // Phase 1: many fake senders, one chunk each of a group that never completes
  // (pushes the partial-message count limit).
  const senders = cfg.senders
  let datagrams = 0
  const ms1 = await paced(sock, senders, cfg.rate, (i) => {
    datagrams++
    return [w.bogusChunk({ id: (0x1000000000000000n + BigInt(i)).toString(16), seqId: w.hex(20), seq: 0, seqLen: 1000, size: cfg.chunkSize })]
  })
  out({ type: 'phase', phase: 'senders', datagrams, ms: ms1 })
  // Lets the test read the victim's counters once it has processed phase 1.
  if (cfg.pauseMs) await sleep(cfg.pauseMs)
  // Phase 2: fewer senders, many chunks each (pushes the byte limit).
  const groups = Array.from({ length: cfg.bigGroups }, (_, g) => ({ id: (0x2000000000000000n + BigInt(g)).toString(16), seqId: w.hex(20) }))
  const perGroup = cfg.chunksPerGroup
  const ms2 = await paced(sock, cfg.bigGroups * perGroup, cfg.rate, (i) => {
    datagrams++
    const g = groups[i % groups.length]
    const seq = Math.floor(i / groups.length)
    return [w.bogusChunk({ ...g, seq, seqLen: perGroup + 1, size: cfg.chunkSize })]
  })
  out({ type: 'done', datagrams, ms: ms1 + ms2, bytes: datagrams * cfg.chunkSize })
}

// A real node emits while datagrams forged in its name arrive:
// heartbeats claiming it is at sn 2^40 (and refused numbers), events at a
// far sn, and 0.1.x-style events whose seqId is 60,000 characters.
async function forge (sock) {
  const real = await realNode(cfg.realEveryMs, (k) => [k])
  const id = real.node.id
  const far = 2n ** 40n
  const accepted = [far, far + 1n]
  const refusedSn = [0n, -1n, 2n ** 63n - 1n, -(2n ** 63n)]
  const heartbeat = (sn) => w.frame(w.docOf(w.metaFields({ id, seqId: w.hex(20), name: '__ec_hb' })),
    w.docOf([['payload', w.V.doc(w.docOf([['id', w.V.str(id)], ['sn', w.V.i64(sn)]]))]]))
  const farEvent = (sn) => w.frame(w.docOf([...w.metaFields({ id, seqId: w.hex(20), name: 'forged' }), ['sn', w.V.i64(sn)]]),
    w.payloadBody([w.V.str('forged')]))
  let refused = 0
  let datagrams = 0
  const ms = await paced(sock, cfg.count, cfg.rate, (i) => {
    const dgs = [heartbeat(accepted[i % 2]), farEvent(far + BigInt(i % 2)), heartbeat(refusedSn[i % refusedSn.length])]
    refused++
    if (i < cfg.longSeqIds) {
      // Distinct 60,000-char seqIds, half in the real node's name.
      const seqId = i.toString(16) + 'a'.repeat(60000)
      dgs.push(w.eventDatagram({ id: i % 2 ? id : w.hex(8), name: 'longSeqId', seqId, values: [w.V.i32(i)] }))
      refused++
    }
    datagrams += dgs.length
    return dgs
  })
  const realSent = await real.finish()
  out({ type: 'done', ms, datagrams, refused, real: realSent, id })
}

const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
sock.bind(0, () => {
  sock.setMulticastTTL(1)
  sock.setMulticastLoopback(true)
  sock.setSendBufferSize(4 * 1024 * 1024)
  const run = { flood, forge }[cfg.mode] || hostile
  run(sock).then(() => sock.close(), (err) => {
    out({ type: 'error', message: err.stack })
    process.exit(1)
  })
})

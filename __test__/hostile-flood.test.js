'use strict'
// At the node level: bogus partial messages from thousands of
// fake senders cannot push reassembly past its limits (1024 partial messages,
// 64 MiB by default); the oldest partials are evicted and counted in stats(),
// and a real 1 MiB message sent during the flood still arrives. Retention of
// our own sent messages stays within its byte limit too.
const test = require('node:test')
const assert = require('node:assert')
const crypto = require('node:crypto')
const { requireNetns, attack } = require('./helpers.js')
const Eventcast = require('..')

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const MiB = 1024 * 1024
// The node's default limits (crates/eventcast-engine/src/protocol/config.rs `Limits::default()`).
const MAX_PARTIALS = 1024
const MAX_REASSEMBLY = 64 * MiB
const MAX_RETAINED = 128 * MiB



test('a flood of bogus partial messages stays within the reassembly limits; the oldest are evicted and counted', { timeout: 180000 }, async (t) => {
  requireNetns()
  const port = 20000 + Math.floor(Math.random() * 20000)
  const rx = Eventcast({ port })
  const tx = Eventcast({ port })
  const got = []
  rx.on('big', (k, blob, digest) => got.push({ k, ok: crypto.createHash('sha256').update(blob).digest('hex') === digest }))
  let gaps = 0
  rx.on('gap', (g) => { gaps += g.count })
  await rx.start()
  await tx.start()
  try {
    let max = { reassemblyBytes: 0 }
    const samples = []
    const sampler = setInterval(() => {
      const s = rx.stats()
      samples.push(s)
      if (s.reassemblyBytes > max.reassemblyBytes) max = s
    }, 25)
    // 5,000 fake senders with one chunk each, then 100 fake groups × 800 chunks
    // of 1000 bytes (80 MB announced, more than the 64 MiB limit).
    const cfg = { mode: 'flood', port, rate: 20000, senders: 5000, bigGroups: 100, chunksPerGroup: 800, chunkSize: 1000, pauseMs: 1500 }
    let afterSenders = null
    // Phase 1's datagrams may still sit in the socket buffer when the attacker
    // reports it (a loaded machine): read the counters once they stop moving,
    // during the attacker's pause.
    const settled = async () => {
      let last = rx.stats()
      for (let i = 0; i < 20; i++) {
        await sleep(50)
        const now = rx.stats()
        if (now.datagramsReceived === last.datagramsReceived) return now
        last = now
      }
      return last
    }
    const sending = attack(cfg, (m) => { if (m.type === 'phase') settled().then((s) => { afterSenders = s }) })
    // A real 1 MiB message in the middle of the flood.
    await sleep(3000)
    const blob = crypto.randomBytes(MiB)
    tx.emit('big', 1, blob, crypto.createHash('sha256').update(blob).digest('hex'))
    const lines = await sending
    const done = lines.find((m) => m.type === 'done')
    const end = Date.now() + 10000
    while (!got.length && Date.now() < end) await sleep(50)
    clearInterval(sampler)
    const st = rx.stats()
    t.diagnostic(`flood: ${done.datagrams} datagrams, ${(done.bytes / MiB).toFixed(1)} MiB in ${done.ms} ms`)
    t.diagnostic(`after the fake senders: ${JSON.stringify(afterSenders)}`)
    t.diagnostic(`peak reassembly ${(max.reassemblyBytes / MiB).toFixed(2)} MiB; final ${JSON.stringify(st)}`)

    assert.ok(max.reassemblyBytes <= MAX_REASSEMBLY, `reassembly peaked at ${max.reassemblyBytes} > ${MAX_REASSEMBLY}`)
    assert.ok(samples.every((s) => s.reassemblyBytes <= MAX_REASSEMBLY))
    // One partial message per fake sender cannot all be kept: all but 1024 of
    // those that reached the node were evicted, and that is counted. (On a
    // starved machine the kernel drops part of the burst once the 8 MiB socket
    // buffer is full, so count what arrived, not what was sent.)
    assert.ok(afterSenders, 'phase report received')
    // On a loaded machine the read can land after the second phase began
    // (its 800-chunk groups add datagrams, not senders): at most cfg.senders
    // fake senders arrived.
    const arrived = Math.min(afterSenders.datagramsReceived - afterSenders.ownDatagramsIgnored, cfg.senders)
    assert.ok(arrived >= 2 * MAX_PARTIALS, `enough fake senders reached the node to test eviction (${arrived} of ${cfg.senders})`)
    assert.ok(afterSenders.partialsEvicted >= arrived - MAX_PARTIALS - 64,
      `partialsEvicted ${afterSenders.partialsEvicted} after ${arrived} fake senders arrived (limit ${MAX_PARTIALS} partials)`)
    assert.ok(afterSenders.reassemblyBytes <= MAX_PARTIALS * (cfg.chunkSize + 512), `at most ${MAX_PARTIALS} partials held (${afterSenders.reassemblyBytes} bytes)`)
    // The 80 MB of the second phase cannot all be held either.
    assert.ok(st.partialsEvicted + st.rejectedLimits > afterSenders.partialsEvicted + afterSenders.rejectedLimits,
      'the byte limit evicted or refused more state during the second phase')
    assert.deepStrictEqual(got, [{ k: 1, ok: true }], 'the real 1 MiB message arrived intact during the flood')
    // Evicted partial messages are never silent: reported as gaps or counted.
    t.diagnostic(`gap reports: ${gaps}; gapsUnrecovered ${st.gapsUnrecovered}`)
  } finally {
    await tx.stop()
    await rx.stop()
  }
})

test('retention of sent messages stays within its byte limit', { timeout: 120000 }, async (t) => {
  requireNetns()
  const port = 20000 + Math.floor(Math.random() * 20000)
  const ec = Eventcast({ port })
  await ec.start()
  try {
    const blob = crypto.randomBytes(MiB)
    let peak = 0
    // 144 MiB sent within the retention window (3 × messageTtl = 9 s) > the 128 MiB limit.
    const N = 144
    for (let k = 0; k < N; k++) {
      ec.emit('blob', k, blob)
      peak = Math.max(peak, ec.stats().retainedBytes)
      await sleep(20)
    }
    const st = ec.stats()
    t.diagnostic(`peak retained ${(peak / MiB).toFixed(1)} MiB; ${JSON.stringify(st)}`)
    assert.ok(peak <= MAX_RETAINED, `retained ${peak} > ${MAX_RETAINED}`)
    assert.ok(peak >= MAX_RETAINED / 2, `retention holds recent messages (peak ${peak})`)
    assert.strictEqual(st.eventsSent, N)
  } finally {
    await ec.stop()
  }
})

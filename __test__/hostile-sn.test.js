'use strict'
// End to end: a real node keeps emitting while datagrams
// forged in its name arrive — heartbeats claiming sn 2^40 and 2^40+1 (which
// used to mute it for good), events at a far sn, heartbeats with refused
// numbers (0, -1, ±2^63), and 0.1.x-style events whose seqId is 60,000
// characters (which used to grow RSS by 1.5 GiB). Every real event arrives
// exactly once, no gap is reported, refused datagrams are counted, RSS and
// the stored keys stay bounded. The attacker (and the real node) run in a
// child process (hostile-attacker.js, mode 'forge') inside the private
// network namespace of `npm test`.
const test = require('node:test')
const assert = require('node:assert')
const { requireNetns, attack, sleep, waitFor } = require('./helpers.js')
const { udpDrops } = require('./hostile-wire.js')
const Eventcast = require('..')

const MiB = 1024 * 1024

test('forged far sn and 60,000-char seqIds neither mute a real sender nor grow memory', { timeout: 120000 }, async (t) => {
  requireNetns()
  const port = 20000 + Math.floor(Math.random() * 20000)
  const cfg = { mode: 'forge', port, count: 4000, rate: 800, longSeqIds: 3000, real: 1000, realEveryMs: 5, lingerMs: 1500 }
  const ec = Eventcast({ port })
  const real = new Map()
  const gaps = []
  let longSeqIds = 0
  ec.on('real', (k) => real.set(k, (real.get(k) || 0) + 1))
  ec.on('longSeqId', () => longSeqIds++)
  ec.on('gap', (g) => gaps.push(g))
  ec.on('error', () => {})
  await ec.start()
  try {
    await sleep(300)
    if (global.gc) global.gc()
    const rss0 = process.memoryUsage.rss()
    const drops0 = udpDrops()
    let maxKeys = 0
    const sampler = setInterval(() => { maxKeys = Math.max(maxKeys, ec.stats().reassemblyKeys) }, 50)
    const lines = await attack(cfg)
    const done = lines.find((m) => m.type === 'done')
    await waitFor(() => real.size >= done.real, 10000)
    clearInterval(sampler)
    if (global.gc) global.gc()
    await sleep(200)
    const rss1 = process.memoryUsage.rss()
    const drops = udpDrops() - drops0
    const st = ec.stats()
    t.diagnostic(`sent ${done.datagrams} forged datagrams (${done.refused} to refuse) in ${done.ms} ms; kernel drops ${drops}`)
    t.diagnostic(`stats ${JSON.stringify(st)}`)
    t.diagnostic(`RSS ${(rss0 / MiB).toFixed(1)} -> ${(rss1 / MiB).toFixed(1)} MiB; max reassemblyKeys ${maxKeys}; gaps ${JSON.stringify(gaps)}`)

    const missing = Array.from({ length: done.real }, (_, k) => k).filter((k) => !real.has(k))
    assert.deepStrictEqual(missing, [], 'every real event arrived despite the forged heartbeats')
    assert.strictEqual([...real.values()].filter((n) => n > 1).length, 0, 'no real event delivered twice')
    assert.strictEqual(longSeqIds, 0, 'no event with a 60,000-char seqId delivered')
    assert.ok(st.rejectedMalformed + drops >= done.refused, `rejectedMalformed ${st.rejectedMalformed} (+${drops} dropped) >= ${done.refused}`)
    if (drops === 0) assert.deepStrictEqual(gaps, [], 'no loss, so no gap (none forged)')
    assert.ok(st.gapsUnrecovered < 1000, `gapsUnrecovered ${st.gapsUnrecovered}`)
    assert.ok(maxKeys <= 1024 + 16384, `reassemblyKeys peaked at ${maxKeys}`)
    assert.ok(rss1 - rss0 < 64 * MiB, `RSS grew by ${((rss1 - rss0) / MiB).toFixed(1)} MiB`)
    assert.ok(ec.status === 'started')
  } finally {
    await ec.stop()
  }
})

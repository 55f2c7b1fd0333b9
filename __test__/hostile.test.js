'use strict'
// A running node under >100,000 malformed datagrams
// interleaved with valid events. Every valid event arrives exactly once, the
// process does not crash, RSS stays bounded, and stats() counts rejections.
// The attacker runs in a child process (hostile-attacker.js) sending to the
// group; everything happens inside the private network namespace of `npm test`.
const test = require('node:test')
const assert = require('node:assert')
const { requireNetns, attack, sleep, waitFor } = require('./helpers.js')
const { udpDrops } = require('./hostile-wire.js')
const Eventcast = require('..')

const MiB = 1024 * 1024

test('100,000+ malformed datagrams interleaved with valid events', { timeout: 240000 }, async (t) => {
  requireNetns()
  const port = 20000 + Math.floor(Math.random() * 20000)
  const seed = Number(process.env.HOSTILE_SEED || Math.floor(Math.random() * 2 ** 31))
  const cfg = { mode: 'hostile', port, seed, count: 110000, rate: 20000, validEvery: 100, chunkedEvery: 4000, real: 500, lingerMs: 1500 }
  t.diagnostic(`seed ${seed} (HOSTILE_SEED=${seed} replays the same datagrams)`)

  const ec = Eventcast({ port })
  const valid = new Map()
  const chunked = new Map()
  const real = new Map()
  const errors = {}
  let otherEvents = 0
  ec.on('valid', (k, text, d) => {
    assert.strictEqual(text, `valid event ${k}`)
    assert.deepStrictEqual(d, { k })
    valid.set(k, (valid.get(k) || 0) + 1)
  })
  ec.on('validChunked', (k, blob) => {
    assert.ok(Buffer.isBuffer(blob) && blob.length === 3000 && blob.every((b) => b === (k & 0xff)), `chunked event ${k} intact`)
    chunked.set(k, (chunked.get(k) || 0) + 1)
  })
  ec.on('real', (k) => real.set(k, (real.get(k) || 0) + 1))
  ec.on('hostile', () => otherEvents++)
  ec.on('error', (err) => { errors[err.code] = (errors[err.code] || 0) + 1 })
  await ec.start()
  try {
    // Warm up so the baseline RSS includes the runtime's steady state.
    await sleep(300)
    if (global.gc) global.gc()
    const rss0 = process.memoryUsage.rss()
    const drops0 = udpDrops()
    let maxReassembly = 0
    const sampler = setInterval(() => { maxReassembly = Math.max(maxReassembly, ec.stats().reassemblyBytes) }, 50)
    const lines = await attack(cfg)
    const done = lines.find((m) => m.type === 'done')
    await waitFor(() => valid.size >= done.valid && chunked.size >= done.chunkedValid && real.size >= done.real, 10000)
    // Bogus partial messages expire after messageTtl (3 s, three repair rounds).
    await waitFor(() => ec.stats().reassemblyBytes === 0, 15000)
    clearInterval(sampler)
    if (global.gc) global.gc()
    await sleep(200)
    const rss1 = process.memoryUsage.rss()
    const drops = udpDrops() - drops0
    const st = ec.stats()
    t.diagnostic(`sent ${done.datagrams} datagrams (${done.malformed} malformed: ${JSON.stringify(done.kinds)}) in ${done.ms} ms; kernel drops ${drops}`)
    t.diagnostic(`stats ${JSON.stringify(st)}`)
    t.diagnostic(`errors ${JSON.stringify(errors)}; RSS ${(rss0 / MiB).toFixed(1)} -> ${(rss1 / MiB).toFixed(1)} MiB; max reassembly ${(maxReassembly / MiB).toFixed(2)} MiB`)

    assert.ok(done.malformed >= 100000)
    const dupes = (m) => [...m.values()].filter((n) => n > 1).length
    const missing = (m, n) => Array.from({ length: n }, (_, k) => k).filter((k) => !m.has(k))
    assert.deepStrictEqual(missing(valid, done.valid), [], 'every valid hand-built event arrived')
    assert.deepStrictEqual(missing(chunked, done.chunkedValid), [], 'every valid chunked message arrived')
    assert.deepStrictEqual(missing(real, done.real), [], 'every event of the real node arrived')
    assert.strictEqual(dupes(valid) + dupes(chunked) + dupes(real), 0, 'no event delivered twice')
    assert.strictEqual(drops, 0, 'the kernel dropped no datagram (else the counts below are not exact)')
    // Every datagram was seen and every certainly-invalid one was counted as rejected.
    assert.ok(st.datagramsReceived >= done.datagrams, `datagramsReceived ${st.datagramsReceived} >= ${done.datagrams}`)
    assert.ok(st.rejectedMalformed + st.rejectedVersion >= done.certain, `rejections ${st.rejectedMalformed}+${st.rejectedVersion} >= ${done.certain} structurally invalid`)
    assert.ok(st.rejectedVersion >= done.kinds.otherVersion, 'other versions counted')
    assert.ok(errors.EPRVERSION > 0 && errors.EPRVERSION <= st.rejectedVersion, 'EPRVERSION reaches error listeners')
    assert.ok(st.rejectedDecrypt >= done.kinds.encryptedGarbage, 'encrypted datagrams at a plaintext node counted')
    // Memory: reassembly never above its limit (64 MiB default), RSS bounded.
    assert.ok(maxReassembly <= 64 * MiB, `reassembly peaked at ${maxReassembly}`)
    assert.strictEqual(st.reassemblyBytes, 0, 'bogus partial messages expired')
    assert.ok(rss1 - rss0 < 64 * MiB, `RSS grew by ${((rss1 - rss0) / MiB).toFixed(1)} MiB`)
    assert.ok(ec.status === 'started')
  } finally {
    await ec.stop()
  }
})

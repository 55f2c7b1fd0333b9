'use strict'
// Against real nodes: what a node sends in reaction to
// forged datagrams is bounded (see README "Encryption and security"). A raw
// socket joined to the group forges the datagrams and counts what the victim
// sends (by the victim's instance id in the meta); a real sender's events
// still arrive exactly once.
const test = require('node:test')
const assert = require('node:assert')
const dgram = require('node:dgram')
const crypto = require('node:crypto')
const { requireNetns, port: randomPort, splitDatagram } = require('./helpers.js')
const w = require('./hostile-wire.js')
const Eventcast = require('..')

const GROUP = '224.0.0.1'
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const MiB = 1024 * 1024

/** A raw group member: sends forged datagrams, counts datagrams by sender id. */
async function rawMember (port) {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise((resolve) => sock.bind(port, resolve))
  sock.addMembership(GROUP)
  const seen = []
  sock.on('message', (buf) => seen.push(buf))
  return {
    send: (d) => new Promise((resolve) => sock.send(d, port, GROUP, resolve)),
    /**
     * Datagrams (and bytes) sent by `id` since `from` (an index into what was
     * seen), heartbeats and presence beacons apart (the node sends those on
     * its own timers, whatever it hears).
     */
    from: (id, from = 0) => {
      const idBuf = Buffer.from(id)
      let n = 0; let bytes = 0; let heartbeats = 0; let beacons = 0
      for (const buf of seen.slice(from)) {
        const { meta } = splitDatagram(buf)
        if (!meta.includes(idBuf)) continue
        if (meta.includes(Buffer.from('__ec_hb'))) { heartbeats++; continue }
        if (meta.includes(Buffer.from('__ec_presence'))) { beacons++; continue }
        n++; bytes += buf.length
      }
      return { n, bytes, heartbeats, beacons }
    },
    mark: () => seen.length,
    close: () => sock.close()
  }
}

function retx ({ requester, to, missedSn }) {
  const f = w.metaFields({ id: requester, seqId: w.hex(20), name: '__ec_retx' })
  const req = w.docOf([
    ['id', w.V.str(requester)], ['seqId', w.V.str('')], ['missedSeq', w.V.arr(w.arrOf([]))],
    ['host', w.V.str('198.51.100.7')], ['port', w.V.i32(53)],
    ['missedSn', w.V.arr(w.arrOf(missedSn.map((n) => w.V.i64(n))))], ['to', w.V.str(to)]
  ])
  return w.frame(w.docOf(f), w.docOf([['payload', w.V.doc(req)]]))
}

test('one forged chunk (seqLen 2049) costs the victim one request and raises no gap; real events arrive once', { timeout: 60000 }, async (t) => {
  requireNetns()
  const port = randomPort()
  const victim = Eventcast({ port, messageTtl: 1000 })
  const tx = Eventcast({ port, messageTtl: 1000 })
  const got = new Map()
  victim.on('real', (k) => got.set(k, (got.get(k) || 0) + 1))
  let gaps = 0
  victim.on('gap', () => { gaps++ })
  await victim.start()
  await tx.start()
  const raw = await rawMember(port)
  try {
    // Before the fix: 288 requests, 258 KB out of the victim in 10 s, and a forged 'gap'.
    const forged = w.bogusChunk({ id: '0badc0de00000001', seqId: w.hex(20), seq: 0, seqLen: 2049, size: 10 })
    await raw.send(forged)
    for (let k = 0; k < 20; k++) {
      tx.emit('real', k, k === 10 ? crypto.randomBytes(200000) : 'small')
      await sleep(20)
    }
    await sleep(4000) // several repair rounds and the partial's expiry (messageTtl 1 s)
    const out = raw.from(victim.id)
    const s = victim.stats()
    t.diagnostic(`victim sent ${out.n} datagrams (${out.bytes} B) besides heartbeats and beacons; stats ${JSON.stringify(s)}`)
    // The victim's requests: at most the one for the forged chunk (the real
    // sender's traffic is lossless here, in loopback).
    assert.ok(out.n <= 1, `victim sent ${out.n} datagrams`)
    assert.ok(out.bytes <= 1200, `victim sent ${out.bytes} bytes`)
    assert.equal(gaps, 0)
    assert.equal(s.gapsUnconfirmed, 1)
    assert.equal(s.gapsUnrecovered, 0)
    assert.equal(got.size, 20)
    for (const [k, n] of got) assert.equal(n, 1, `event ${k} delivered ${n} times`)
    // The other member got the forgery too, and was just as quiet.
    assert.ok(raw.from(tx.id).n <= 1 + 20 + Math.ceil(200000 / 1024) + 1)
  } finally {
    raw.close()
    await victim.stop()
    await tx.stop()
  }
})

test('forged __ec_retx naming five retained 1 MiB messages get at most 64 datagrams each', { timeout: 60000 }, async (t) => {
  requireNetns()
  const port = randomPort()
  const victim = Eventcast({ port })
  const rx = Eventcast({ port })
  const got = new Map()
  rx.on('big', (k) => got.set(k, (got.get(k) || 0) + 1))
  await victim.start()
  await rx.start()
  const raw = await rawMember(port)
  try {
    for (let k = 1; k <= 5; k++) victim.emit('big', k, crypto.randomBytes(MiB))
    const end = Date.now() + 20000
    while (got.size < 5 && Date.now() < end) await sleep(50)
    assert.equal(got.size, 5, 'the real messages arrived')
    await sleep(300)
    // Before the fix: one request → 5,127 datagrams (≈6.7 MB); ten with
    // rotating requester ids → 82,047 datagrams (≈107 MB).
    let mark = raw.mark()
    await raw.send(retx({ requester: '0badc0de00000002', to: victim.id, missedSn: [1, 2, 3, 4, 5] }))
    await sleep(500)
    const one = raw.from(victim.id, mark)
    mark = raw.mark()
    for (let i = 0; i < 10; i++) {
      await raw.send(retx({ requester: (0x0badc0de00000100 + i * 7).toString(16).padStart(16, '0'), to: victim.id, missedSn: [1, 2, 3, 4, 5] }))
      await sleep(200)
    }
    await sleep(500)
    const ten = raw.from(victim.id, mark)
    const s = victim.stats()
    t.diagnostic(`one forged request: ${one.n} datagrams (${one.bytes} B); ten more: ${ten.n} datagrams (${ten.bytes} B); stats ${JSON.stringify(s)}`)
    assert.ok(one.n <= 64, `one request: ${one.n} datagrams`)
    assert.ok(ten.n <= 10 * 64, `ten requests: ${ten.n} datagrams`)
    assert.ok(one.n + ten.n >= 64, 'the requests were answered at all (the test measures something)')
    for (const [k, n] of got) assert.equal(n, 1, `message ${k} delivered ${n} times`)
  } finally {
    raw.close()
    await victim.stop()
    await rx.stop()
  }
})

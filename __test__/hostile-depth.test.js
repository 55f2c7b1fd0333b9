'use strict'
// End to end (part C): deeply nested bodies and datagrams replayed
// from another encrypted group, sent at real nodes. Before the fix a single
// datagram nested 6,000 levels deep killed every node of the group (stack
// overflow in the recursive BSON conversion), and a datagram sealed in
// another group with the same passphrase was delivered.
const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const { requireNetns, port, next, sleep, make } = require('./helpers.js')
const w = require('./hostile-wire.js')

requireNetns()

const GROUP = '224.0.0.1'

async function sendPaced (p, datagrams) {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve))
  sock.setMulticastLoopback(true)
  for (let k = 0; k < datagrams.length; k++) {
    await new Promise((resolve, reject) => sock.send(datagrams[k], p, GROUP, (err) => (err ? reject(err) : resolve())))
    if (k % 8 === 7) await sleep(15) // large chunks: let both receivers drain their sockets
  }
  sock.close()
}

async function until (what, cond, ms = 20000) {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** Depth of nested `{a: ...}` objects (iterative: the value is ~100 levels). */
function depthOf (v) {
  let d = 0
  while (v && typeof v === 'object') {
    d++
    v = v.a
  }
  return d
}

test('arguments nested 6,000 and 1,000,000 levels deep: refused and counted, nodes live, real events exactly once', { timeout: 120000 }, async (t) => {
  const p = port()
  const real = make({ port: p })
  const rx = [make({ port: p }), make({ port: p })]
  await Promise.all([real.start(), ...rx.map((n) => n.start())])
  const got = rx.map(() => [])
  rx.forEach((n, i) => {
    n.on('real', (k) => got[i].push(['real', k]))
    n.on('deep', (v) => got[i].push(['deep', depthOf(v)]))
  })
  const malformed0 = rx.map((n) => n.stats().rejectedMalformed)

  real.emit('real', 0)
  await until('the first real event', () => got.every((g) => g.length === 1))

  // nested(d) is an object d + 1 levels deep. 100 levels is what emit accepts.
  const at = (levels, id) => w.eventDatagram({ id, name: 'deep', values: [w.V.doc(w.nested(levels - 1))] })
  const ok100 = at(100, 'feedfacecafe00c1')
  const bad101 = at(101, 'feedfacecafe00c2')
  const bad6000 = at(6000, 'feedfacecafe00c3')
  const million = w.chunkedDatagrams({ id: 'feedfacecafe00c4', name: 'deep', values: [w.V.doc(w.nested(1000000 - 1))], chunk: 60000 })
  const millionBytes = million.reduce((n, d) => n + d.length, 0)
  t.diagnostic(`6,000 levels: one datagram of ${bad6000.length} bytes; 1,000,000 levels: ${million.length} chunks, ${millionBytes} bytes`)
  const rss0 = process.memoryUsage().rss

  await sendPaced(p, [ok100, bad101, bad6000, ...million])
  await until('three refusals at both nodes', () => rx.every((n, i) => n.stats().rejectedMalformed - malformed0[i] >= 3))
  real.emit('real', 1)
  await until('the last real event', () => got.every((g) => g.length === 3))
  await sleep(300) // anything duplicated or late would show up now
  const rssGrowth = process.memoryUsage().rss - rss0
  t.diagnostic(`RSS growth while two nodes received and refused them: ${(rssGrowth / 1048576).toFixed(1)} MiB`)

  for (let i = 0; i < rx.length; i++) {
    assert.deepEqual(got[i], [['real', 0], ['deep', 100], ['real', 1]], `node ${i}`)
    assert.equal(rx[i].stats().rejectedMalformed - malformed0[i], 3, `node ${i}`)
    assert.equal(rx[i].status, 'started')
  }
  // Both nodes reassembled the 8 MB message once each; nothing quadratic.
  assert.ok(rssGrowth < 160 * 1048576, `RSS grew by ${rssGrowth} bytes`)
})

test('an encrypted datagram captured in one group and replayed into another (same passphrase) is refused and counted', { timeout: 60000 }, async (t) => {
  const p1 = port()
  const p2 = p1 + 1
  const key = 'one passphrase for two groups'
  const a = make({ port: p1, encrypt: { key } })
  const b = make({ port: p2, encrypt: { key } })
  const c = make({ port: p2, encrypt: { key } })
  // The attacker listens to group p1.
  const tap = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  const captured = []
  tap.on('message', (m) => captured.push(m))
  await new Promise((resolve) => tap.bind(p1, resolve))
  tap.addMembership(GROUP)
  t.after(() => tap.close())
  await Promise.all([a.start(), b.start(), c.start()])

  const secrets = []
  b.on('secret', (...args) => secrets.push(args))
  a.emit('secret', 'for group one only', 'x'.repeat(3000)) // chunked too
  await until('captured datagrams', () => captured.length >= 4, 5000)
  await sleep(100)
  const replay = captured.slice()
  const decrypt0 = b.stats().rejectedDecrypt
  const malformed0 = b.stats().rejectedMalformed
  await sendPaced(p2, replay)
  await until('b counts the replay', () => b.stats().rejectedDecrypt - decrypt0 >= replay.length, 5000)
  await sleep(200)
  assert.deepEqual(secrets, [])
  assert.equal(b.stats().rejectedDecrypt - decrypt0, replay.length)
  assert.equal(b.stats().rejectedMalformed, malformed0)

  // Its own group still works.
  const hello = next(b, 'hello')
  c.emit('hello', 'group two')
  assert.deepEqual(await hello, ['group two'])
})

test('decodePayload walks before converting: 100 levels decode, deeper bodies throw EMALFORMED', () => {
  const { decodePayload } = require('../binding.js')
  const body = (levels) => w.payloadBody([w.V.doc(w.nested(levels - 1))])
  const [v] = decodePayload(body(100))
  assert.equal(depthOf(v), 100)
  for (const levels of [101, 6000, 1000000]) {
    assert.throws(() => decodePayload(body(levels)), (err) => err.code === 'EMALFORMED', `${levels} levels`)
  }
})

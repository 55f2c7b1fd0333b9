'use strict'
// "reserved names": the events an instance emits on itself (start,
// stop, gap, newListener, ...) stay local, received ones never reach the
// application's lifecycle listeners, protocol names (__ec_*) cannot be
// emitted, and a received 'error' reaches 'error' listeners only as an Error
// with code EREMOTE. The list itself is Rust's (crates/eventcast-engine/src/protocol/names.rs).
const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const { requireNetns, port, next, sleep, make } = require('./helpers.js')
const w = require('./hostile-wire.js')
const binding = require('../binding.js')

requireNetns()

const LIFECYCLE = ['start', 'stop', 'gap', 'drain', 'newListener', 'removeListener', 'replConnected', 'replDisconnected', 'peerUp', 'peerDown', 'peerUpdate']

async function pair () {
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p })
  await a.start()
  await b.start()
  return [a, b, p]
}

/** Sends raw datagrams to the group of port `p` from a socket of its own. */
async function inject (p, datagrams) {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve))
  sock.setMulticastLoopback(true)
  for (const d of datagrams) await new Promise((resolve, reject) => sock.send(d, p, '224.0.0.1', (e) => e ? reject(e) : resolve()))
  sock.close()
}

test('the reserved list comes from Rust and covers every lifecycle event', () => {
  assert.deepEqual([...binding.reservedEvents()].sort(), [...LIFECYCLE].sort())
  assert.equal(binding.protocolPrefix(), '__ec_')
})

test('emitting a lifecycle name reaches local listeners only', async () => {
  const [a, b] = await pair()
  const heardByB = []
  for (const n of ['stop', 'gap', 'replConnected']) b.on(n, () => heardByB.push(n))
  const local = []
  a.on('gap', (info) => local.push(info))
  assert.equal(a.emit('gap', { sender: 'fake', count: 1 }), true)
  a.emit('stop')
  a.emit('replConnected', 'x')
  assert.deepEqual(local, [{ sender: 'fake', count: 1 }])
  const after = next(b, 'after')
  a.emit('after', 1)
  assert.deepEqual(await after, [1])
  assert.deepEqual(heardByB, [])
  assert.equal(a.stats().eventsSent, 1, 'only "after" went out')
  assert.equal(b.status, 'started')
})

test('protocol names cannot be emitted, started or not', async () => {
  const [a] = await pair()
  for (const n of ['__ec_retx', '__ec_hb', '__ec_other']) {
    assert.throws(() => a.emit(n, {}), (e) => e instanceof TypeError && e.code === 'EPAYLOAD', n)
  }
  const stopped = make({ port: port() })
  assert.throws(() => stopped.emit('__ec_retx', {}), (e) => e instanceof TypeError && e.code === 'EPAYLOAD')
  assert.equal(a.stats().eventsSent, 0)
})

test('forged lifecycle and protocol events from the network are dropped and counted', async () => {
  const [a, b, p] = await pair()
  const fired = []
  // newListener/removeListener also fire for the test's own on()/once() calls:
  // count only calls carrying the forged argument.
  // __ec_other: a protocol message this version does not handle. (A forged
  // __ec_presence is a malformed beacon: counted in rejectedMalformed, below.)
  for (const n of [...LIFECYCLE, '__ec_other', '__ec_presence']) b.on(n, (x) => { if (x === 'forged') fired.push(n) })
  const forged = [...LIFECYCLE, '__ec_other'].map((name) =>
    w.eventDatagram({ id: w.hex(8), name, values: [w.V.str('forged')] }))
  const malformed0 = b.stats().rejectedMalformed
  await inject(p, [...forged, w.eventDatagram({ id: w.hex(8), name: '__ec_presence', values: [w.V.str('forged')] })])
  const after = next(b, 'after')
  a.emit('after', 2)
  assert.deepEqual(await after, [2])
  await sleep(100)
  assert.deepEqual(fired, [])
  assert.equal(b.stats().rejectedReserved, forged.length)
  assert.equal(b.stats().rejectedMalformed - malformed0, 1, 'a beacon that is not a beacon document')
  assert.equal(b.status, 'started', 'a forged "stop" does not stop anything')
})

test('a received "error" reaches error listeners as an Error with code EREMOTE', async () => {
  const [a, b] = await pair()
  const got = next(b, 'error')
  a.on('error', () => {}) // a's own local delivery of the emit below
  a.emit('error', 'disk full', { where: 'db' })
  const [err] = await got
  assert.ok(err instanceof Error)
  assert.equal(err.code, 'EREMOTE')
  assert.match(err.message, /disk full/)
  assert.deepEqual(err.args, ['disk full', { where: 'db' }])
})

test('a received "error" without an error listener is logged, never thrown', async () => {
  const [a, b] = await pair()
  a.on('error', () => {})
  a.emit('error', new Error('boom').message)
  const after = next(b, 'after')
  a.emit('after', 3)
  assert.deepEqual(await after, [3])
  assert.equal(b.status, 'started')
})

'use strict'
// Presence through the JS API: peers(), 'peerUp' / 'peerDown' / 'peerUpdate',
// the name / meta / presence options and setMeta(); a peer killed with
// SIGKILL goes down after the timeout; forged presence events from the
// network are never emitted.
const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const { spawn } = require('node:child_process')
const { requireNetns, port, next, make, sleep, waitFor } = require('./helpers.js')
const w = require('./hostile-wire.js')

requireNetns()
const entry = JSON.stringify(require.resolve('..'))
const FAST = { interval: 200, timeout: 1000 }

test('peers appear with what they advertise, update their meta and say goodbye', async () => {
  const p = port()
  const a = make({ port: p, name: 'alpha', presence: FAST })
  const b = make({ port: p, name: 'beta', meta: { role: 'pricing', http: 8080 }, presence: FAST })
  await a.start()
  const up = next(a, 'peerUp', 2000)
  const t0 = Date.now()
  await b.start()
  const [peer] = await up
  assert.ok(Date.now() - t0 < FAST.interval * 1.2, `peerUp after ${Date.now() - t0} ms`)
  assert.equal(peer.id, b.id)
  assert.equal(peer.name, 'beta')
  assert.deepEqual(peer.meta, { role: 'pricing', http: 8080 })
  assert.equal(peer.pid, process.pid)
  assert.equal(peer.port, p)
  assert.equal(peer.transport, 'udp')
  assert.equal(peer.bridged, false)
  assert.equal(peer.legacy, false)
  assert.equal(peer.version, require('../package.json').version)
  assert.equal(typeof peer.hostname, 'string')
  assert.equal(typeof peer.since, 'number')
  assert.ok(peer.lastSeen >= peer.since)
  for (const k of ['eventsSent', 'eventsDelivered', 'datagramsSent', 'repairsSent', 'repairsRequested', 'gapsUnrecovered']) {
    assert.equal(typeof peer.stats[k], 'number', k)
  }
  assert.ok(await waitFor(() => b.peers().length === 1, 2000), 'b sees a within one interval')
  assert.deepEqual(b.peers().map((x) => [x.id, x.name]), [[a.id, 'alpha']])

  // service discovery: find the pricing nodes
  assert.deepEqual(a.peers().filter((x) => x.meta.role === 'pricing').map((x) => x.id), [b.id])

  const update = next(a, 'peerUpdate', 1000)
  assert.equal(b.setMeta({ role: 'pricing', http: 9090 }), b)
  const [updated] = await update
  assert.deepEqual(updated.meta, { role: 'pricing', http: 9090 })
  assert.throws(() => b.setMeta([1, 2]), { name: 'TypeError', code: 'ERR_EVENTCAST_OPTION_VALUE' })
  assert.throws(() => b.setMeta({ big: 'x'.repeat(2000) }), { name: 'RangeError', code: 'ERR_EVENTCAST_OPTION_VALUE' })

  const down = next(a, 'peerDown', 1000)
  await b.stop()
  const [gone] = await down
  assert.equal(gone.id, b.id)
  assert.equal(gone.reason, 'goodbye')
  assert.deepEqual(a.peers(), [])
  assert.deepEqual(b.peers(), [], 'a stopped node lists no peers')
  const s = a.stats()
  assert.ok(s.beaconsSent > 0 && s.beaconsReceived > 0, JSON.stringify(s))
})

test('a peer killed with SIGKILL goes down after the timeout', async () => {
  const p = port()
  const a = make({ port: p, presence: FAST })
  await a.start()
  const child = spawn(process.execPath, ['-e', `
    const ec = require(${entry})({ port: ${p}, name: 'doomed', presence: ${JSON.stringify(FAST)} })
    ec.start().then(() => console.log('started'))
  `], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const [peer] = await next(a, 'peerUp', 5000)
    assert.equal(peer.name, 'doomed')
    assert.equal(peer.pid, child.pid)
    await sleep(FAST.interval)
    const down = next(a, 'peerDown', FAST.timeout * 3)
    const killed = Date.now()
    child.kill('SIGKILL')
    const [gone] = await down
    const after = Date.now() - killed
    assert.equal(gone.reason, 'timeout')
    assert.ok(after <= FAST.timeout + 150, `down ${after} ms after the kill`)
    assert.ok(after >= FAST.timeout - FAST.interval * 1.1 - 50, `down too early: ${after} ms`)
  } finally {
    child.kill('SIGKILL')
  }
})

test('presence options are checked, and presence: false sends and lists nothing', async () => {
  const Eventcast = require('..')
  assert.throws(() => Eventcast({ port: port(), presence: { interval: 10 } }), { name: 'RangeError', code: 'ERR_EVENTCAST_OPTION_VALUE' })
  assert.throws(() => Eventcast({ port: port(), presence: { interval: 1000, timeout: 1500 } }), { name: 'RangeError' })
  assert.throws(() => Eventcast({ port: port(), presence: 'yes' }), { name: 'TypeError' })
  assert.throws(() => Eventcast({ port: port(), name: 'n'.repeat(300) }), { name: 'RangeError' })
  assert.throws(() => Eventcast({ port: port(), name: 5 }), { name: 'TypeError' })
  assert.throws(() => Eventcast({ port: port(), meta: 'role' }), { name: 'TypeError' })
  assert.throws(() => Eventcast({ port: port(), meta: { big: 'x'.repeat(2000) } }), { name: 'RangeError', code: 'ERR_EVENTCAST_OPTION_VALUE' })
  assert.equal(Eventcast({ port: port() }).config.name, process.title.slice(0, 256))

  const p = port()
  const quiet = make({ port: p, presence: false })
  const loud = make({ port: p, presence: FAST })
  await quiet.start()
  await loud.start()
  await sleep(FAST.interval * 3)
  assert.deepEqual(quiet.peers(), [])
  assert.deepEqual(loud.peers(), [], 'a node without presence does not appear')
  assert.equal(quiet.stats().beaconsSent, 0)
  assert.throws(() => quiet.setMeta({ a: 1 }), { name: 'RangeError', code: 'ERR_EVENTCAST_OPTION_VALUE' })
})

test('events named like presence events from the network are never emitted', async () => {
  const p = port()
  const a = make({ port: p, presence: FAST })
  await a.start()
  let fired = 0
  for (const n of ['peerUp', 'peerDown', 'peerUpdate']) a.on(n, () => { fired++ })
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise((resolve) => sock.bind(0, resolve))
  const before = a.stats().rejectedReserved
  for (const name of ['peerUp', 'peerDown', 'peerUpdate']) {
    const d = w.eventDatagram({ id: w.hex(8), name, values: [w.V.str('forged')] })
    await new Promise((resolve) => sock.send(d, p, '224.0.0.1', resolve))
  }
  assert.ok(await waitFor(() => a.stats().rejectedReserved - before === 3, 2000), 'counted as reserved')
  sock.close()
  assert.equal(fired, 0)
})

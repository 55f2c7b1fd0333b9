'use strict'
// start/stop: callbacks, promises, idempotence, events, status, failures.
const test = require('node:test')
const assert = require('node:assert/strict')
const { requireNetns, port, next, make, sleep } = require('./helpers.js')

requireNetns()

test('start/stop with callbacks: events, status, idempotence, return values', async () => {
  const ec = make(port())
  const seen = []
  ec.on('start', () => seen.push('start'))
  ec.on('stop', () => seen.push('stop'))
  await new Promise((resolve, reject) => {
    const r = ec.start((err) => (err ? reject(err) : resolve()))
    assert.equal(r, ec)
    assert.equal(ec.status, 'starting')
  })
  assert.equal(ec.status, 'started')
  // A second start just calls back.
  await new Promise((resolve, reject) => ec.start((err) => (err ? reject(err) : resolve())))
  assert.deepEqual(seen, ['start'])
  const addr = ec.getAddress()
  assert.equal(addr.port, ec.config.port)
  assert.match(addr.host, /^\d+\.\d+\.\d+\.\d+$/)
  await new Promise((resolve, reject) => {
    assert.equal(ec.stop((err) => (err ? reject(err) : resolve())), true)
  })
  assert.equal(ec.status, 'stopped')
  await new Promise((resolve, reject) => assert.equal(ec.stop((err) => (err ? reject(err) : resolve())), true))
  assert.deepEqual(seen, ['start', 'stop'])
})

test('start/stop with promises; concurrent calls coalesce; restart works', async () => {
  const ec = make({ port: port() })
  let starts = 0
  let stops = 0
  ec.on('start', () => starts++)
  ec.on('stop', () => stops++)
  const p = ec.start()
  assert.ok(p instanceof Promise)
  await Promise.all([p, ec.start(), ec.start()])
  assert.equal(starts, 1)
  assert.equal(ec.status, 'started')
  await Promise.all([ec.stop(), ec.stop()])
  assert.equal(stops, 1)
  await ec.start()
  assert.equal(ec.status, 'started')
  await ec.stop()
  assert.equal(starts, 2)
  assert.equal(stops, 2)
  // stop then start queued back to back
  await Promise.all([ec.start(), ec.stop(), ec.start(), ec.stop()])
  assert.equal(ec.status, 'stopped')
})

test('a failing start: cb(err), promise rejection, and "error" only without a callback', async () => {
  // 10.9.8.7 is not an address of this (namespaced) host: bind fails.
  const opts = { port: port(), address: '10.9.8.7' }
  const a = make(opts)
  const err = await new Promise((resolve) => a.start(resolve))
  assert.ok(err instanceof Error)
  assert.equal(err.code, 'EADDRNOTAVAIL')
  assert.equal(a.status, 'stopped')

  const b = make(opts)
  await assert.rejects(b.start(), (e) => e.code === 'EADDRNOTAVAIL')

  const c = make(opts)
  const gotError = next(c, 'error')
  const p = c.start()
  const [e] = await gotError
  assert.equal(e.code, 'EADDRNOTAVAIL')
  await assert.rejects(p)

  // With an 'error' listener, ignoring the returned promise is no unhandled rejection.
  const c2 = make(opts)
  const unhandled = []
  const onUnhandled = (reason) => unhandled.push(reason)
  process.on('unhandledRejection', onUnhandled)
  const gotError2 = next(c2, 'error')
  c2.start()
  await gotError2
  await sleep(50)
  process.off('unhandledRejection', onUnhandled)
  assert.deepEqual(unhandled, [])

  // A callback takes the error: no 'error' event.
  const d = make(opts)
  let errors = 0
  d.on('error', () => errors++)
  await new Promise((resolve) => d.start(resolve))
  assert.equal(errors, 0)
})

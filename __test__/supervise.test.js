'use strict'
// Supervised driver: a panic in a driver task becomes an 'error'
// with code EINTERNAL and a stopped node, never a node that looks alive and
// is dead. The faults are injected through the addon's test hook.
const test = require('node:test')
const assert = require('node:assert')
const { requireNetns, port: randomPort, make, next } = require('./helpers.js')

const native = (ec) => ec[Object.getOwnPropertySymbols(ec).find((s) => s.description === 'eventcast.native')]

for (const task of ['timer', 'stall guard', 'send flush']) {
  test(`a panic in the ${task} task: 'error' EINTERNAL, then stopped; a restart works`, { timeout: 20000 }, async () => {
    requireNetns()
    const port = randomPort()
    const ec = make({ port })
    const peer = make({ port })
    await ec.start()
    await peer.start()
    const errors = []
    ec.on('error', (err) => errors.push(err))
    // (not events.once: it rejects on the 'error' this test expects)
    const stopped = new Promise((resolve) => ec.once('stop', resolve))
    if (task === 'send flush') {
      native(ec)._throttleSends(1) // something must wait in the queue for the flush to run
      ec.emit('queued', 'x'.repeat(70000))
    }
    native(ec)._injectFault(task)
    await stopped
    assert.strictEqual(errors.length, 1, `one error: ${errors.map((e) => e.message)}`)
    assert.ok(errors[0] instanceof Error)
    assert.strictEqual(errors[0].code, 'EINTERNAL')
    assert.match(errors[0].message, new RegExp(task))
    assert.strictEqual(ec.status, 'stopped')
    assert.strictEqual(native(ec).status, 'stopped')
    // Started again, it works.
    native(ec)._throttleSends(null)
    await ec.start()
    const got = next(peer, 'again', 5000)
    ec.emit('again', 1)
    assert.deepStrictEqual(await got, [1])
    await ec.stop()
    await peer.stop()
  })
}

test('unknown task names are refused by the hook', () => {
  const ec = make({ port: randomPort() })
  assert.throws(() => native(ec)._injectFault('nope'), { code: 'EINVALIDOPTION' })
})

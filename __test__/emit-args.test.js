'use strict'
// The emit path, binding.emitArgs(slot, name, ...args) (crates/eventcast-node/src/emit.rs):
// it takes a node by number, so every misuse must be a clear error, never a
// crash; and an emit with many arguments takes them all.
const test = require('node:test')
const assert = require('node:assert/strict')
const binding = require('../binding.js')
const { requireNetns, port, next, make, stateOf } = require('./helpers.js')

requireNetns()

test('emitArgs: a wrong slot, too few arguments or a non-number slot throw, nothing crashes', async () => {
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p })
  await Promise.all([a.start(), b.start()])
  for (const args of [[], [0], ['zero', 'e'], [{}, 'e'], [2 ** 31, 'e'], [4294967295, 'e', 1]]) {
    assert.throws(() => binding.emitArgs(...args), (err) => err.code === 'ENAPI', `emitArgs(${args.map(String).join(', ')})`)
  }
  // With its own slot: a name that is not a string, or an argument that
  // cannot be sent, is refused like emit() refuses it.
  const slot = stateOf(a).slot
  assert.equal(typeof slot, 'number')
  assert.throws(() => binding.emitArgs(slot, 42), (err) => err.code === 'ENAPI')
  assert.throws(() => binding.emitArgs(slot, 'e', () => {}), (err) => err instanceof TypeError && err.code === 'EPAYLOAD')
  // And then it sends.
  const got = next(b, 'direct')
  binding.emitArgs(slot, 'direct', 'x', 2)
  assert.deepEqual(await got, ['x', 2])
})

test('emit with many arguments: all of them arrive, in order', async () => {
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p })
  await Promise.all([a.start(), b.start()])
  const args = Array.from({ length: 300 }, (_, i) => (i % 2 ? `s${i}` : i))
  const got = next(b, 'many')
  a.emit('many', ...args)
  assert.deepEqual(await got, args)
  // And none: the body is an empty array.
  const none = next(b, 'none')
  a.emit('none')
  assert.deepEqual(await none, [])
})

test('emit after the instance stopped and started again uses the same node', async () => {
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p })
  await Promise.all([a.start(), b.start()])
  await a.stop()
  await a.start()
  const got = next(b, 'again')
  a.emit('again', 1)
  assert.deepEqual(await got, [1])
})

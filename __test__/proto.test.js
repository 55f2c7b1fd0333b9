'use strict'
// A received key `__proto__` is an own data property, as JSON.parse makes
// it, never the object's prototype. Before, the binding assigned every key
// with napi_set_property, which for `__proto__` runs Object.prototype's
// setter: the sender chose the prototype of every object it sent (`null`
// made String(o) throw; a Binary made an object that passes for a Buffer).
const test = require('node:test')
const assert = require('node:assert/strict')
const { encodePayload, decodePayload } = require('../binding.js')
const { requireNetns, port, next, make } = require('./helpers.js')
const w = require('./hostile-wire.js')

const { V, docOf, payloadBody } = w
/** `{payload: doc}`: a body whose payload document is the one argument. */
const documentBody = (pairs) => docOf([['payload', V.doc(docOf(pairs))]])

/** `o` is a plain object with an own `__proto__` data property holding `value`. */
function ownProto (o, check, what) {
  assert.equal(Object.getPrototypeOf(o), Object.prototype, `${what}: prototype`)
  assert.ok(Object.hasOwn(o, '__proto__'), `${what}: own __proto__`)
  const d = Object.getOwnPropertyDescriptor(o, '__proto__')
  assert.ok(d.writable && d.enumerable && d.configurable && !d.get && !d.set, `${what}: a data property`)
  assert.equal(String(o), '[object Object]', what)
  assert.ok(!Buffer.isBuffer(o), what)
  assert.deepEqual(Object.keys(o), ['__proto__', 'after'], `${what}: keys in order`)
  assert.equal(o.after, 1)
  check(d.value)
}

const attempts = [
  ['an object', V.doc(docOf([['polluted', V.bool(true)]])), (v) => assert.deepEqual({ ...v }, { polluted: true })],
  ['null', V.null(), (v) => assert.equal(v, null)],
  ['a Binary (Buffer-like prototype)', V.bin(Buffer.from('evil')), (v) => assert.deepEqual(v, Buffer.from('evil'))],
  ['an array', V.arr(w.arrOf([V.i32(1)])), (v) => assert.deepEqual(v, [1])],
  ['a string', V.str('x'), (v) => assert.equal(v, 'x')]
]

test('__proto__ received in args, nested, and in {payload: {...}} bodies: an own data property', () => {
  for (const [what, value, check] of attempts) {
    const pairs = [['__proto__', value], ['after', V.i32(1)]]
    // As an argument.
    const [arg] = decodePayload(payloadBody([V.doc(docOf(pairs))]))
    ownProto(arg, check, `argument, ${what}`)
    // Nested in an object and in an array.
    const [outer] = decodePayload(payloadBody([V.doc(docOf([['a', V.arr(w.arrOf([V.doc(docOf([['b', V.doc(docOf(pairs))]]))]))]]))]))
    assert.equal(Object.getPrototypeOf(outer), Object.prototype)
    ownProto(outer.a[0].b, check, `nested, ${what}`)
    // A `{payload: {...}}` body (its document is the one argument).
    const [doc] = decodePayload(documentBody(pairs))
    ownProto(doc, check, `payload document, ${what}`)
  }
  assert.equal({}.polluted, undefined, 'Object.prototype untouched')
})

test('an own __proto__ property of an emitted object travels as a key and comes back as one', () => {
  const o = JSON.parse('{"__proto__": {"x": 1}, "after": 1}')
  const buf = encodePayload([o])
  assert.ok(buf.includes(Buffer.from('__proto__\0')), 'the key is on the wire')
  const [back] = decodePayload(buf)
  ownProto(back, (v) => assert.deepEqual({ ...v }, { x: 1 }), 'round trip')
  // An inherited prototype is not an own property: nothing is sent for it.
  const plain = Object.create({ inherited: 1 })
  plain.own = 2
  assert.deepEqual(decodePayload(encodePayload([plain])), [{ own: 2 }])
})

test('over the network: a received __proto__ key never becomes the prototype', { timeout: 20000 }, async () => {
  requireNetns()
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p })
  await Promise.all([a.start(), b.start()])
  const got = next(b, 'obj')
  const o = JSON.parse('{"__proto__": null, "after": 1}')
  a.emit('obj', o, { nested: JSON.parse('{"__proto__": {"polluted": true}, "after": 1}') })
  const [first, second] = await got
  ownProto(first, (v) => assert.equal(v, null), 'argument')
  ownProto(second.nested, (v) => assert.deepEqual({ ...v }, { polluted: true }), 'nested')
})

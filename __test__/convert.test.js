'use strict'
// JS ⇄ BSON conversion rules, checked through the addon's encode/decode of
// the `{payload: [...]}` body, and against bodies written by eventcast 0.1.2.
const test = require('node:test')
const assert = require('node:assert/strict')
const { encodePayload, decodePayload } = require('../binding.js')
const { splitDatagram, vectors } = require('./helpers.js')

const rt = (args) => decodePayload(encodePayload(args))

// BSON element type of payload[0] (payload document: int32 len, 0x04 'payload\0', int32 len, type...)
function firstType (buf) {
  const arr = 4 + 1 + 'payload'.length + 1
  return buf[arr + 4]
}

test('numbers: int32, int64, double per js-bson 0.2 (and -0 stays a double)', () => {
  const T = { double: 0x01, int32: 0x10, int64: 0x12 }
  const cases = [
    [0, T.int32], [5, T.int32], [-7, T.int32], [2 ** 31 - 1, T.int32], [-(2 ** 31), T.int32],
    [2 ** 31, T.int64], [-(2 ** 31) - 1, T.int64], [2 ** 40, T.int64], [2 ** 53, T.int64], [-(2 ** 53), T.int64],
    [2 ** 53 + 2, T.double], [3.25, T.double], [-0, T.double], [NaN, T.double], [Infinity, T.double], [-Infinity, T.double]
  ]
  for (const [n, type] of cases) {
    const buf = encodePayload([n])
    assert.equal(firstType(buf), type, `type of ${n}`)
    assert.ok(Object.is(decodePayload(buf)[0], n), `round trip of ${n}`)
  }
})

test('BigInt: int64; beyond ±2^53 arrives as BigInt, within as number; out of range → EPAYLOAD', () => {
  assert.equal(firstType(encodePayload([5n])), 0x12)
  assert.deepEqual(rt([5n, -(2n ** 53n), 2n ** 60n, -(2n ** 63n), 2n ** 63n - 1n]), [5, -(2 ** 53), 2n ** 60n, -(2n ** 63n), 2n ** 63n - 1n])
  for (const big of [2n ** 63n, -(2n ** 63n) - 1n, 2n ** 100n]) {
    assert.throws(() => encodePayload([big]), (e) => e instanceof TypeError && e.code === 'EPAYLOAD')
  }
})

test('strings, booleans, null, undefined, nested arrays and objects', () => {
  const obj = { a: 1, s: 'x', u: undefined, n: null, nested: { arr: [1, 'two', [3, { four: 4 }]], t: true } }
  assert.deepEqual(rt(['', 'héllo ✓ 𝄞', true, false, null, undefined, [], {}, [undefined, , 1], obj]), // eslint-disable-line no-sparse-arrays
    ['', 'héllo ✓ 𝄞', true, false, null, null, [], {}, [null, null, 1],
      { a: 1, s: 'x', u: null, n: null, nested: { arr: [1, 'two', [3, { four: 4 }]], t: true } }])
  // Key order survives; symbol keys and non-enumerable properties are not sent.
  const o = { z: 1, a: 2, [Symbol('s')]: 3 }
  Object.defineProperty(o, 'hidden', { value: 4, enumerable: false })
  const back = rt([o])[0]
  assert.deepEqual(Object.keys(back), ['z', 'a'])
})

test('Date, RegExp (g↔s quirk), Buffer/Uint8Array/ArrayBuffer', () => {
  const [d, re, buf, u8, ab, f64] = rt([new Date(1700000000123), /a+b\/c/gim, Buffer.from([0, 1, 254, 255]),
    new Uint8Array([7, 8]), new Uint8Array([9]).buffer, new Float64Array([1])])
  assert.ok(d instanceof Date)
  assert.equal(d.getTime(), 1700000000123)
  assert.ok(re instanceof RegExp)
  assert.equal(re.source, 'a+b\\/c')
  assert.equal(re.flags, 'gim')
  assert.ok(Buffer.isBuffer(buf))
  assert.deepEqual([...buf], [0, 1, 254, 255])
  assert.ok(Buffer.isBuffer(u8))
  assert.deepEqual([...u8], [7, 8])
  assert.deepEqual([...ab], [9])
  assert.equal(f64.length, 8)
  // On the wire: 0.1.x's js-bson wrote JS flag g as BSON option s.
  const wire = encodePayload([/x/g])
  assert.ok(wire.includes(Buffer.from('x\0s\0')), 'flag g travels as option s')
  // The one flag mapping (Rust's wire::js_flags_to_bson_options and back):
  // u travels as u (it changes what the pattern matches); y, d, v and JS's
  // s (dotAll, whose BSON letter js-bson spent on g) have no BSON option.
  assert.ok(encodePayload([/x/giu]).includes(Buffer.from('x\0isu\0')), 'options in BSON order')
  assert.equal(rt([/x/u])[0].flags, 'u', 'flag u round-trips')
  assert.equal(rt([/\u{1F600}/gimu])[0].flags, 'gimu')
  assert.equal(rt([/x/ysd])[0].flags, '', 'flags BSON cannot carry are dropped')
  assert.throws(() => encodePayload([new Date(NaN)]), (e) => e.code === 'EPAYLOAD')
})

test('unsendable values throw TypeError EPAYLOAD', () => {
  const circular = { a: 1 }
  circular.self = circular
  const arr = []
  arr.push(arr)
  let deep = {}
  const top = deep
  for (let i = 0; i < 150; i++) deep = deep.next = {}
  for (const bad of [() => 1, function named () {}, Symbol('x'), circular, arr, top, { f: () => 1 }, [Symbol.iterator]]) {
    assert.throws(() => encodePayload([bad]), (e) => {
      assert.ok(e instanceof TypeError, e.message)
      assert.equal(e.code, 'EPAYLOAD')
      return true
    })
  }
  // A throwing getter propagates its own exception.
  assert.throws(() => encodePayload([{ get x () { throw new RangeError('boom') } }]), /boom/)
})

test('bodies written by eventcast 0.1.2 decode to the expected arguments', (t) => {
  const v = vectors()
  const byName = Object.fromEntries(v.cases.map((c) => [c.name, c]))
  const body = (name) => splitDatagram(Buffer.from(byName[name].datagrams[0], 'hex')).body
  assert.deepEqual(decodePayload(body('plain-one-string')), ['hello'])
  assert.deepEqual(decodePayload(body('plain-no-args')), [])
  const args = decodePayload(body('plain-types'))
  assert.equal(args.length, 13)
  const [doc, arr, nul, uni, i5, im7, dbl, tr, fa, date, re, bin, big] = args
  assert.equal(typeof doc, 'object')
  assert.ok(Array.isArray(arr))
  assert.equal(nul, null)
  assert.equal(typeof uni, 'string')
  assert.equal(i5, 5)
  assert.equal(im7, -7)
  assert.equal(dbl, 3.25)
  assert.equal(tr, true)
  assert.equal(fa, false)
  assert.ok(date instanceof Date)
  assert.equal(date.getTime(), 1700000000123)
  assert.ok(re instanceof RegExp)
  assert.equal(re.source, 'serialize me please')
  assert.equal(re.flags, 'i')
  assert.ok(Buffer.isBuffer(bin))
  assert.deepEqual([...bin], [0x00, 0x01, 0x02, 0xfe, 0xff])
  assert.equal(big, 2 ** 40)
  // Our encoder writes the same bytes js-bson 0.2 wrote for the same arguments,
  // except 2**40: 0.1.2 actually wrote it as a double, we follow PROTOCOL.md (int64);
  // both decode to the same JS number on either side.
  const ours = encodePayload(args)
  const theirs = body('plain-types')
  assert.equal(ours.length, theirs.length)
  const at = theirs.length - 14 // type byte of element "12"
  assert.equal(theirs[at], 0x01)
  assert.equal(ours[at], 0x12)
  assert.deepEqual(ours.subarray(0, at), theirs.subarray(0, at))
  assert.deepEqual(decodePayload(ours), decodePayload(theirs))
})

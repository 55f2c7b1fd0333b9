'use strict'
// Hand-built eventcast datagrams (PROTOCOL.md) for the hostile-input and flood
// tests: a tiny BSON writer that can also write what no honest encoder would
// (wrong types, lying sizes, invalid UTF-8, deep nesting), valid datagrams of
// fake 0.1.x senders, and generators of malformed ones.
const crypto = require('node:crypto')

// ---- BSON -------------------------------------------------------------------
const T = { DOUBLE: 0x01, STR: 0x02, DOC: 0x03, ARR: 0x04, BIN: 0x05, BOOL: 0x08, NULL: 0x0a, I32: 0x10, I64: 0x12 }

const i32 = (n) => { const b = Buffer.alloc(4); b.writeInt32LE(n); return b }
const cstr = (s) => Buffer.concat([Buffer.isBuffer(s) ? s : Buffer.from(s), Buffer.from([0])])

/** One element: type byte, key, raw value bytes. */
const el = (type, key, value) => Buffer.concat([Buffer.from([type]), cstr(key), value])
/** A document from raw elements. */
const doc = (...elems) => {
  const body = Buffer.concat(elems)
  return Buffer.concat([i32(4 + body.length + 1), body, Buffer.from([0])])
}
const strVal = (s) => { const b = Buffer.isBuffer(s) ? s : Buffer.from(s); return Buffer.concat([i32(b.length + 1), b, Buffer.from([0])]) }
const binVal = (b) => Buffer.concat([i32(b.length), Buffer.from([0]), b])
const i64Val = (n) => { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(n)); return b }
const dblVal = (x) => { const b = Buffer.alloc(8); b.writeDoubleLE(x); return b }

/** Typed value helpers: [type, bytes]. */
const V = {
  str: (s) => [T.STR, strVal(s)],
  i32: (n) => [T.I32, i32(n)],
  i64: (n) => [T.I64, i64Val(n)],
  dbl: (x) => [T.DOUBLE, dblVal(x)],
  bool: (b) => [T.BOOL, Buffer.from([b ? 1 : 0])],
  null: () => [T.NULL, Buffer.alloc(0)],
  bin: (b) => [T.BIN, binVal(b)],
  doc: (d) => [T.DOC, d],
  arr: (d) => [T.ARR, d],
  raw: (type, bytes) => [type, bytes]
}

/** A document from [key, [type, bytes]] pairs. */
const docOf = (pairs) => doc(...pairs.map(([k, [t, v]]) => el(t, k, v)))
const arrOf = (values) => docOf(values.map((v, k) => [String(k), v]))

/** `{a: {a: ... {}}}`, `depth` levels, written in one pass (8 bytes per level). */
function nested (depth) {
  const total = 8 * depth + 5
  const b = Buffer.alloc(total) // zero-filled: the terminators are already there
  for (let k = 0; k < depth; k++) {
    b.writeInt32LE(total - 8 * k, 7 * k)
    b[7 * k + 4] = T.DOC
    b[7 * k + 5] = 0x61 // 'a'
  }
  b.writeInt32LE(5, 7 * depth)
  return b
}

// ---- datagrams -----------------------------------------------------------------
const hex = (bytes) => crypto.randomBytes(bytes).toString('hex')

function frame (meta, body = Buffer.alloc(0)) {
  const h = Buffer.alloc(2)
  h.writeUInt16BE(Math.min(meta.length, 0xffff))
  return Buffer.concat([h, meta, body])
}

/** 0.1.x meta fields in 0.1.x's order, as [key, value] pairs (mutable for tests). */
function metaFields ({ id, seqId, seq = 0, seqLen = 1, seqEnd, name, v = 3 }) {
  return [
    ['v', V.i32(v)],
    ['seq', V.i32(seq)],
    ['seqLen', V.i32(seqLen)],
    ['seqId', V.str(seqId)],
    ['seqEnd', V.bool(seqEnd === undefined ? seq === seqLen - 1 : seqEnd)],
    ['enc', V.bool(false)],
    ['name', V.str(name)],
    ['host', V.str('127.0.0.1')],
    ['port', V.i32(9)],
    ['hostname', V.str('mallory')],
    ['id', V.str(id)],
    ['time', V.str(new Date().toISOString())]
  ]
}

/** `{payload: [values...]}`. */
const payloadBody = (values) => docOf([['payload', V.arr(arrOf(values))]])

/** A valid unchunked event datagram. */
function eventDatagram ({ id, name, values, seqId = hex(20) }) {
  return frame(docOf(metaFields({ id, seqId, name })), payloadBody(values))
}

/** A valid message cut into chunks of `chunk` bytes (PROTOCOL.md "Chunking"). */
function chunkedDatagrams ({ id, name, values, chunk = 1024 }) {
  const whole = eventDatagram({ id, name, values })
  const seqId = hex(20)
  const n = Math.ceil(whole.length / chunk)
  const out = []
  for (let s = 0; s < n; s++) {
    out.push(frame(docOf(metaFields({ id, seqId, seq: s, seqLen: n, name })), whole.subarray(s * chunk, (s + 1) * chunk)))
  }
  return out
}

/** A bogus chunk: part `seq` of a group of `seqLen` that will never complete. */
function bogusChunk ({ id, seqId, seq, seqLen, size, seqEnd = false }) {
  return frame(docOf(metaFields({ id, seqId, seq, seqLen, seqEnd, name: 'flood' })), crypto.randomBytes(size))
}

// ---- malformed datagrams ---------------------------------------------------------
// Each generator returns [datagram, certain] where `certain` means a correct
// node must reject it outright and count it (as malformed or version): the
// datagram breaks the framing or BSON structure itself, or has v != 3. Wrong
// field types or invalid UTF-8 may be read leniently (0.1.x's js-bson did),
// so those are only required not to hurt.
function makeMalformed (rng) {
  const pick = (n) => Math.floor(rng() * n)
  const fakeIds = ['0badc0de00000001', '0badc0de00000002', '0badc0de00000003', 'not-hex-at-all!!']
  const groups = Array.from({ length: 16 }, (_, k) => `${'f'.repeat(38)}${k.toString(16).padStart(2, '0')}`)
  const randomBytes = (n) => { const b = Buffer.alloc(n); for (let k = 0; k < n; k++) b[k] = pick(256); return b }
  const base = () => ({ id: fakeIds[pick(fakeIds.length)], seqId: groups[pick(groups.length)], name: 'hostile' })
  const single = () => eventDatagram({ ...base(), values: [V.str('x'), V.i32(pick(1000))] })

  const kinds = {
    randomBytes: () => [randomBytes(pick(1400)), false],
    tinyHeader: () => [randomBytes(pick(2)), true],
    truncated: () => { const d = single(); return [d.subarray(0, 2 + pick(d.length - 3)), true] },
    metaLengthPastEnd: () => {
      const d = Buffer.from(single())
      d.writeUInt16BE(Math.min(0xffff, d.length - 1 + pick(500)))
      return [d, true]
    },
    metaNotBson: () => {
      const m = randomBytes(5 + pick(200))
      m.writeInt32LE(m.length + 1 + pick(100)) // declared length never matches
      return [frame(m, payloadBody([V.i32(1)])), true]
    },
    deeplyNested: () => {
      const f = metaFields({ ...base() })
      f[6] = ['name', V.doc(nested(200 + pick(1500)))]
      return [frame(docOf(f), payloadBody([V.i32(1)])), false]
    },
    deepUnknownField: () => {
      const f = metaFields({ ...base() })
      f.push(['zz', V.doc(nested(500 + pick(1500)))])
      return [frame(docOf(f), payloadBody([V.i32(1)])), false]
    },
    wrongTypes: () => {
      const f = metaFields({ ...base() })
      const wrong = [
        ['seq', V.str('0')], ['seqLen', V.str('1')], ['seqId', V.i32(7)], ['seqEnd', V.str('true')],
        ['name', V.i32(5)], ['id', V.bool(true)], ['port', V.str('9')], ['enc', V.i32(1)], ['v', V.str('3')]
      ][pick(9)]
      const k = f.findIndex(([key]) => key === wrong[0])
      f[k] = wrong
      return [frame(docOf(f), payloadBody([V.i32(1)])), false]
    },
    seqBeyondSeqLen: () => {
      const n = 1 + pick(20)
      return [frame(docOf(metaFields({ ...base(), seq: n + pick(5), seqLen: n, seqEnd: false })), randomBytes(pick(1000))), false]
    },
    seqLenMillions: () => {
      const n = 1_000_000 + pick(2_000_000_000)
      return [frame(docOf(metaFields({ ...base(), seq: pick(n), seqLen: n, seqEnd: false })), randomBytes(pick(1024))), false]
    },
    negativeSeqLen: () => [frame(docOf(metaFields({ ...base(), seq: -pick(3), seqLen: -pick(3), seqEnd: false })), randomBytes(100)), false],
    conflictingChunks: () => {
      const n = 2 + pick(30)
      const s = pick(n)
      return [frame(docOf(metaFields({ ...base(), seq: s, seqLen: n, seqEnd: s === n - 1 || rng() < 0.2 })), randomBytes(pick(1500))), false]
    },
    invalidUtf8: () => {
      const f = metaFields({ ...base() })
      const k = [3, 6, 7, 9, 10][pick(5)]
      f[k] = [f[k][0], V.str(Buffer.from([0xff, 0xfe, 0x61, 0xc3, 0x28, 0xed, 0xa0, 0x80]))]
      return [frame(docOf(f), payloadBody([V.i32(1)])), false]
    },
    invalidUtf8InArgs: () => [frame(docOf(metaFields({ ...base() })), payloadBody([V.str(Buffer.from([0xc3, 0x28, 0xff]))])), false],
    hugeDeclaredBody: () => {
      const b = payloadBody([V.i32(1)])
      b.writeInt32LE(0x7ffffff0)
      return [frame(docOf(metaFields({ ...base() })), b), true]
    },
    hugeDeclaredString: () => {
      const f = metaFields({ ...base() })
      f[6] = ['name', V.raw(T.STR, Buffer.concat([i32(0x7fffffff), Buffer.from('abc\0')]))]
      return [frame(docOf(f), payloadBody([V.i32(1)])), true]
    },
    hugeDeclaredBinary: () => {
      const bogus = Buffer.concat([i32(0x7ffffff0), Buffer.from([0]), randomBytes(8)])
      return [frame(docOf(metaFields({ ...base() })), docOf([['payload', V.arr(docOf([['0', V.raw(T.BIN, bogus)]]))]])), true]
    },
    bodyNotBson: () => [frame(docOf(metaFields({ ...base() })), randomBytes(1 + pick(300))), false],
    otherVersion: () => [frame(docOf(metaFields({ ...base(), v: [0, 1, 2, 4, 99, -1][pick(6)] })), payloadBody([V.i32(1)])), true],
    encryptedGarbage: () => {
      // A well-formed id, so that the node gets as far as decrypting (one that
      // is not 16 lower-case hex chars is refused at decode, as malformed).
      const f = metaFields({ ...base(), id: fakeIds[pick(fakeIds.length - 1)] })
      f[5] = ['enc', V.bool(true)]
      return [frame(docOf(f), randomBytes(16 * (1 + pick(8)))), false]
    },
    bogusRetx: () => {
      const f = metaFields({ ...base(), name: '__ec_retx' })
      const missed = Array.from({ length: pick(600) }, () => V.i32(pick(1 << 30)))
      const req = docOf([['id', V.str('0badc0de00000009')], ['seqId', V.str(groups[pick(groups.length)])], ['missedSeq', V.arr(arrOf(missed))], ['host', V.str('198.51.100.7')], ['port', V.i32(pick(65536))]])
      return [frame(docOf(f), docOf([['payload', V.doc(req)]])), false]
    }
  }
  const names = Object.keys(kinds)
  return () => {
    const kind = names[pick(names.length)]
    const [dg, certain] = kinds[kind]()
    return { kind, dg, certain }
  }
}

/** A seeded PRNG (mulberry32) so a failing run can be replayed. */
function prng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** UDP receive drops of this network namespace so far (kernel counters). */
function udpDrops () {
  try {
    const lines = require('node:fs').readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'))
    const [head, vals] = lines.map((l) => l.trim().split(/\s+/))
    const get = (k) => Number(vals[head.indexOf(k)] || 0)
    // Buffer overflows and memory pressure only: InErrors also counts datagrams a
    // socket filter refused, i.e. every node's own looped-back datagrams.
    return get('RcvbufErrors') + get('MemErrors')
  } catch {
    return 0
  }
}

module.exports = { T, V, el, doc, docOf, arrOf, nested, frame, metaFields, payloadBody, eventDatagram, chunkedDatagrams, bogusChunk, makeMalformed, prng, hex, udpDrops }

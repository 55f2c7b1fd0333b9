'use strict'
// The tags of delivered batches (error, gap, done, drain;
// an event entry is [name, ...args], a string first) are defined once, in
// Rust (crates/eventcast-node/src/delivery.rs), and index.js reads them through
// binding.batchTags(). These tests fail when the two sides disagree: a tag
// Rust defines that index.js does not handle, a tag index.js handles
// differently from what it means, or a batch whose entries are not laid out
// as index.js reads them.
const test = require('node:test')
const assert = require('node:assert/strict')
const binding = require('../binding.js')
const { inPrivateNetns } = require('../scripts/netns.js')
const { make, port, next, waitFor, stateOf } = require('./helpers.js')

const TAG = binding.batchTags()

// The tests that open sockets: skipped, with the reason, outside a private network namespace.
const SOCKETS = {
  skip: !inPrivateNetns() && 'opens sockets: needs a private network namespace (run under scripts/netns.js or npm test)'
}

/** Two instances on one fresh port (not started). */
function pair () {
  const p = port()
  return [make({ port: p }), make({ port: p })]
}

// What each tag must do when index.js receives it; one entry per tag Rust defines.
const EFFECTS = {
  error: async (ec, tag) => {
    const got = next(ec, 'error', 500)
    ec._onBatch([[tag, 'ESOMETHING', 'went wrong']])
    const [err] = await got
    assert.ok(err instanceof Error)
    assert.equal(err.code, 'ESOMETHING')
    assert.equal(err.message, 'went wrong')
  },
  gap: async (ec, tag) => {
    const got = next(ec, 'gap', 500)
    ec._onBatch([[tag, '0123456789abcdef', 3]])
    assert.deepEqual(await got, [{ sender: '0123456789abcdef', count: 3 }])
  },
  done: async (ec, tag) => {
    const st = stateOf(ec)
    let resolved = 0
    st.resolveDrained = () => { resolved++ }
    ec._onBatch([[tag]])
    assert.equal(resolved, 1, 'done resolves the end of the started period')
  },
  drain: async (ec, tag) => {
    const got = next(ec, 'drain', 500)
    ec._onBatch([[tag]])
    assert.deepEqual(await got, [])
  },
  // A peer travels as the JSON of Rust's peer_json; 'peerDown' adds the reason.
  peerUp: async (ec, tag) => {
    const got = next(ec, 'peerUp', 500)
    ec._onBatch([[tag, '{"id":"0123456789abcdef","name":"x","meta":{"a":1}}']])
    assert.deepEqual(await got, [{ id: '0123456789abcdef', name: 'x', meta: { a: 1 } }])
  },
  peerDown: async (ec, tag) => {
    const got = next(ec, 'peerDown', 500)
    ec._onBatch([[tag, '{"id":"0123456789abcdef"}', 'timeout']])
    assert.deepEqual(await got, [{ id: '0123456789abcdef', reason: 'timeout' }])
  },
  peerUpdate: async (ec, tag) => {
    const got = next(ec, 'peerUpdate', 500)
    ec._onBatch([[tag, '{"id":"0123456789abcdef","meta":{"b":2}}']])
    assert.deepEqual(await got, [{ id: '0123456789abcdef', meta: { b: 2 } }])
  },
  // request, name, fromId, rid, timeoutMs, ...args: the handler of `name` runs with the args
  // (its reply is not sent: the instance is not started).
  request: async (ec, tag) => {
    const calls = []
    ec.handle('sum', (...args) => { calls.push(args); return 3 })
    ec._onBatch([[tag, 'sum', 'fedcba9876543210', '00000000000000ab', 1000, 1, 2]])
    assert.deepEqual(calls, [[1, 2]])
    ec.unhandle('sum')
  },
  // reply, rid, peerId, value: resolves the request with that id.
  reply: async (ec, tag) => {
    const { requests } = stateOf(ec)
    const got = new Promise((resolve, reject) => requests.asks.set('00000000000000ab', { first: true, resolve, reject, timer: null, name: 'sum' }))
    ec._onBatch([[tag, '00000000000000ab', 'fedcba9876543210', 42]])
    assert.equal(await got, 42)
  },
  // replyError, rid, peerId, message, code: rejects it with EREMOTE.
  replyError: async (ec, tag) => {
    const { requests } = stateOf(ec)
    const got = new Promise((resolve, reject) => requests.asks.set('00000000000000ab', { first: true, resolve, reject, timer: null, name: 'sum' }))
    ec._onBatch([[tag, '00000000000000ab', 'fedcba9876543210', 'no such thing', 'ENOENT']])
    await assert.rejects(got, { code: 'EREMOTE', message: 'no such thing', peer: 'fedcba9876543210', remoteCode: 'ENOENT' })
  }
}

test('batch tags: Rust defines distinct small integers', () => {
  const values = Object.values(TAG)
  assert.ok(values.length > 0)
  for (const v of values) assert.ok(Number.isInteger(v) && v >= 0 && v < 256, `tag ${v}`)
  assert.equal(new Set(values).size, values.length, 'tags are distinct')
})

test('batch entries: an event entry [name, ...args] is emitted as is', async () => {
  const Eventcast = require('..')
  const ec = Eventcast({ port: port() })
  const got = next(ec, 'hello', 500)
  ec._onBatch([['hello', 1, 'two']])
  assert.deepEqual(await got, [1, 'two'])
})

test('batch tags: index.js handles exactly the tags Rust defines, each as it means', async () => {
  assert.deepEqual(Object.keys(TAG).sort(), Object.keys(EFFECTS).sort(),
    'a tag was added or removed in crates/eventcast-node/src/delivery.rs: handle it in index.js _onBatch and here')
  const Eventcast = require('..')
  for (const [name, effect] of Object.entries(EFFECTS)) {
    // A fresh, never started instance per tag: nothing but _onBatch is involved.
    const ec = Eventcast({ port: port() })
    await effect(ec, TAG[name])
    // And an entry of an unknown tag does nothing at all (no event, no throw).
    const seen = []
    for (const ev of ['hello', 'error', 'gap', 'drain', 'peerUp', 'peerDown', 'peerUpdate']) ec.on(ev, () => seen.push(ev))
    stateOf(ec).resolveDrained = () => seen.push('done')
    ec._onBatch([[Math.max(...Object.values(TAG)) + 1, 'hello', 'x']])
    assert.deepEqual(seen, [], `unknown tag after ${name}`)
  }
})

test('batch tags: the batches the addon delivers use the exported tags', SOCKETS, async () => {
  const [a, b] = pair()
  const batches = []
  const onBatch = b._onBatch
  b._onBatch = function (batch) {
    batches.push([...batch])
    return onBatch.call(this, batch)
  }
  await a.start()
  await b.start()
  const got = next(b, 'ping')
  a.emit('ping', 42, Buffer.from('abc'))
  const [n, buf] = await got
  assert.equal(n, 42)
  assert.ok(Buffer.isBuffer(buf), 'a binary argument arrives as a Buffer')
  assert.equal(buf.toString(), 'abc')
  await b.stop()
  assert.ok(await waitFor(() => batches.length >= 2, 1000))
  const entries = batches.flat()
  const known = new Set(Object.values(TAG))
  for (const e of entries) {
    assert.ok(Array.isArray(e), 'one array per entry')
    if (typeof e[0] !== 'string') assert.ok(known.has(e[0]), `entry tag ${e[0]} is one of batchTags()`)
  }
  assert.ok(entries.some((e) => e[0] === 'ping' && e[1] === 42), 'the event entry')
  assert.deepEqual(entries[entries.length - 1], [TAG.done], 'the period ends with done')
})

test('received Buffers: small ones share pooled ArrayBuffers without overlapping, large ones have their own', SOCKETS, async () => {
  const [a, b] = pair()
  const got = []
  b.on('bin', (i, buf, nested) => got.push({ i, buf, nested }))
  await a.start()
  await b.start()
  // Sizes around the pool's edges: empty, odd, just under and over 4 KiB (the
  // pooling limit), and enough of them to fill several 8 KiB pools.
  const sizes = []
  for (let i = 0; i < 200; i++) sizes.push([0, 1, 7, 33, 1000, 4095, 4096, 5000][i % 8])
  const content = (i, n) => Buffer.alloc(n, i % 251)
  sizes.forEach((n, i) => a.emit('bin', i, content(i, n), { inner: content(i + 1, 3) }))
  assert.ok(await waitFor(() => got.length === sizes.length, 5000), `got ${got.length}/${sizes.length}`)
  for (const { i, buf, nested } of got) {
    assert.ok(Buffer.isBuffer(buf) && Buffer.isBuffer(nested.inner))
    assert.ok(buf.equals(content(i, sizes[i])), `event ${i}: ${sizes[i]} bytes intact`)
    assert.ok(nested.inner.equals(content(i + 1, 3)), `event ${i}: nested Buffer intact`)
    if (sizes[i] >= 4096) assert.equal(buf.buffer.byteLength, sizes[i], 'a large Buffer has its own memory')
    else assert.equal(buf.byteOffset % 8, 0, 'pooled Buffers start 8-aligned')
  }
  // Writing into every received Buffer changes no other one: the views do not overlap.
  for (const { buf } of got) buf.fill(0xee)
  for (const { i, nested } of got) assert.ok(nested.inner.equals(content(i + 1, 3)), `event ${i}: untouched by the others' writes`)
  await a.stop()
  await b.stop()
})

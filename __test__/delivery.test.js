'use strict'
// Issue 11 item 3: the tags of delivered batches (event, error, gap, done,
// drain) are defined once, in Rust (src/binding/delivery.rs), and index.js
// reads them through binding.batchTags(). These tests fail when the two sides
// disagree: a tag Rust defines that index.js does not handle, a tag index.js
// handles differently from what it means, or a batch whose tags are not the
// exported ones.
const test = require('node:test')
const assert = require('node:assert/strict')
const binding = require('../binding.js')
const { inPrivateNetns } = require('../scripts/netns.js')
const { make, port, next, waitFor } = require('./helpers.js')

const TAG = binding.batchTags()

/** The instance's private state (index.js keeps it behind a symbol). */
function stateOf (ec) {
  const sym = Object.getOwnPropertySymbols(ec).find((s) => s.description === 'eventcast.state')
  assert.ok(sym, 'index.js keeps its state under Symbol(eventcast.state)')
  return ec[sym]
}

// What each tag must do when index.js receives it; one entry per tag Rust defines.
const EFFECTS = {
  event: async (ec, tag) => {
    const got = next(ec, 'hello', 500)
    ec._onBatch([tag, ['hello', 1, 'two'], undefined])
    assert.deepEqual(await got, [1, 'two'])
  },
  error: async (ec, tag) => {
    const got = next(ec, 'error', 500)
    ec._onBatch([tag, 'ESOMETHING', 'went wrong'])
    const [err] = await got
    assert.ok(err instanceof Error)
    assert.equal(err.code, 'ESOMETHING')
    assert.equal(err.message, 'went wrong')
  },
  gap: async (ec, tag) => {
    const got = next(ec, 'gap', 500)
    ec._onBatch([tag, '0123456789abcdef', 3])
    assert.deepEqual(await got, [{ sender: '0123456789abcdef', count: 3 }])
  },
  done: async (ec, tag) => {
    const st = stateOf(ec)
    let resolved = 0
    st.resolveDrained = () => { resolved++ }
    ec._onBatch([tag, undefined, undefined])
    assert.equal(resolved, 1, 'done resolves the end of the started period')
  },
  drain: async (ec, tag) => {
    const got = next(ec, 'drain', 500)
    ec._onBatch([tag, 0, undefined])
    assert.deepEqual(await got, [])
  }
}

test('batch tags: Rust defines distinct small integers', () => {
  const values = Object.values(TAG)
  assert.ok(values.length > 0)
  for (const v of values) assert.ok(Number.isInteger(v) && v >= 0 && v < 256, `tag ${v}`)
  assert.equal(new Set(values).size, values.length, 'tags are distinct')
})

test('batch tags: index.js handles exactly the tags Rust defines, each as it means', async () => {
  assert.deepEqual(Object.keys(TAG).sort(), Object.keys(EFFECTS).sort(),
    'a tag was added or removed in src/binding/delivery.rs: handle it in index.js _onBatch and here')
  const Eventcast = require('..')
  for (const [name, effect] of Object.entries(EFFECTS)) {
    // A fresh, never started instance per tag: nothing but _onBatch is involved.
    const ec = Eventcast({ port: port() })
    await effect(ec, TAG[name])
    // And an entry of an unknown tag does nothing at all (no event, no throw).
    const seen = []
    for (const ev of ['hello', 'error', 'gap', 'drain']) ec.on(ev, () => seen.push(ev))
    stateOf(ec).resolveDrained = () => seen.push('done')
    ec._onBatch([Math.max(...Object.values(TAG)) + 1, ['hello'], 'x'])
    assert.deepEqual(seen, [], `unknown tag after ${name}`)
  }
})

test('batch tags: the batches the addon delivers use the exported tags', {
  skip: !inPrivateNetns() && 'opens sockets: needs a private network namespace (run under scripts/netns.js or npm test)'
}, async () => {
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p })
  const batches = []
  const onBatch = b._onBatch
  b._onBatch = function (batch) {
    batches.push([...batch])
    return onBatch.call(this, batch)
  }
  await a.start()
  await b.start()
  const got = next(b, 'ping')
  a.emit('ping', 42)
  assert.deepEqual(await got, [42])
  await b.stop()
  assert.ok(await waitFor(() => batches.length >= 2, 1000))
  const entries = batches.flatMap((batch) => {
    assert.equal(batch.length % 3, 0, 'three slots per entry')
    const out = []
    for (let i = 0; i < batch.length; i += 3) out.push(batch.slice(i, i + 3))
    return out
  })
  const known = new Set(Object.values(TAG))
  for (const e of entries) assert.ok(known.has(e[0]), `entry tag ${e[0]} is one of batchTags()`)
  assert.ok(entries.some((e) => e[0] === TAG.event && e[1][0] === 'ping' && e[1][1] === 42), 'the event entry')
  assert.equal(entries[entries.length - 1][0], TAG.done, 'the period ends with done')
})

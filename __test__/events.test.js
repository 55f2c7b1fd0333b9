'use strict'
// emit semantics and events between two instances.
const test = require('node:test')
const assert = require('node:assert/strict')
const events = require('node:events')
const fs = require('node:fs')
const path = require('node:path')
const { requireNetns, port, next, sleep, make, captureStdout, records } = require('./helpers.js')

requireNetns()

async function pair (opts = {}) {
  const p = port()
  const a = make({ ...opts, port: p })
  const b = make({ ...opts, port: p })
  await Promise.all([a.start(), b.start()])
  return [a, b]
}

test('emit: sends, then emits locally and synchronously, returning EventEmitter#emit\'s result', async () => {
  const [a, b] = await pair()
  const got = next(b, 'hello')
  let local = null
  a.on('hello', (...args) => { local = args })
  assert.equal(a.emit('hello', 'world', 1), true)
  assert.deepEqual(local, ['world', 1], 'local listener ran synchronously')
  assert.equal(a.emit('nobody-listens', 1), false)
  assert.deepEqual(await got, ['world', 1])
})

test('every data type round-trips between two instances', async () => {
  const [a, b] = await pair()
  const args = [
    'text ✓', '', 0, 42, -7, 2 ** 31, 2 ** 40, -(2 ** 53), 3.25, -0, NaN, Infinity,
    2n ** 60n, 5n, true, false, null, undefined,
    [1, 'two', [3]], { a: 1, b: { c: [null, 'd'] }, u: undefined },
    new Date(1700000000123), /ab+c/gim, /x/, Buffer.from([0, 1, 2, 254, 255]), new Uint8Array([9, 8, 7])
  ]
  const got = next(b, 'types')
  a.emit('types', ...args)
  const r = await got
  assert.equal(r.length, args.length)
  const expected = [
    'text ✓', '', 0, 42, -7, 2 ** 31, 2 ** 40, -(2 ** 53), 3.25, -0, NaN, Infinity,
    2n ** 60n, 5, true, false, null, null,
    [1, 'two', [3]], { a: 1, b: { c: [null, 'd'] }, u: null }
  ]
  for (let i = 0; i < expected.length; i++) {
    if (typeof expected[i] === 'object' && expected[i] !== null) assert.deepEqual(r[i], expected[i], `arg ${i}`)
    else assert.ok(Object.is(r[i], expected[i]), `arg ${i}: ${String(r[i])} vs ${String(expected[i])}`)
  }
  const [date, re1, re2, buf, u8] = r.slice(expected.length)
  assert.ok(date instanceof Date && date.getTime() === 1700000000123)
  assert.ok(re1 instanceof RegExp && re1.source === 'ab+c' && re1.flags === 'gim')
  assert.ok(re2 instanceof RegExp && re2.source === 'x' && re2.flags === '')
  assert.ok(Buffer.isBuffer(buf) && buf.equals(Buffer.from([0, 1, 2, 254, 255])))
  assert.ok(Buffer.isBuffer(u8) && u8.equals(Buffer.from([9, 8, 7])))
})

test('no arguments, many arguments, a large (chunked) payload', async () => {
  const [a, b] = await pair()
  let got = next(b, 'none')
  a.emit('none')
  assert.deepEqual(await got, [])
  const many = Array.from({ length: 300 }, (_, i) => i)
  got = next(b, 'many')
  a.emit('many', ...many)
  assert.deepEqual(await got, many)
  const big = 'x'.repeat(200 * 1024)
  got = next(b, 'big', 5000)
  a.emit('big', big, { big })
  const [s, o] = await got
  assert.equal(s, big)
  assert.equal(o.big, big)
})

test('a node never receives its own events twice (listeners fire once per emit)', async () => {
  const [a, b] = await pair()
  let aCount = 0
  let bCount = 0
  a.on('ping', () => aCount++)
  b.on('ping', () => bCount++)
  for (let i = 0; i < 20; i++) a.emit('ping', i)
  await sleep(300)
  assert.equal(aCount, 20)
  assert.equal(bCount, 20)
})

test('EPAYLOAD: unsendable arguments throw TypeError before anything is sent or emitted', async () => {
  const [a, b] = await pair()
  let remote = 0
  let local = 0
  b.on('bad', () => remote++)
  a.on('bad', () => local++)
  const circular = {}
  circular.me = circular
  const sentBefore = a.stats().eventsSent
  for (const bad of [() => 1, Symbol('s'), circular, 2n ** 64n]) {
    assert.throws(() => a.emit('bad', 'ok', bad), (e) => e instanceof TypeError && e.code === 'EPAYLOAD')
  }
  // Too large for the configured limits.
  assert.throws(() => a.emit('bad', Buffer.alloc(64 * 1024 * 1024)), (e) => e instanceof TypeError && e.code === 'EPAYLOAD')
  a.emit('good', 1)
  await next(b, 'good')
  assert.equal(remote, 0)
  assert.equal(local, 0)
  assert.equal(a.stats().eventsSent, sentBefore + 1)
})

test('stopped: emit is local only and logs a warning', async () => {
  const p = port()
  const a = make({ port: p, log: true, logLevel: 'warn' })
  const b = make({ port: p })
  await b.start()
  let remote = 0
  b.on('quiet', () => remote++)
  let local = 0
  a.on('quiet', () => local++)
  let ret
  const out = await captureStdout(async () => { ret = a.emit('quiet', 1) })
  assert.equal(ret, true)
  assert.equal(local, 1)
  const recs = records(out)
  assert.equal(recs.length, 1)
  assert.equal(recs[0].level, 40)
  assert.match(recs[0].msg, /locally only/)
  await sleep(200)
  assert.equal(remote, 0)
})

test('events.once and events.on async iteration work', async () => {
  const [a, b] = await pair()
  setTimeout(() => a.emit('one', 'x', 2), 20)
  assert.deepEqual(await events.once(b, 'one'), ['x', 2])
  const ac = new AbortController()
  const seen = []
  setTimeout(() => { for (let i = 0; i < 5; i++) a.emit('tick', i) }, 20)
  try {
    for await (const [i] of events.on(b, 'tick', { signal: ac.signal })) {
      seen.push(i)
      if (seen.length === 5) ac.abort()
    }
  } catch (err) {
    if (err.name !== 'AbortError') throw err
  }
  assert.deepEqual(seen, [0, 1, 2, 3, 4])
  // off/removeListener
  let n = 0
  const f = () => n++
  b.on('offme', f)
  b.off('offme', f)
  a.emit('offme')
  a.emit('sync')
  await next(b, 'sync')
  assert.equal(n, 0)
})

test('a listener that throws: uncaught like any listener bug, and the rest of the batch is still delivered', () => {
  // In a child: node:test fails any test that sees an uncaught exception.
  const { execFileSync } = require('node:child_process')
  const script = `
    const Eventcast = require(${JSON.stringify(require.resolve('..'))})
    const p = ${port()}
    const a = Eventcast(p), b = Eventcast(p)
    let calls = 0, uncaught = []
    process.on('uncaughtException', (e) => uncaught.push(e.message))
    b.on('boom', (i) => { calls++; if (i === 0) throw new Error('listener bug') })
    b.on('after', () => setTimeout(async () => {
      await a.stop(); await b.stop()
      console.log(JSON.stringify({ calls, uncaught }))
    }, 20))
    Promise.all([a.start(), b.start()]).then(() => { a.emit('boom', 0); a.emit('boom', 1); a.emit('after') })
  `
  const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10000 })
  assert.deepEqual(JSON.parse(out.trim()), { calls: 2, uncaught: ['listener bug'] })
})

test('stats() reports counters as numbers', async () => {
  const [a, b] = await pair()
  a.emit('count', 1)
  await next(b, 'count')
  const s = a.stats()
  // index.d.ts declares exactly the counters the Rust struct has (one source of truth:
  // crates/eventcast-engine/src/protocol/stats.rs; this keeps the types from drifting).
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8')
  const block = dts.slice(dts.indexOf('interface Stats {'))
  const keys = [...block.slice(0, block.indexOf('\n  }')).matchAll(/^ {4}(\w+): number$/gm)].map((m) => m[1])
  assert.ok(keys.length > 20, 'Stats interface found in index.d.ts')
  assert.deepEqual(Object.keys(s).sort(), [...keys].sort())
  for (const k of keys) assert.equal(typeof s[k], 'number', k)
  assert.ok(s.datagramsSent >= 1)
  assert.ok(b.stats().eventsDelivered >= 1)
})

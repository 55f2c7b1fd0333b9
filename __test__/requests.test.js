'use strict'
// Request/reply through the JS API: handle/unhandle, request, gather,
// timeout(ms), the requestTimeout option, errors (EHANDLEREXISTS, ETIMEDOUT,
// EREMOTE, ENOTSTARTED), values of every kind, 500 concurrent requests, a
// 1 MiB reply, encryption, and requests never reaching on() listeners.
const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const { requireNetns, port, make, sleep, cliPath } = require('./helpers.js')

requireNetns()

/** Runs `eventcast request ...`; resolves with its exit code, stdout lines (JSON) and stderr. */
function cliRequest (args) {
  return new Promise((resolve) => {
    execFile(cliPath(), ['request', ...args], { timeout: 20000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
      resolve({ code, replies: stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)), stderr })
    })
  })
}

test('a request round-trips values of every kind; handlers, errors and timeouts', async () => {
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p, requestTimeout: 500 })
  assert.equal(b.config.requestTimeout, 500)
  await assert.rejects(b.request('echo', 1), { code: 'ENOTSTARTED' })
  await Promise.all([a.start(), b.start()])
  const heard = []
  a.on('echo', (...x) => heard.push(x))
  assert.equal(a.handle('echo', (...args) => args), a)
  a.handle('sum', async (x, y) => { await sleep(5); return x + y })
  a.handle('fail', () => { const e = new Error('no such thing'); e.code = 'ENOENT'; throw e })
  a.handle('reject', () => Promise.reject(new TypeError('bad input')))
  assert.throws(() => a.handle('echo', () => 1), { code: 'EHANDLEREXISTS' })
  assert.throws(() => a.handle('x', 'not a function'), { code: 'ERR_INVALID_ARG_TYPE' })
  assert.throws(() => a.handle('__ec_x', () => 1), { code: 'EPAYLOAD' })

  const when = new Date(1700000000123)
  const args = ['x', { deep: { list: [1, 2.5, 'three', null], at: when } }, Buffer.from([0, 1, 2, 255]), 2n ** 60n]
  const back = await b.request('echo', ...args)
  assert.deepEqual(back, args)
  assert.ok(back[1].deep.at instanceof Date && Buffer.isBuffer(back[2]))
  assert.equal(await b.request('sum', 2, 3), 5)

  await assert.rejects(b.request('fail'), (err) => {
    assert.equal(err.code, 'EREMOTE')
    assert.equal(err.message, 'no such thing')
    assert.equal(err.remoteCode, 'ENOENT')
    assert.equal(err.peer, a.id)
    return true
  })
  await assert.rejects(b.request('reject'), { code: 'EREMOTE', message: 'bad input', peer: a.id })

  const t0 = Date.now()
  await assert.rejects(b.request('nobody'), { code: 'ETIMEDOUT' })
  const waited = Date.now() - t0
  assert.ok(waited >= 495 && waited < 1000, `ETIMEDOUT after ${waited} ms (requestTimeout 500)`)
  const t1 = Date.now()
  await assert.rejects(b.timeout(150).request('nobody'), { code: 'ETIMEDOUT' })
  assert.ok(Date.now() - t1 < 450, 'per-call timeout')
  assert.throws(() => b.timeout(0), { code: 'ERR_EVENTCAST_OPTION_VALUE' })
  assert.throws(() => b.timeout('soon'), { code: 'ERR_EVENTCAST_OPTION_VALUE' })

  assert.equal(a.unhandle('sum'), true)
  assert.equal(a.unhandle('sum'), false)
  await assert.rejects(b.timeout(200).request('sum', 1, 2), { code: 'ETIMEDOUT' })
  assert.deepEqual(heard, [], 'requests never reach on() listeners')
  assert.throws(() => make({ port: p, requestTimeout: 0 }), { code: 'ERR_EVENTCAST_OPTION_VALUE' })
  await Promise.all([a.stop(), b.stop()])
})

test('gather collects one reply per node within the window; [] when nobody answers', async () => {
  const p = port()
  const nodes = [0, 1, 2].map(() => make({ port: p }))
  const asker = make({ port: p })
  await Promise.all([...nodes, asker].map((n) => n.start()))
  nodes.forEach((n, i) => n.handle('who', () => (i === 2 ? Promise.reject(Object.assign(new Error('busy'), { code: 'EBUSY' })) : i)))
  const t0 = Date.now()
  const replies = await asker.timeout(400).gather('who')
  assert.ok(Date.now() - t0 >= 395, 'the window is waited out')
  assert.deepEqual(replies.map((r) => r.peer).sort(), nodes.map((n) => n.id).sort(), 'one reply per node')
  for (const r of replies) {
    const i = nodes.findIndex((n) => n.id === r.peer)
    if (i === 2) {
      assert.equal(r.error.message, 'busy')
      assert.equal(r.error.code, 'EBUSY')
      assert.equal(r.value, undefined)
    } else {
      assert.equal(r.value, i)
    }
  }
  assert.deepEqual(await asker.timeout(150).gather('nobody'), [])
  await Promise.all([...nodes, asker].map((n) => n.stop()))
})

test('500 concurrent requests each get their own answer; a 1 MiB reply arrives', async () => {
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p, requestTimeout: 10000 })
  await Promise.all([a.start(), b.start()])
  a.handle('double', (x) => 2 * x)
  const big = Buffer.alloc(1 << 20)
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 8)) & 255
  a.handle('blob', () => big)
  const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => b.request('double', i)))
  assert.deepEqual(answers, Array.from({ length: 500 }, (_, i) => 2 * i))
  const got = await b.request('blob')
  assert.ok(Buffer.isBuffer(got) && got.equals(big), '1 MiB intact')
  await Promise.all([a.stop(), b.stop()])
})

test('requests and replies are sealed with encryption; a node with another key hears nothing', async () => {
  const p = port()
  const a = make({ port: p, encrypt: { key: 'k1' } })
  const b = make({ port: p, encrypt: { key: 'k1' } })
  const stranger = make({ port: p, encrypt: { key: 'other' } })
  await Promise.all([a.start(), b.start(), stranger.start()])
  a.handle('secret', () => 'ok')
  stranger.handle('secret', () => 'forged')
  assert.deepEqual((await b.timeout(500).gather('secret')).map((r) => [r.peer, r.value]), [[a.id, 'ok']])
  assert.equal(stranger.stats().requestsReceived, 0)
  await Promise.all([a.stop(), b.stop(), stranger.stop()])
})

test('a reply that cannot travel becomes an error reply; a handler after the timeout sends nothing', async () => {
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p })
  await Promise.all([a.start(), b.start()])
  a.handle('fn', () => () => 1)
  await assert.rejects(b.timeout(1000).request('fn'), { code: 'EREMOTE', remoteCode: 'EPAYLOAD' })
  a.handle('late', async () => { await sleep(400); return 1 })
  await assert.rejects(b.timeout(150).request('late'), { code: 'ETIMEDOUT' })
  await sleep(400)
  assert.equal(a.stats().repliesLate, 1, 'not sent after the requester gave up')
  await Promise.all([a.stop(), b.stop()])
})

test('eventcast request asks JS handlers: the first reply, --all, exit 1 on timeout', async () => {
  const p = port()
  const a = make({ port: p })
  const b = make({ port: p })
  await Promise.all([a.start(), b.start()])
  a.handle('double', (x) => 2 * x)
  b.handle('double', async (x) => { await sleep(20); return 2 * x })
  a.handle('fail', () => { throw Object.assign(new Error('nope'), { code: 'ENOPE' }) })
  const one = await cliRequest(['--port', String(p), '--no-presence', 'double', '21'])
  assert.equal(one.code, 0, one.stderr)
  assert.equal(one.replies.length, 1)
  assert.equal(one.replies[0].value, 42)
  assert.ok([a.id, b.id].includes(one.replies[0].peer))
  const all = await cliRequest(['--port', String(p), '--no-presence', '--all', '--timeout', '400', 'double', '{"$numberLong": "5"}'])
  assert.equal(all.code, 0, all.stderr)
  assert.deepEqual(all.replies.map((r) => r.peer).sort(), [a.id, b.id].sort())
  assert.deepEqual(all.replies.map((r) => r.value), [10, 10])
  const failed = await cliRequest(['--port', String(p), '--no-presence', 'fail'])
  assert.equal(failed.code, 0, 'an error reply is a reply')
  assert.deepEqual(failed.replies, [{ peer: a.id, error: { message: 'nope', code: 'ENOPE' } }])
  const none = await cliRequest(['--port', String(p), '--no-presence', '--timeout', '200', 'nobody'])
  assert.equal(none.code, 1)
  assert.deepEqual(none.replies, [])
  assert.match(none.stderr, /no reply to "nobody" within 200 ms/)
  await Promise.all([a.stop(), b.stop()])
})

// eventcast 0.1.2 on the same group: requests and replies reach it as events
// nobody listens to; it answers nothing and keeps working. 0.1.2 is not on
// the npm registry: EVENTCAST_012_DIR names a checkout with its node_modules
// (as for the lab's mixed-fleet scenario); without it this test is skipped.
test('a 0.1.2 node on the group sends nothing for requests and replies and keeps working', async (t) => {
  if (!process.env.EVENTCAST_012_DIR) {
    t.skip('EVENTCAST_012_DIR is not set (a checkout of eventcast 0.1.2 with its node_modules; not on the npm registry)')
    return
  }
  const dgram = require('node:dgram')
  const path = require('node:path')
  const Eventcast012 = require(path.resolve(process.env.EVENTCAST_012_DIR))
  const p = port()
  const old = Eventcast012({ port: p })
  await new Promise((resolve) => old.start(resolve))
  assert.match(String(old.id), /^[0-9a-f]{16}$/, '0.1.2 exposes its instance id')
  const sniffer = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  let fromOld = 0
  sniffer.on('message', (m) => { if (m.includes(Buffer.from(String(old.id)))) fromOld++ })
  await new Promise((resolve) => sniffer.bind(p, resolve))
  sniffer.addMembership('224.0.0.1')
  const a = make({ port: p })
  const b = make({ port: p })
  await Promise.all([a.start(), b.start()])
  a.handle('double', (x) => 2 * x)
  const heardByOld = []
  old.on('ping', (x) => heardByOld.push(x))
  for (let i = 0; i < 50; i++) assert.equal(await b.request('double', i), 2 * i)
  assert.equal((await b.timeout(200).gather('double', 1)).length, 1, 'the 0.1.2 node does not answer')
  await sleep(300)
  assert.equal(fromOld, 0, 'the 0.1.2 node sent nothing in reaction')
  const pong = new Promise((resolve) => b.once('pong', resolve))
  b.emit('ping', 7)
  old.emit('pong', 8)
  assert.equal(await pong, 8, 'the 0.1.2 node still emits')
  await sleep(200)
  assert.deepEqual(heardByOld, [7], 'and still receives')
  sniffer.close()
  await new Promise((resolve) => old.stop(resolve))
  await Promise.all([a.stop(), b.stop()])
})

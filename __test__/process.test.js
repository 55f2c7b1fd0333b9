'use strict'
// Process-level behaviour: keeping the process alive only while started,
// no leaks over many cycles, no events lost at stop, log records on stdout.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { spawn } = require('node:child_process')
const { requireNetns, port, next, make, sleep } = require('./helpers.js')

requireNetns()
const entry = JSON.stringify(require.resolve('..'))

function run (script, { timeout = 10000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    const t = setTimeout(() => child.kill('SIGKILL'), timeout)
    const t0 = Date.now()
    child.on('exit', (code, signal) => {
      clearTimeout(t)
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 })
    })
  })
}

test('a script that starts, exchanges events and stops exits by itself', async () => {
  const r = await run(`
    const Eventcast = require(${entry})
    const p = ${port()}
    const a = Eventcast(p), b = Eventcast(p)
    b.on('ping', (n) => b.emit('pong', n + 1))
    a.on('pong', async (n) => { console.log('pong', n); await a.stop(); await b.stop(); console.log('stopped') })
    Promise.all([a.start(), b.start()]).then(() => a.emit('ping', 1))
  `)
  assert.equal(r.signal, null, `killed: ${r.stderr}`)
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout, 'pong 2\nstopped\n')
  assert.ok(r.ms < 5000)
})

test('a started instance keeps the process alive', async () => {
  const r = await run(`
    const Eventcast = require(${entry})
    Eventcast(${port()}).start().then(() => console.log('started'))
  `, { timeout: 1500 })
  assert.equal(r.stdout, 'started\n')
  assert.equal(r.signal, 'SIGKILL', 'still running when killed')
})

test('1000 start/stop cycles leak no file descriptors and the process still exits', async () => {
  const r = await run(`
    const fs = require('fs')
    const Eventcast = require(${entry})
    const ec = Eventcast(${port()})
    const fds = () => fs.readdirSync('/proc/self/fd').length
    ;(async () => {
      await ec.start(); await ec.stop()
      const before = fds()
      const rss0 = process.memoryUsage().rss
      for (let i = 0; i < 1000; i++) { await ec.start(); await ec.stop() }
      if (global.gc) global.gc()
      console.log(JSON.stringify({ before, after: fds(), rssGrowth: process.memoryUsage().rss - rss0, status: ec.status }))
    })()
  `, { timeout: 120000 })
  assert.equal(r.code, 0, r.stderr)
  const res = JSON.parse(r.stdout)
  assert.equal(res.after, res.before, 'fd count unchanged')
  assert.equal(res.status, 'stopped')
  assert.ok(res.rssGrowth < 50 * 1024 * 1024, `rss grew ${res.rssGrowth}`)
})

test('stop() emits every event the node had received before "stop"', async () => {
  const p = port()
  const a = make(p)
  const b = make(p)
  await Promise.all([a.start(), b.start()])
  let received = 0
  let atStop = -1
  b.on('burst', () => received++)
  b.on('stop', () => { atStop = received })
  const first = next(b, 'burst')
  for (let i = 0; i < 2000; i++) a.emit('burst', i)
  await first
  await b.stop()
  const delivered = b.stats().eventsDelivered
  assert.ok(received > 0)
  assert.equal(atStop, received, 'nothing emitted after stop')
  assert.equal(received, delivered, 'every event the Rust node delivered reached the listeners')
  await sleep(50)
  assert.equal(received, delivered)
})

test('log: true writes bunyan JSON records on stdout, Rust tracing records included', async () => {
  const r = await run(`
    const Eventcast = require(${entry})
    const ec = Eventcast({ port: ${port()}, log: true, logLevel: 'debug' })
    ec.start().then(() => ec.stop())
  `)
  assert.equal(r.code, 0, r.stderr)
  const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
  assert.ok(recs.length >= 2)
  for (const rec of recs) {
    for (const f of ['name', 'hostname', 'pid', 'level', 'msg', 'time', 'v']) assert.ok(f in rec, `${f} in ${JSON.stringify(rec)}`)
    assert.equal(rec.name, 'eventcast')
    assert.equal(rec.v, 0)
    assert.ok(!Number.isNaN(Date.parse(rec.time)))
  }
  assert.ok(recs.some((x) => /^started /.test(x.msg)))
  const rust = recs.filter((x) => x.component === 'rust')
  assert.ok(rust.length >= 1, `no Rust record in ${r.stdout}`)
  assert.ok(rust.every((x) => typeof x.target === 'string' && x.level >= 20))
})

test('a JS thread that falls behind: batches in flight are bounded, every event is delivered or counted', async () => {
  const p = port()
  const a = make(p)
  const b = make(p)
  await Promise.all([a.start(), b.start()])
  let received = 0
  b.on('flood', () => received++)
  const N = 20000
  for (let i = 0; i < N; i++) a.emit('flood', i, 'x'.repeat(32))
  const until = Date.now() + 500
  while (Date.now() < until) { /* keep the JS thread busy while the node keeps receiving */ }
  let last = -1
  while (received !== last) {
    last = received
    await sleep(200)
  }
  const s = b.stats()
  assert.ok(received > 0)
  assert.equal(received, s.eventsDelivered - s.notificationsDropped, JSON.stringify({ received, ...s }))
  assert.ok(received + s.notificationsDropped + s.gapsUnrecovered <= N)
})

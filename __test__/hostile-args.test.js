'use strict'
// One chunked plaintext event with 60,000 arguments (≈ 480 KB), to a name
// nobody listens to, sent as raw datagrams from an attacker socket. Before
// the bound every Node receiver exited: `RangeError: Maximum call stack size
// exceeded` from `emit.apply` in index.js, rethrown as uncaught; over NATS
// the same. Now the wire's walk refuses it before any conversion (more than
// 4,096 arguments), counts it in stats().rejectedTooManyValues, and the node
// goes on delivering.
const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const net = require('node:net')
const { requireNetns, port, sleep, make } = require('./helpers.js')
const { startNatsServer, natsServerBin } = require('./nats-server.js')
const w = require('./hostile-wire.js')
const binding = require('../binding.js')

requireNetns()

const GROUP = '224.0.0.1'
const ARGS = 60000

/** The attack: `n` int32 arguments to event `name`, chunked as a real sender would (`chunk` bytes a datagram). */
function attackDatagrams (name, n, chunk) {
  const values = Array.from({ length: n }, (_, k) => w.V.i32(k))
  return w.chunkedDatagrams({ id: 'feedfacecafe0a11', name, values, chunk })
}

/**
 * Where the stack gives out depends on the Node version and how deep the
 * delivery runs: on Node 20, 60,000 arguments overflow it with a listener
 * taking `(...args)`, 120,000 with no listener at all. Both are sent.
 */
function attacks () {
  return [...attackDatagrams('listened', ARGS, 60000), ...attackDatagrams('nobody-listens', 2 * ARGS, 60000)]
}

async function until (what, cond, ms = 20000) {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** Watches for what killed receivers before: an uncaught exception. */
function noUncaught (t) {
  const seen = []
  const on = (err) => seen.push(err)
  process.on('uncaughtException', on)
  t.after(() => process.off('uncaughtException', on))
  return seen
}

test('60,000 and 120,000 arguments in chunked datagram groups: refused and counted, the node lives and delivers', { timeout: 60000 }, async (t) => {
  const uncaught = noUncaught(t)
  const p = port()
  const rx = make({ port: p })
  const real = make({ port: p })
  await Promise.all([rx.start(), real.start()])
  const got = []
  rx.on('real', (k) => got.push(k))
  rx.on('listened', (...args) => got.push(args.length))
  const dgs = attacks()
  t.diagnostic(`attack: ${dgs.length} datagrams, ${dgs.reduce((n, d) => n + d.length, 0)} bytes`)

  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve))
  sock.setMulticastLoopback(true)
  for (const d of dgs) {
    await new Promise((resolve, reject) => sock.send(d, p, GROUP, (err) => (err ? reject(err) : resolve())))
    await sleep(5)
  }
  sock.close()
  await until('the refusals', () => rx.stats().rejectedTooManyValues >= 2 || uncaught.length > 0 || got.length > 0)
  await sleep(200) // a crash would come within a tick of the delivery
  assert.deepEqual(uncaught.map(String), [])
  assert.equal(rx.status, 'started')
  assert.equal(rx.stats().rejectedTooManyValues, 2)
  assert.equal(rx.stats().rejectedMalformed, 0)

  real.emit('real', 1)
  await until('a normal event afterwards', () => got.length === 1, 5000)
  assert.deepEqual(got, [1])
})

test('the same attack over NATS: refused and counted, the node lives and delivers', { timeout: 60000 }, async (t) => {
  let server
  try {
    server = await startNatsServer()
  } catch (err) {
    t.skip(`cannot run ${natsServerBin()}: ${err.message}`)
    return
  }
  const uncaught = noUncaught(t)
  t.after(() => server.kill())
  const p = port()
  const rx = make({ port: p, transport: server.url })
  const real = make({ port: p, transport: server.url })
  await Promise.all([rx.start(), real.start()])
  const got = []
  rx.on('real', (k) => got.push(k))
  rx.on('listened', (...args) => got.push(args.length))

  // The attacker publishes each datagram as its own NATS message on the group's subject.
  const sock = net.connect(server.port, '127.0.0.1')
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  sock.on('data', () => {})
  sock.write('CONNECT {"verbose":false,"pedantic":false}\r\n')
  for (const d of attacks()) {
    sock.write(`PUB eventcast.${p} ${d.length}\r\n`)
    sock.write(d)
    sock.write('\r\n')
  }
  await until('the refusals', () => rx.stats().rejectedTooManyValues >= 2 || uncaught.length > 0 || got.length > 0)
  sock.destroy()
  await sleep(200)
  assert.deepEqual(uncaught.map(String), [])
  assert.equal(rx.status, 'started')
  assert.equal(rx.stats().rejectedTooManyValues, 2)
  real.emit('real', 2)
  await until('a normal event afterwards', () => got.length === 1, 5000)
  assert.deepEqual(got, [2])
})

test('emit refuses what receivers refuse: EPAYLOAD above 4,096 arguments or 262,144 values, nothing sent', async () => {
  const p = port()
  const tx = make({ port: p })
  await tx.start()
  // Beacons leave on the presence timer whatever emit does: count the rest.
  const sent = () => tx.stats().datagramsSent - tx.stats().beaconsSent
  const sent0 = sent()
  const heard = []
  tx.on('many', () => heard.push('many'))
  const refused = (fn, what) => assert.throws(fn, (err) => {
    assert.ok(err instanceof TypeError, err.message)
    assert.equal(err.code, 'EPAYLOAD')
    assert.match(err.message, new RegExp(what))
    return true
  })
  refused(() => tx.emit('many', ...new Array(4097).fill(0)), 'more arguments than the 4096')
  refused(() => tx.emit('many', new Array(262144).fill(0)), 'more values than the 262144')
  refused(() => tx.emit('many', [new Array(131072).fill(0), new Array(131072).fill(0)]), 'values')
  assert.deepEqual(heard, [], 'not emitted locally either')
  assert.equal(sent(), sent0)
  // At the bounds, it is sent.
  tx.emit('many', ...new Array(4096).fill(0))
  tx.emit('many', new Array(262143).fill(0))
  assert.deepEqual(heard, ['many', 'many'])
  assert.ok(sent() > sent0)
  // The encoder the tests use applies the same bound.
  assert.throws(() => binding.encodePayload(new Array(4097).fill(0)), { code: 'EPAYLOAD' })
  assert.throws(() => binding.decodePayload(w.payloadBody(Array.from({ length: 4097 }, () => w.V.null()))), { code: 'ETOOMANYVALUES' })
})

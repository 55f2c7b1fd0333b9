'use strict'
// Raw datagrams at a running instance: 0.1.2's own datagrams arrive as events,
// other protocol versions produce EPRVERSION, garbage never crashes.
const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const { requireNetns, port, next, sleep, make, captureStdout, records, vectors } = require('./helpers.js')

requireNetns()

async function sendRaw (p, datagrams, group = '224.0.0.1') {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve))
  sock.setMulticastLoopback(true)
  for (const d of datagrams) {
    await new Promise((resolve, reject) => sock.send(d, p, group, (err) => (err ? reject(err) : resolve())))
  }
  sock.close()
}

function withVersion (hex, version) {
  const buf = Buffer.from(hex, 'hex')
  // meta starts at 2: int32 length, then element 0x10 'v' 0x00 and its int32 value.
  assert.equal(buf.toString('latin1', 7, 8), 'v')
  buf.writeInt32LE(version, 9)
  return buf
}

test('the 0.1.2 vectors, sent as raw datagrams, arrive as events', async (t) => {
  const v = vectors()
  const cases = Object.fromEntries(v.cases.map((c) => [c.name, c]))
  const p = port()
  const plain = make({ port: p })
  const legacy1 = make({ port: p, encrypt: { key: 'NSA-KEY', legacy: true } })
  const legacy2 = make({ port: p, encrypt: { key: 'WIKILEAKS', legacy: true } })
  await Promise.all([plain.start(), legacy1.start(), legacy2.start()])
  const dg = (name) => cases[name].datagrams.map((h) => Buffer.from(h, 'hex'))

  let got = next(plain, 'myevent')
  await sendRaw(p, dg('plain-one-string'))
  assert.deepEqual(await got, ['hello'])

  got = next(plain, 'heyoo')
  await sendRaw(p, dg('plain-no-args'))
  assert.deepEqual(await got, [])

  got = next(plain, 'types')
  await sendRaw(p, dg('plain-types'))
  const types = await got
  assert.equal(types.length, 13)
  assert.deepEqual(types.slice(2, 10), [null, 'yay ünïcödé ✓', 5, -7, 3.25, true, false, types[9]])
  assert.equal(types[9].getTime(), 1700000000123)
  assert.equal(types[10].source, 'serialize me please')
  assert.deepEqual([...types[11]], [0, 1, 2, 0xfe, 0xff])
  assert.equal(types[12], 2 ** 40)

  got = next(plain, 'long')
  await sendRaw(p, dg('plain-chunked-3000').reverse()) // any order reassembles
  assert.deepEqual(await got, ['b'.repeat(3000)])

  got = next(plain, 'msg')
  const five = dg('plain-chunked-small-mps')
  await sendRaw(p, [five[2], five[0], five[4], five[0], five[1], five[3]]) // with a duplicate
  assert.deepEqual(await got, ['123456789'])

  got = next(legacy1, 'sec')
  await sendRaw(p, dg('legacy-enc-one-string'))
  assert.deepEqual(await got, ['howdy neighborino!'])

  got = next(legacy2, 'big')
  await sendRaw(p, dg('legacy-enc-chunked'))
  assert.deepEqual(await got, ['c'.repeat(2500)])
})

test('EPRVERSION: "error" with code when a listener exists', async (t) => {
  const v = vectors()
  const p = port()
  const ec = make({ port: p })
  await ec.start()
  let delivered = 0
  ec.on('myevent', () => delivered++)
  const got = next(ec, 'error')
  await sendRaw(p, [withVersion(v.cases[0].datagrams[0], 4)])
  const [err] = await got
  assert.ok(err instanceof Error)
  assert.equal(err.code, 'EPRVERSION')
  await sleep(100)
  assert.equal(delivered, 0, 'the event is not delivered')
  assert.ok(ec.stats().rejectedVersion >= 1)
})

test('EPRVERSION without an "error" listener is logged, never thrown', async (t) => {
  const v = vectors()
  const p = port()
  const ec = make({ port: p, log: true, logLevel: 'warn' })
  await ec.start()
  const out = await captureStdout(async () => {
    await sendRaw(p, [withVersion(v.cases[0].datagrams[0], 4), withVersion(v.cases[0].datagrams[0], 2)])
    await sleep(300)
  })
  const recs = records(out).filter((r) => r.code === 'EPRVERSION')
  assert.ok(recs.length >= 1, out)
  assert.equal(ec.status, 'started')
  // Still works afterwards.
  const b = make({ port: p })
  await b.start()
  const got = next(ec, 'still')
  b.emit('still', 'alive')
  assert.deepEqual(await got, ['alive'])
})

test('garbage datagrams never crash the process; valid events still arrive', async () => {
  const p = port()
  const ec = make({ port: p })
  const peer = make({ port: p })
  await Promise.all([ec.start(), peer.start()])
  const junk = [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0xff, 0xff, 1, 2, 3]), Buffer.from([0, 5, 5, 0, 0, 0, 0])]
  for (let i = 0; i < 300; i++) {
    const b = Buffer.alloc(1 + Math.floor(Math.random() * 300))
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(Math.random() * 256)
    junk.push(b)
  }
  let errors = 0
  ec.on('error', () => errors++)
  await sendRaw(p, junk)
  const got = next(ec, 'valid')
  peer.emit('valid', 1)
  assert.deepEqual(await got, [1])
  assert.ok(ec.stats().rejectedMalformed > 0)
  assert.equal(errors, 0, 'malformed datagrams are counted, not reported as errors')
})

'use strict'
// Construction, options, validation and statics: no UDP socket is opened here.
const test = require('node:test')
const assert = require('node:assert/strict')
const { EventEmitter } = require('node:events')
const Eventcast = require('..')

test('callable with and without new; EventEmitter subclass', () => {
  for (const ec of [Eventcast(9000), Eventcast({ port: 9000 }), new Eventcast(9000), new Eventcast({ port: 9000 })]) {
    assert.ok(ec instanceof Eventcast)
    assert.ok(ec instanceof EventEmitter)
    assert.equal(ec.config.port, 9000)
    assert.equal(ec.status, 'stopped')
    assert.match(ec.id, /^[0-9a-f]{16}$/)
  }
  class Sub extends Eventcast {
    hello () { return 'hi' }
  }
  const s = new Sub(9001)
  assert.equal(s.hello(), 'hi')
  assert.ok(s instanceof Eventcast)
})

test('id is read-only and unique', () => {
  const a = Eventcast(9000)
  const b = Eventcast(9000)
  assert.notEqual(a.id, b.id)
  const id = a.id
  assert.throws(() => { 'use strict'; a.id = 'x' }, TypeError)
  assert.equal(a.id, id)
})

test('0.1.x defaults', () => {
  const c = Eventcast().config
  assert.equal(c.address, '0.0.0.0')
  assert.ok(c.port >= 49152 && c.port <= 65535)
  assert.equal(c.multicastMembership, '224.0.0.1')
  assert.equal(c.multicastInterface, undefined)
  assert.equal(c.multicastLoopback, true)
  assert.equal(c.multicastTtl, 1)
  assert.equal(c.replEnabled, false)
  assert.equal(c.replPort, undefined)
  assert.equal(c.replHost, 'localhost')
  assert.equal(c.encrypt, false)
  assert.equal(c.maxPayloadSize, 1024)
  assert.equal(c.messageTtl, 3000)
  assert.equal(c.messageRetransmitAttempts, 3)
  assert.equal(c.messageRetransmitAttemps, 3)
  assert.equal(c.log, false)
  assert.equal(c.logLevel, 50)
  assert.ok(Object.isFrozen(c))
})

test('given options are resolved; unknown names ignored; alias spelling', async () => {
  // An enabled REPL listens from the constructor on (as in 0.1.x): the only
  // sockets of this file, on loopback, closed at the end of this test.
  const withRepl = Eventcast({
    port: 9100, multicastMembership: '239.1.2.3', multicastTtl: 4, maxPayloadSize: 512, messageTtl: 100,
    messageRetransmitAttemps: 7, encrypt: { key: 'k', legacy: true }, replPort: 9200, log: true, logLevel: 'debug', whatever: 1
  })
  const c = withRepl.config
  assert.equal(c.port, 9100)
  assert.equal(c.multicastMembership, '239.1.2.3')
  assert.equal(c.messageRetransmitAttempts, 7)
  assert.equal(c.messageRetransmitAttemps, 7)
  assert.deepEqual(c.encrypt, { key: 'k', legacy: true })
  assert.equal(c.replEnabled, true)
  assert.equal(c.replPort, 9200)
  assert.equal(c.logLevel, 20)
  assert.equal(c.whatever, undefined)
  assert.equal(Eventcast({ messageRetransmitAttempts: 2, messageRetransmitAttemps: 9 }).config.messageRetransmitAttempts, 2)
  const randomRepl = Eventcast({ replEnabled: true })
  const r = randomRepl.config
  assert.ok(r.replPort >= 49152 && r.replPort <= 65535)
  await Promise.all([withRepl.closeRepl(), randomRepl.closeRepl()])
})

test('encrypt: {key} selects the authenticated default scheme', (t) => {
  let ec
  try {
    ec = Eventcast({ encrypt: { key: 'k' } })
  } catch (err) {
    if (/not available in this build/.test(err.message)) return t.skip(`default scheme not built yet: ${err.message}`)
    throw err
  }
  assert.deepEqual(ec.config.encrypt, { key: 'k', legacy: false })
})

test('invalid options throw TypeError/RangeError with stable codes', () => {
  const { codes } = Eventcast
  const cases = [
    ['x', TypeError, codes.OPTIONS],
    [[1], TypeError, codes.OPTIONS],
    [0, RangeError, codes.PORT],
    [70000, RangeError, codes.PORT],
    [-1, RangeError, codes.PORT],
    [1.5, TypeError, codes.PORT],
    [{ port: '9000' }, TypeError, codes.PORT],
    [{ port: NaN }, TypeError, codes.PORT],
    [{ replPort: 99999 }, RangeError, codes.PORT],
    [{ multicastMembership: 'nope' }, TypeError, codes.ADDRESS],
    [{ multicastMembership: '10.0.0.1' }, RangeError, codes.ADDRESS],
    [{ multicastMembership: '240.0.0.1' }, RangeError, codes.ADDRESS],
    [{ address: '1.2.3' }, TypeError, codes.ADDRESS],
    [{ multicastInterface: 'not a name' }, TypeError, codes.ADDRESS],
    [{ replHost: '' }, TypeError, codes.ADDRESS],
    [{ maxPayloadSize: 0 }, RangeError, codes.VALUE],
    [{ maxPayloadSize: -5 }, RangeError, codes.VALUE],
    [{ maxPayloadSize: '1024' }, TypeError, codes.VALUE],
    [{ messageTtl: 0 }, RangeError, codes.VALUE],
    [{ multicastTtl: 256 }, RangeError, codes.VALUE],
    [{ messageRetransmitAttempts: -1 }, RangeError, codes.VALUE],
    [{ multicastLoopback: 'yes' }, TypeError, codes.VALUE],
    [{ encrypt: 'secret' }, TypeError, codes.ENCRYPT],
    [{ encrypt: true }, TypeError, codes.ENCRYPT],
    [{ encrypt: {} }, TypeError, codes.ENCRYPT],
    [{ encrypt: { key: '' } }, TypeError, codes.ENCRYPT],
    [{ encrypt: { key: 'k', algorithm: 'des' } }, TypeError, codes.ENCRYPT],
    [{ encrypt: { key: 'k', mode: 'gcm' } }, TypeError, codes.ENCRYPT],
    [{ encrypt: { key: 'k', legacy: 'yes' } }, TypeError, codes.ENCRYPT]
  ]
  for (const [opts, Ctor, code] of cases) {
    assert.throws(() => Eventcast(opts), (err) => {
      assert.ok(err instanceof Ctor, `${JSON.stringify(opts)}: ${err.constructor.name} ${err.message}`)
      assert.equal(err.code, code, JSON.stringify(opts))
      return true
    })
  }
  // 0.1.x configs naming its only algorithm still work.
  assert.equal(Eventcast({ encrypt: { key: 'k', algorithm: 'aes128', legacy: true } }).config.encrypt.key, 'k')
})

test('getRandomPort and protocolVersion', () => {
  assert.equal(Eventcast.protocolVersion, 3)
  for (let i = 0; i < 1000; i++) {
    const p = Eventcast.getRandomPort()
    assert.ok(Number.isInteger(p) && p >= 49152 && p <= 65535)
    const q = Eventcast.getRandomPort(1000, 1002)
    assert.ok(q >= 1000 && q <= 1002)
  }
  assert.equal(Eventcast.getRandomPort(5000, 5000), 5000)
  assert.throws(() => Eventcast.getRandomPort(10, 5), RangeError)
  assert.throws(() => Eventcast.getRandomPort('a'), TypeError)
})

test('logLevel: bunyan numeric levels per stream, set all or one component, invalid warns', async () => {
  const { captureStdout, records } = require('./helpers.js')
  assert.deepEqual(Eventcast({ log: false }).logLevel(), [])
  const ec = Eventcast({ log: true })
  assert.deepEqual(ec.logLevel(), [50])
  assert.deepEqual(ec.logLevel('debug'), [20])
  assert.deepEqual(ec.logLevel(30), [30])
  assert.deepEqual(ec.logLevel('repl', 'trace'), [30])
  assert.deepEqual(ec.logLevel('eventcast', 'warn'), [40])
  let out = await captureStdout(async () => {
    assert.deepEqual(ec.logLevel('loud'), [40])
  })
  let recs = records(out)
  assert.equal(recs.length, 1)
  assert.equal(recs[0].level, 40)
  assert.match(recs[0].msg, /invalid log level/)
  for (const f of ['name', 'hostname', 'pid', 'level', 'msg', 'time', 'v']) assert.ok(f in recs[0], f)
  assert.equal(recs[0].name, 'eventcast')
  assert.equal(recs[0].v, 0)
  // An invalid logLevel option warns at construction and does not throw.
  out = await captureStdout(async () => {
    assert.equal(Eventcast({ log: true, logLevel: 'chatty' }).config.logLevel, 50)
  })
  recs = records(out)
  assert.equal(recs.length, 1)
  assert.match(recs[0].msg, /invalid logLevel/)
})

test('ESM import and package self-reference work', () => {
  const { execFileSync } = require('node:child_process')
  const { root } = require('./helpers.js')
  const out = execFileSync(process.execPath, ['--input-type=module', '-e',
    "import Eventcast, { getRandomPort } from 'eventcast'; const ec = Eventcast(9000); console.log(typeof getRandomPort, ec.config.port, Eventcast.protocolVersion)"],
  { cwd: root, encoding: 'utf8' })
  assert.equal(out.trim(), 'function 9000 3')
  const cjs = execFileSync(process.execPath, ['-e', "console.log(require('eventcast') === require('./index.js'))"], { cwd: root, encoding: 'utf8' })
  assert.equal(cjs.trim(), 'true')
})

test('IPv6 groups, and interfaces by name, index or address: checked here, found on the host by Rust at start()', () => {
  const { codes } = Eventcast
  const { nativeOptions } = require('../lib/options.js')
  const config = (o) => Eventcast({ port: 9000, ...o }).config
  // Wider than one link: no interface needed. The default address 0.0.0.0 means any for IPv6 too.
  assert.equal(config({ multicastMembership: 'ff15::ec:1' }).multicastMembership, 'ff15::ec:1')
  assert.equal(config({ multicastMembership: 'FF05::1', address: '::' }).address, '::')
  // Link-local: the interface by name, by the group's %zone, or by index (a number or digits).
  assert.equal(config({ multicastMembership: 'ff12::ec:1', multicastInterface: 'eth0' }).multicastInterface, 'eth0')
  const zoned = config({ multicastMembership: 'ff12::ec:1%eth0' })
  assert.deepEqual([zoned.multicastMembership, zoned.multicastInterface], ['ff12::ec:1', 'eth0'])
  assert.equal(config({ multicastMembership: 'ff12::ec:1%eth0', multicastInterface: 'eth0' }).multicastInterface, 'eth0')
  const indexed = config({ multicastMembership: 'ff02::1', multicastInterface: 2 })
  assert.equal(indexed.multicastInterface, 2)
  assert.equal(nativeOptions(indexed).multicastInterface, '2', 'the addon takes digits')
  assert.equal(config({ multicastMembership: 'ff12::1', multicastInterface: '7' }).multicastInterface, 7)
  assert.equal(config({ multicastMembership: 'ff12::1', multicastInterface: 'fe80::1' }).multicastInterface, 'fe80::1')
  // IPv4 by name: whether the host has it is for start() to say (ENOINTERFACE).
  assert.equal(config({ multicastInterface: 'no-such-if0' }).multicastInterface, 'no-such-if0')
  const bad = [
    [{ multicastMembership: 'ff12::ec:1' }, TypeError, /link-local IPv6 group.*multicastInterface/],
    [{ multicastMembership: 'ff02::1', multicastInterface: '::' }, TypeError, /link-local/],
    [{ multicastMembership: 'fd00::1' }, RangeError, /multicast address/],
    [{ multicastMembership: '239.1.2.3%eth0' }, TypeError, /only IPv6 groups take a %zone/],
    [{ multicastMembership: 'ff12::1%eth0', multicastInterface: 'eth1' }, TypeError, /different interfaces/],
    [{ multicastMembership: 'ff15::1', address: '10.0.0.1' }, TypeError, /IPv4, the group ff15::1 is IPv6/],
    [{ multicastMembership: '239.1.2.3', address: 'fd00::1' }, TypeError, /IPv6, the group 239.1.2.3 is IPv4/],
    [{ multicastMembership: 'ff15::1', multicastInterface: '192.0.2.1' }, TypeError, /name the interface instead/],
    [{ multicastInterface: 'fe80::1' }, TypeError, /name the interface instead/],
    [{ multicastInterface: 0 }, RangeError, /interface index/],
    [{ multicastInterface: 1.5 }, RangeError, /interface index/],
    [{ multicastInterface: 2 ** 32 }, RangeError, /interface index/],
    [{ multicastInterface: 'sixteen-bytes-xx' }, TypeError, /not an interface name/],
    [{ multicastInterface: 'a/b' }, TypeError, /not an interface name/],
    [{ multicastInterface: '239.1.1.1' }, TypeError, /not a local interface address/],
    [{ multicastInterface: true }, TypeError, /interface name/]
  ]
  for (const [opts, Ctor, message] of bad) {
    assert.throws(() => Eventcast({ port: 9000, ...opts }), (err) => {
      assert.ok(err instanceof Ctor, `${JSON.stringify(opts)}: ${err.constructor.name} ${err.message}`)
      assert.equal(err.code, codes.ADDRESS, JSON.stringify(opts))
      assert.match(err.message, message)
      return true
    })
  }
  // 0.1.x's scheme on a group 0.1.x nodes cannot join.
  assert.throws(() => Eventcast({ port: 9000, multicastMembership: 'ff15::1', encrypt: { key: 'k', legacy: true } }),
    (err) => err.code === codes.ENCRYPT && /IPv4 only/.test(err.message))
  assert.equal(config({ multicastMembership: 'ff15::1', encrypt: { key: 'k' } }).encrypt.legacy, false)
  // Rust checks the same things in its own words (EINVALIDOPTION), whatever the JS layer let through.
  const { NativeEventcast } = require('../binding.js')
  const native = (o) => new NativeEventcast({ ...nativeOptions(config({})), ...o })
  assert.throws(() => native({ multicastMembership: 'ff12::1', multicastInterface: undefined }),
    (err) => err.code === 'EINVALIDOPTION' && /multicastInterface.*link-local/.test(err.message))
  assert.ok(native({ multicastMembership: 'ff12::1', multicastInterface: 'eth0' }))
})

test('getAddress() of an IPv6 node is an IPv6 address; of an IPv4 node an IPv4 one', () => {
  const v6 = Eventcast({ port: 9000, multicastMembership: 'ff15::ec:1', address: 'fd00:ec::7' }).getAddress()
  assert.deepEqual(v6, { host: 'fd00:ec::7', port: 9000 })
  assert.match(Eventcast({ port: 9000 }).getAddress().host, /^\d+\.\d+\.\d+\.\d+$/)
})

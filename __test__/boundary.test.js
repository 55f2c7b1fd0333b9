'use strict'
// One source of truth across Rust and JS: what JS reports or checks is what
// Rust decided (option bounds, the advertised address), never a JS copy.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const binding = require('../binding.js')
const Eventcast = require('..')
const { resolveOptions, nativeOptions, DEFAULTS, BOUNDS, JS_BOUNDS } = require('../lib/options.js')
const { inPrivateNetns } = require('../scripts/netns.js')

const { codes } = Eventcast

// A dotted option is a setting of an object option (`presence.interval` is
// `{ presence: { interval } }`); its companions are set so that the probed
// value alone decides (presence.timeout must be at least 2 × interval).
const COMPANIONS = { 'presence.interval': { timeout: 3600000 }, 'presence.timeout': { interval: 50 } }
/** The options that set `option` to `value`. */
function given (option, value) {
  const [outer, inner] = option.split('.')
  return inner === undefined ? { [option]: value } : { [outer]: { ...COMPANIONS[option], [inner]: value } }
}
/** `option`'s value in a resolved config. */
function configured (config, option) {
  const [outer, inner] = option.split('.')
  return inner === undefined ? config[option] : config[outer][inner]
}

/** Builds the native node directly (below lib/options.js's checks) with `option` set to `value`. */
function nativeWith (option, value) {
  const { config } = resolveOptions({ port: 9000 })
  const [outer, inner] = option.split('.')
  const set = inner === undefined ? { [option]: value } : { [outer]: { ...config[outer], ...COMPANIONS[option], [inner]: value } }
  return new binding.NativeEventcast(nativeOptions({ ...config, ...set }))
}

test('every bounded option: JS and Rust accept the same range, from one table', () => {
  const table = binding.optionBounds()
  assert.deepEqual(Object.keys(BOUNDS).sort(), table.map((b) => b.option).sort())
  // The options JS range-checks are exactly the table's: probe every option with
  // values no bound allows (port and replPort are JS-only, ERR_EVENTCAST_PORT).
  const rangeChecked = Object.keys(DEFAULTS).filter((option) => [2 ** 40, -(2 ** 40)].some((v) => {
    try {
      Eventcast({ port: 9000, ...given(option, v) })
      return false
    } catch (err) {
      return err instanceof RangeError && err.code === codes.VALUE
    }
  }))
  // ...plus the REPL's, which only this JS face has (the native side never sees them).
  assert.deepEqual(rangeChecked.sort(), [...table.map((b) => b.option), ...Object.keys(JS_BOUNDS)].sort())
  for (const [option, [min, max]] of Object.entries(JS_BOUNDS)) {
    assert.ok(!table.some((b) => b.option === option), `${option} is JS-only`)
    for (const v of [min, max]) assert.equal(Eventcast({ port: 9000, [option]: v }).config[option], v, `JS ${option} = ${v}`)
    for (const v of [min - 1, max + 1]) {
      assert.throws(() => Eventcast({ port: 9000, [option]: v }), { name: 'RangeError', code: codes.VALUE, message: `option ${option} must be within ${min}–${max}, got ${v}` })
    }
  }
  for (const { option, min, max } of table) {
    assert.ok(Number.isSafeInteger(min) && Number.isSafeInteger(max) && min <= max, option)
    for (const v of [min, max]) {
      assert.equal(configured(Eventcast({ port: 9000, ...given(option, v) }).config, option), v, `JS ${option} = ${v}`)
      assert.doesNotThrow(() => nativeWith(option, v), `Rust ${option} = ${v}`)
    }
    for (const v of [min - 1, max + 1]) {
      assert.throws(() => Eventcast({ port: 9000, ...given(option, v) }), (err) => {
        assert.ok(err instanceof RangeError, `${option} = ${v}: ${err.message}`)
        assert.equal(err.code, codes.VALUE)
        assert.equal(err.message, `option ${option} must be within ${min}–${max}, got ${v}`)
        return true
      })
    }
    // Below 0 the native (unsigned) types refuse already; above max it is Rust's table.
    assert.throws(() => nativeWith(option, max + 1), (err) => {
      assert.equal(err.code, 'EINVALIDOPTION', `Rust ${option} = ${max + 1}: ${err.message}`)
      assert.match(err.message, new RegExp(`${option}.*${min}–${max}`))
      return true
    })
    if (min > 0) assert.throws(() => nativeWith(option, min - 1), { code: 'EINVALIDOPTION' })
  }
})

test('getAddress() is what Rust advertises: address and multicastInterface honoured, 0.1.x shape', () => {
  const fallback = Eventcast(9000).getAddress()
  assert.deepEqual(Object.keys(fallback), ['host', 'port'])
  assert.match(fallback.host, /^\d+\.\d+\.\d+\.\d+$/)
  assert.equal(fallback.port, 9000)
  assert.deepEqual(Eventcast({ port: 9001, address: '10.9.9.9' }).getAddress(), { host: '10.9.9.9', port: 9001 })
  assert.deepEqual(Eventcast({ port: 9002, multicastInterface: '10.1.2.3' }).getAddress(), { host: '10.1.2.3', port: 9002 })
  assert.deepEqual(Eventcast({ port: 9003, address: '10.9.9.9', multicastInterface: '10.1.2.3' }).getAddress(), { host: '10.1.2.3', port: 9003 })
  // Loopback or unspecified bind addresses say nothing about where peers reach us.
  assert.deepEqual(Eventcast({ port: 9004, address: '127.0.0.1' }).getAddress(), { ...fallback, port: 9004 })
})

test('getAddress() over NATS: the host our datagrams carry, the port naming the subject', () => {
  const fallback = Eventcast(9000).getAddress()
  const ec = Eventcast({ port: 9005, transport: 'nats://127.0.0.1:4222' })
  assert.deepEqual(ec.getAddress(), { host: fallback.host, port: 9005 })
  const custom = Eventcast({ port: 9006, transport: 'nats://127.0.0.1:4222', nats: { subject: 'team.events' } })
  assert.deepEqual(custom.getAddress(), { host: fallback.host, port: 9006 })
})

test('started: getAddress() equals the meta of the datagrams sent, with address / multicastInterface', (t) => {
  if (!inPrivateNetns()) return t.skip('needs a private network namespace (npm test enters one)')
  // A fresh namespace of its own, with two non-loopback addresses on lo, so the
  // options are distinguishable from the fallback (the first local address).
  const setup = 'ip link set lo up && ip addr add 10.77.0.1/32 dev lo && ip addr add 10.77.0.2/32 dev lo && ip route add 224.0.0.0/4 dev lo'
  const r = spawnSync('unshare', ['-n', 'sh', '-c', `${setup} && exec "$@"`, 'sh', process.execPath, path.join(__dirname, 'advertised-child.js')], { encoding: 'utf8', timeout: 30000 })
  if (r.error || (r.status !== 0 && /unshare|Operation not permitted|RTNETLINK/.test(r.stderr))) {
    return t.skip(`cannot make a nested namespace: ${(r.error && r.error.message) || r.stderr.trim().split('\n').pop()}`)
  }
  assert.equal(r.status, 0, r.stderr)
  const results = r.stdout.trim().split('\n').map((l) => JSON.parse(l))
  const want = ['10.77.0.1', '10.77.0.2', '10.77.0.2', '10.77.0.2']
  assert.equal(results.length, want.length)
  results.forEach(({ opts, port, stopped, started, meta }, i) => {
    const label = JSON.stringify(opts)
    assert.deepEqual(started, { host: want[i], port }, label)
    assert.deepEqual(meta, started, `${label}: the datagram's meta`)
    assert.deepEqual(stopped, started, `${label}: before start() too`)
  })
})

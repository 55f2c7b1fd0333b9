'use strict'
// One source of truth across Rust and JS: what JS reports or checks is what
// Rust decided (the advertised address), never a JS copy.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const Eventcast = require('..')
const { inPrivateNetns } = require('../scripts/netns.js')

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

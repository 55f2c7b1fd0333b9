'use strict'
// IPv6 multicast and interfaces by name through the JS API, on loopback
// inside `npm test`'s private namespace (scripts/netns.js routes ff00::/8 to
// lo as a local route). Two hosts on a veth pair over IPv6 are Rust's test
// (crates/eventcast/tests/node_ipv6.rs); the lab runs IPv6 with loss
// between namespaced hosts (tests/lab, `v6-*` scenarios).
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { make, requireNetns, port, next, waitFor } = require('./helpers.js')

/** Whether this namespace routes IPv6 multicast to lo (`ip -6 route add local ff00::/8 dev lo table local`). */
function ipv6MulticastOnLo () {
  try {
    return fs.readFileSync('/proc/self/net/ipv6_route', 'utf8').split('\n')
      .some((l) => l.startsWith('ff000000000000000000000000000000 08 ') && l.trim().endsWith(' lo'))
  } catch {
    return false
  }
}
const NO_ROUTE = 'no IPv6 multicast route on lo here (scripts/netns.js adds it; IPv6 may be off in this kernel)'

test('two nodes on a link-local IPv6 group, the interface by %zone and by name: events both ways, a chunked one', { timeout: 30000 }, async (t) => {
  requireNetns()
  if (!ipv6MulticastOnLo()) return t.skip(NO_ROUTE)
  const p = port()
  const group = `ff12::ec:${p.toString(16)}`
  const a = make({ port: p, multicastMembership: `${group}%lo` })
  const b = make({ port: p, multicastMembership: group, multicastInterface: 'lo' })
  assert.equal(a.config.multicastMembership, group)
  assert.equal(a.config.multicastInterface, 'lo')
  await a.start()
  await b.start()
  // Loopback carries only ::1: the source of our datagrams, and what we advertise.
  assert.deepEqual(a.getAddress(), { host: '::1', port: p })
  const big = Buffer.alloc(200 * 1024, 7)
  const got = next(b, 'hello', 10000)
  a.emit('hello', 'world', big)
  const [word, buf] = await got
  assert.equal(word, 'world')
  assert.ok(buf.equals(big))
  const back = next(a, 'back', 10000)
  b.emit('back', 1)
  assert.deepEqual(await back, [1])
  assert.ok(a.stats().datagramsSent > 100, 'the 200 KiB event was chunked')
  // The IPv6 socket filter keeps each node's own loopback copies out.
  assert.equal(a.stats().ownDatagramsIgnored, 0)
  assert.equal(b.stats().ownDatagramsIgnored, 0)
  assert.ok(await waitFor(() => b.stats().eventsDelivered === 1 && a.stats().eventsDelivered === 1, 2000))
})

test('an IPv6 group wider than a link needs no interface; an index works as the interface', { timeout: 30000 }, async (t) => {
  requireNetns()
  if (!ipv6MulticastOnLo()) return t.skip(NO_ROUTE)
  const p = port()
  const a = make({ port: p, multicastMembership: `ff15::ec:${p.toString(16)}` })
  // Loopback is interface 1 in a namespace of its own.
  const b = make({ port: p, multicastMembership: `ff15::ec:${p.toString(16)}`, multicastInterface: 1 })
  await a.start()
  await b.start()
  const got = next(b, 'site', 10000)
  a.emit('site', { scope: 5 })
  assert.deepEqual(await got, [{ scope: 5 }])
})

test('a missing interface fails start() with ENOINTERFACE, naming it and listing the host\'s interfaces', async () => {
  requireNetns()
  for (const opts of [{ multicastInterface: 'no-such-if0' }, { multicastMembership: 'ff12::1', multicastInterface: 'no-such-if0' }, { multicastMembership: 'ff12::1', multicastInterface: 4000 }]) {
    const ec = make({ port: port(), ...opts })
    await assert.rejects(ec.start(), (err) => {
      assert.equal(err.code, 'ENOINTERFACE', err.message)
      assert.match(err.message, /no network interface ("no-such-if0"|with index 4000)/)
      assert.match(err.message, /this host's interfaces: .*\blo \(127\.0\.0\.1/)
      return true
    })
    assert.equal(ec.status, 'stopped')
  }
})

'use strict'
// Shared hosts: several nodes share one host and port; a 0.1.x
// receiver sends its repair request unicast to the sender's host:port, and
// the kernel hands a unicast datagram to ONE of the sockets on that port. The
// node that gets it without holding the data forwards it to the group once,
// and the real sender answers (on the group, so the requester hears it).
const test = require('node:test')
const assert = require('node:assert/strict')
const dgram = require('node:dgram')
const { requireNetns, port, sleep, make, splitDatagram } = require('./helpers.js')
const w = require('./hostile-wire.js')

requireNetns()

/** A 0.1.x `__ec_retx` request datagram: `{id, seqId, missedSeq, host, port}` (no `to`, no `missedSn`). */
function legacyRequest (seqId, missedSeq, p) {
  const id = 'b0b0b0b0b0b0b0b0'
  const doc = w.docOf([
    ['id', w.V.str(id)],
    ['seqId', w.V.str(seqId)],
    ['missedSeq', w.V.arr(w.arrOf(missedSeq.map((n) => w.V.i32(n))))],
    ['host', w.V.str('127.0.0.1')],
    ['port', w.V.i32(p)]
  ])
  const meta = w.docOf(w.metaFields({ id, seqId: w.hex(20), name: '__ec_retx' }))
  return w.frame(meta, w.docOf([['payload', w.V.doc(doc)]]))
}

test('a 0.1.x request landing on the node that lacks the data is relayed once; the sender answers', async (t) => {
  const p = port()
  const sender = make({ port: p })
  const other = make({ port: p })
  await sender.start()
  await other.start()
  // Watch the group for the chunk group id of the message, as a 0.1.x receiver would.
  const watcher = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise((resolve) => watcher.bind(p, resolve))
  watcher.addMembership('224.0.0.1')
  let seqId = null
  watcher.on('message', (buf) => {
    const { meta } = splitDatagram(buf)
    const m = meta.toString('latin1').match(/seqId\0.{4}([0-9a-f]{40})/s)
    if (m && seqId === null && /seqLen/.test(meta.toString('latin1')) && buf.length > 900) seqId = m[1]
  })
  sender.emit('big', 'x'.repeat(20000))
  for (let i = 0; i < 100 && seqId === null; i++) await sleep(10)
  // Closed before the unicast tries: only the two nodes share the port then.
  watcher.close()
  assert.ok(seqId, 'saw the chunk group on the wire')

  // Unicast from fresh source ports until the kernel hands one to `other`
  // (it picks the socket by a hash of the addresses; each try is a new port).
  const before = sender.stats().repairsSent
  let tries = 0
  while (other.stats().repairRequestsRelayed === 0 && tries < 64) {
    const s = dgram.createSocket('udp4')
    await new Promise((resolve) => s.send(legacyRequest(seqId, [1, 3], p), p, '127.0.0.1', resolve))
    s.close()
    tries++
    await sleep(30)
  }
  t.diagnostic(`${tries} unicast request(s) until one landed on the node without the data`)
  assert.equal(other.stats().repairRequestsRelayed, 1, 'forwarded once')
  await sleep(200)
  // The sender answered (directly for the requests that reached it, and the relay).
  assert.ok(sender.stats().repairsSent > before, JSON.stringify(sender.stats()))
  assert.equal(sender.stats().repairRequestsRelayed, 0, 'the holder answers, it never forwards')
  assert.equal(other.stats().repairsSent, 0)
})

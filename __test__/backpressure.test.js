'use strict'
// Send backpressure: on a slow link the send queue is bounded
// (`sendQueueBytes`), emit throws EBACKPRESSURE once it is full, 'drain' says
// when to emit again, and what is emitted after a drain leaves promptly.
// The slow link is the addon's test hook (a token bucket in front of sendto).
const test = require('node:test')
const assert = require('node:assert')
const { once } = require('node:events')
const Eventcast = require('..')
const { requireNetns, port: randomPort, make, sleep } = require('./helpers.js')

const native = (ec) => ec[Object.getOwnPropertySymbols(ec).find((s) => s.description === 'eventcast.native')]

test('sendQueueBytes is validated: 64 KiB to 1 GiB, default 8 MiB', () => {
  assert.strictEqual(Eventcast({ port: 9000 }).config.sendQueueBytes, 8 * 1024 * 1024)
  assert.strictEqual(Eventcast({ port: 9000, sendQueueBytes: 65536 }).config.sendQueueBytes, 65536)
  for (const bad of [65535, 2 ** 30 + 1]) {
    assert.throws(() => Eventcast({ port: 9000, sendQueueBytes: bad }), { name: 'RangeError', code: 'ERR_EVENTCAST_OPTION_VALUE' })
  }
  assert.throws(() => Eventcast({ port: 9000, sendQueueBytes: '1mb' }), { name: 'TypeError', code: 'ERR_EVENTCAST_OPTION_VALUE' })
})

test('100 x 1 MiB into a slow link: bounded queue, EBACKPRESSURE, drain, a small event after drain leaves promptly', { timeout: 60000 }, async (t) => {
  requireNetns()
  const port = randomPort()
  const limit = 4 * 1024 * 1024
  const receiver = make({ port, messageTtl: 500 })
  const sender = make({ port, messageTtl: 500, sendQueueBytes: limit })
  let bigs = 0
  let smallAt = 0
  receiver.on('big', () => { bigs++ })
  receiver.on('small', () => { smallAt = Date.now() })
  let localBigs = 0
  sender.on('big', () => { localBigs++ })
  await receiver.start()
  await sender.start()
  native(sender)._throttleSends(40e6) // 40 MB/s
  const big = Buffer.alloc(1 << 20, 7)
  const rss0 = process.memoryUsage.rss()
  let maxRss = rss0
  let maxQueue = 0
  let refused = 0
  let drains = 0
  let smallEmittedAt = 0
  sender.on('drain', () => { drains++ })
  let accepted = 0
  while (accepted < 100) {
    try {
      sender.emit('big', big)
      accepted++
    } catch (err) {
      assert.ok(err instanceof Error && !(err instanceof TypeError), 'a plain Error')
      assert.strictEqual(err.code, 'EBACKPRESSURE')
      refused++
      assert.ok(sender.stats().sendQueueBytes >= limit, 'refused only when full')
      await once(sender, 'drain')
      assert.ok(sender.stats().sendQueueBytes <= limit / 2, 'drained to half the bound')
      if (!smallEmittedAt) {
        sender.emit('small', 1)
        smallEmittedAt = Date.now()
      }
    }
    maxQueue = Math.max(maxQueue, sender.stats().sendQueueBytes)
    maxRss = Math.max(maxRss, process.memoryUsage.rss())
  }
  const deadline = Date.now() + 20000
  while ((bigs < 100 || !smallAt) && Date.now() < deadline) {
    maxRss = Math.max(maxRss, process.memoryUsage.rss())
    await sleep(20)
  }
  const st = sender.stats()
  t.diagnostic(`${refused} refusals, ${drains} drains, queue max ${maxQueue} B, RSS +${Math.round((maxRss - rss0) / 2 ** 20)} MiB, ` +
    `small event after drain arrived in ${smallAt - smallEmittedAt} ms`)
  assert.strictEqual(localBigs, 100, 'a refused emit is not emitted locally either')
  assert.strictEqual(bigs, 100, 'every accepted event arrived')
  assert.ok(refused >= 10, `the queue filled again and again (${refused})`)
  assert.strictEqual(st.sendQueueFull, refused)
  assert.strictEqual(drains, refused, "one 'drain' per refusal (the app waited each time)")
  assert.ok(maxQueue < limit + 1.3 * 2 ** 20, `queue bounded: ${maxQueue}`)
  assert.ok(maxRss - rss0 < 160 * 2 ** 20, `RSS bounded: +${(maxRss - rss0) / 2 ** 20} MiB`)
  assert.ok(smallAt - smallEmittedAt < 500, `the small event left promptly (${smallAt - smallEmittedAt} ms)`)
  await sender.stop()
  await receiver.stop()
})

'use strict'
// The bunyan-style logger (lib/logger.js) never throws on what it is asked to log.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Logger } = require('../lib/logger.js')

function capture () {
  const lines = []
  return { lines, stream: { write: (s) => lines.push(JSON.parse(s)) } }
}

test('a record whose fields cannot be serialized is still written, without them', () => {
  const { lines, stream } = capture()
  const log = new Logger({ name: 'eventcast', level: 10, streams: [stream], fields: { component: 'x' } })
  const circular = { a: 1 }
  circular.self = circular
  assert.doesNotThrow(() => log.warn('something happened', { circular }))
  assert.doesNotThrow(() => log.error('bad toJSON', { v: { toJSON () { throw new Error('nope') } } }))
  assert.equal(lines.length, 2)
  assert.equal(lines[0].msg, 'something happened')
  assert.equal(lines[0].level, 40)
  assert.match(lines[0].logError, /fields dropped/)
  assert.equal(lines[0].circular, undefined)
  assert.equal(lines[1].msg, 'bad toJSON')
})

test('BigInt fields are written as strings', () => {
  const { lines, stream } = capture()
  const log = new Logger({ name: 'eventcast', level: 10, streams: [stream] })
  log.info('big', { n: 2n ** 70n })
  assert.equal(lines[0].n, (2n ** 70n).toString())
})

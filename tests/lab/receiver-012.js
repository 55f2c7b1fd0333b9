#!/usr/bin/env node
'use strict'
// Lab receiver running the real eventcast 0.1.2 (the old JavaScript package),
// loaded from EVENTCAST_012_DIR (a checkout with its node_modules; it is not on
// the npm registry, so the lab cannot install it). Speaks the same JSON lines
// as receiver.js: ready, progress, and on SIGTERM/SIGINT final (tally + the
// counters below, gathered from 0.1.2's own MessageBuffer events, whose code
// is not changed).
// Usage: receiver-012.js --port P --tag T --expect '{"h1":10}' [--size BYTES]
// LAB_TRACE=PREFIX writes a timeline (chunks in, requests, drops, deliveries)
// to PREFIX.PORT.PID, to see what 0.1.2 did and when.
const path = require('node:path')
const { Tally, parseArgs } = require('./common.js')

const args = parseArgs(process.argv.slice(2))
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const dir = process.env.EVENTCAST_012_DIR
if (!dir) {
  out({ type: 'error', code: 'ENO012', message: 'EVENTCAST_012_DIR is not set' })
  process.exit(1)
}
const Eventcast012 = require(path.resolve(dir))
const tally = new Tally({ tag: args.tag, expect: JSON.parse(args.expect), size: Number(args.size || 0) })

/** js-bson 0.2 hands BSON binary over as its own Binary object, not a Buffer. */
function toBuffer (v) {
  if (Buffer.isBuffer(v) || v === undefined) return v
  if (v && v._bsontype === 'Binary') return Buffer.from(v.buffer.slice(0, v.position))
  return v
}

const ec = Eventcast012({ port: Number(args.port) })
// What 0.1.2 does about incomplete messages, counted from the outside.
const stats = { legacyRequestsSent: 0, legacyMissedChunksAsked: 0, legacyPartialsExpired: 0, legacyDeliveries: 0 }
ec.messageBuffer.on('miss', (seqId, seqs) => { stats.legacyRequestsSent++; stats.legacyMissedChunksAsked += seqs.length })
ec.messageBuffer.on('expired', () => { stats.legacyPartialsExpired++ })
ec.on('lab', (tag, label, i, body) => { stats.legacyDeliveries++; tally.add(tag, label, i, toBuffer(body)) })
const TRACE = process.env.LAB_TRACE ? require('node:fs').openSync(`${process.env.LAB_TRACE}.${args.port}.${process.pid}`, 'w') : null
const tr = (...a) => TRACE && require('node:fs').writeSync(TRACE, `${Date.now()} ${a.join(' ')}\n`)
if (TRACE) {
  const orig = ec._receiveMessage.bind(ec)
  ec._receiveMessage = (msg, rinfo) => { const m = msg.meta(); tr('rx', m.name, String(m.seqId).slice(0, 6), m.seq, m.seqLen, m.seqEnd); return orig(msg, rinfo) }
  ec.messageBuffer.on('miss', (seqId, seqs) => tr('miss', seqId.slice(0, 6), seqs.length, seqs.join(',')))
  ec.messageBuffer.on('expired', (seqId) => tr('expired', seqId.slice(0, 6)))
  ec.on('lab', (tag, label, i) => tr('deliver', i))
}
ec.on('error', (err) => out({ type: 'error', code: err.code, message: err.message }))

let last = ''
const progress = setInterval(() => {
  const s = JSON.stringify(tally.summary())
  if (s !== last) {
    last = s
    process.stdout.write(`{"type":"progress","summary":${s}}\n`)
  }
}, 200)

let stopping = false
function finish () {
  if (stopping) return
  stopping = true
  clearInterval(progress)
  // 0.1.2's stop(cb) never calls cb (it removes the socket's listeners right
  // after adding the 'close' one) and leaves its MessageBuffer timers armed:
  // report and exit.
  ec.stop()
  // Datagrams the host's kernel dropped for a full socket buffer (this host's namespace: its own counters).
  try {
    const udp = require('node:fs').readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'))
    const [names, values] = udp.map((l) => l.split(/\s+/))
    stats.udpRcvbufErrors = Number(values[names.indexOf('RcvbufErrors')])
  } catch {}
  out({ type: 'final', summary: tally.summary(), stats })
  process.exit(0)
}
process.on('SIGTERM', finish)
process.on('SIGINT', finish)

ec.start(() => {
  tally.t0 = Date.now()
  out({ type: 'ready', id: ec.id, address: ec.getAddress() })
})

#!/usr/bin/env node
'use strict'
// Lab sender (Node): after `go` on stdin, emits `lab(tag, label, i)` (or with a
// deterministic buffer of --size bytes) --count times at --rate events/s,
// prints {"type":"sent"}, then stays up answering repair requests until
// SIGTERM, when it stops and prints {"type":"final", stats}.
// --big N --big-size BYTES: also N big events, `lab(tag, L + '.big', j, buffer)`,
// spread evenly among the --count small ones (the group-scaling scenario).
// Usage: sender.js --port P --tag T --label L --count N --rate R [--size BYTES] [--big N --big-size BYTES] [--group G --interface IF]
const path = require('node:path')
const Eventcast = require(path.resolve(__dirname, '..', '..'))
const { bigPayload, parseArgs } = require('./common.js')

const args = parseArgs(process.argv.slice(2))
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const count = Number(args.count)
const rate = Number(args.rate)
const size = Number(args.size || 0)
const { tag, label } = args
const big = Number(args.big || 0)
const bigSize = Number(args['big-size'] || 0)
const bigEvery = big ? Math.floor(count / big) : 0

// --group G [--interface IF]: the lab's IPv6 scenarios (a link-local group on eth0).
const group = args.group ? { multicastMembership: args.group, multicastInterface: args.interface } : {}
const ec = Eventcast({ port: Number(args.port), ...group })
ec.on('error', (err) => out({ type: 'error', code: err.code, message: err.message }))

function run () {
  const t0 = Date.now()
  let i = 0
  const tick = () => {
    const due = Math.min(count, Math.floor(((Date.now() - t0) / 1000) * rate) + 1)
    for (; i < due; i++) {
      if (size) ec.emit('lab', tag, label, i, bigPayload(label, i, size))
      else ec.emit('lab', tag, label, i)
      if (bigEvery && i % bigEvery === bigEvery - 1 && (i + 1) / bigEvery <= big) {
        const j = (i + 1) / bigEvery - 1
        ec.emit('lab', tag, `${label}.big`, j, bigPayload(`${label}.big`, j, bigSize))
      }
    }
    if (i < count) setTimeout(tick, size ? 20 : 5)
    else out({ type: 'sent', count, ms: Date.now() - t0 })
  }
  tick()
}

let stopping = false
async function finish () {
  if (stopping) return
  stopping = true
  await ec.stop()
  // cpu: this process's CPU time (µs), what the group-scaling scenario reports per receiver.
  out({ type: 'final', stats: ec.stats(), cpu: process.cpuUsage() })
}
process.on('SIGTERM', finish)
process.on('SIGINT', finish)

ec.start().then(() => {
  out({ type: 'ready', id: ec.id, address: ec.getAddress() })
  let buf = ''
  process.stdin.setEncoding('utf8')
  process.stdin.on('data', (d) => {
    buf += d
    if (buf.includes('go\n')) {
      buf = ''
      process.stdin.destroy() // an open stdin would keep the process alive after stop()
      run()
    }
  })
}, (err) => {
  out({ type: 'error', code: err.code, message: err.message })
  process.exit(1)
})

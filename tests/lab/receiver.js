#!/usr/bin/env node
'use strict'
// Lab receiver (Node): counts `lab(tag, sender, i[, buffer])` events and 'gap'
// reports. Prints JSON lines on stdout: ready, progress (while things change)
// and, on SIGTERM/SIGINT, final (tally + stats()) after a clean stop().
// Usage: receiver.js --port P --tag T --expect '{"h1":10000}' [--size BYTES] [--group G --interface IF]
const path = require('node:path')
const Eventcast = require(path.resolve(__dirname, '..', '..'))
const { Tally, parseArgs } = require('./common.js')

const args = parseArgs(process.argv.slice(2))
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const tally = new Tally({ tag: args.tag, expect: JSON.parse(args.expect), size: Number(args.size || 0) })

// --group G [--interface IF]: the lab's IPv6 scenarios (a link-local group on eth0).
const group = args.group ? { multicastMembership: args.group, multicastInterface: args.interface } : {}
const ec = Eventcast({ port: Number(args.port), ...group })
ec.on('lab', (tag, label, i, body) => tally.add(tag, label, i, body))
ec.on('gap', (info) => tally.gap(info.count))
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
async function finish () {
  if (stopping) return
  stopping = true
  clearInterval(progress)
  await ec.stop()
  out({ type: 'final', summary: tally.summary(), stats: ec.stats() })
}
process.on('SIGTERM', finish)
process.on('SIGINT', finish)

ec.start().then(() => {
  tally.t0 = Date.now()
  out({ type: 'ready', id: ec.id, address: ec.getAddress() })
}, (err) => {
  out({ type: 'error', code: err.code, message: err.message })
  process.exit(1)
})

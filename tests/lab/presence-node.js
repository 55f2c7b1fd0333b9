#!/usr/bin/env node
'use strict'
// Lab presence peer (Node): a started node with a name that prints its
// presence events as JSON lines ({type: 'peerUp'|'peerDown'|'peerUpdate',
// name, id, reason?, t}) and, on a line "stop" on stdin, stops (goodbye) and
// exits. SIGKILL it to vanish without a goodbye.
// Usage: presence-node.js --port P --name N --interval MS --timeout MS
const path = require('node:path')
const readline = require('node:readline')
const Eventcast = require(path.resolve(__dirname, '..', '..'))
const { parseArgs } = require('./common.js')

const args = parseArgs(process.argv.slice(2))
const out = (o) => process.stdout.write(JSON.stringify({ ...o, t: Date.now() }) + '\n')
const ec = Eventcast({
  port: Number(args.port),
  name: args.name,
  meta: { lab: true },
  presence: { interval: Number(args.interval), timeout: Number(args.timeout) }
})
for (const type of ['peerUp', 'peerDown', 'peerUpdate']) {
  ec.on(type, (p) => out({ type, name: p.name, id: p.id, reason: p.reason }))
}
ec.on('error', (err) => out({ type: 'error', code: err.code, message: err.message }))
readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line.trim() !== 'stop') return
  await ec.stop()
  out({ type: 'stopped', stats: ec.stats() })
  process.exit(0)
})
ec.start().then(() => out({ type: 'ready', id: ec.id }))

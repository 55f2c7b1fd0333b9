#!/usr/bin/env node
'use strict'
// Lab request/reply peer (Node). With --serve it answers requests "double"
// (2 × its argument) until killed; with --ask N it sends N requests, at most
// --concurrency at a time, each with --timeout ms, and prints one result line:
// {type: 'result', answered, wrong, timedOut, p50, p99, max, stats}. Both print
// {type: 'ready'} once started.
// Usage: request-node.js --port P (--serve | --ask N [--concurrency C] [--timeout MS])
const path = require('node:path')
const Eventcast = require(path.resolve(__dirname, '..', '..'))
const { parseArgs } = require('./common.js')

const args = parseArgs(process.argv.slice(2))
const out = (o) => process.stdout.write(JSON.stringify({ ...o, t: Date.now() }) + '\n')
const ec = Eventcast({ port: Number(args.port), requestTimeout: Number(args.timeout || 1000), presence: false })
ec.on('error', (err) => out({ type: 'error', code: err.code, message: err.message }))

async function ask (n, concurrency) {
  const rtts = []
  let wrong = 0
  let timedOut = 0
  let next = 0
  const one = async () => {
    while (next < n) {
      const i = next++
      const t0 = process.hrtime.bigint()
      try {
        const v = await ec.request('double', i)
        rtts.push(Number(process.hrtime.bigint() - t0) / 1e6)
        if (v !== 2 * i) wrong++
      } catch (err) {
        if (err.code === 'ETIMEDOUT') timedOut++
        else throw err
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, one))
  rtts.sort((a, b) => a - b)
  const q = (p) => rtts.length ? rtts[Math.min(rtts.length - 1, Math.floor(rtts.length * p))] : null
  return { answered: rtts.length, wrong, timedOut, p50: q(0.5), p99: q(0.99), max: rtts[rtts.length - 1] ?? null }
}

ec.start().then(async () => {
  if (args.serve) {
    ec.handle('double', (x) => 2 * x)
    out({ type: 'ready', id: ec.id })
    return
  }
  out({ type: 'ready', id: ec.id })
  const r = await ask(Number(args.ask), Number(args.concurrency || 10))
  out({ type: 'result', ...r, stats: ec.stats() })
  await ec.stop()
  process.exit(0)
})
